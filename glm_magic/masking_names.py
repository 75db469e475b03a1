"""Secret names and secret-like values: the shared vocabulary of the masking passes.

:func:`is_secret_name` decides whether a variable, key, flag or column name
names a secret; :func:`maskable` whether a value is worth masking (not empty,
short, a keyword or a placeholder). The small helpers that every pass uses to
replace a match are here too, so :mod:`.masking`, :mod:`.masking_shapes` and
:mod:`.masking_layout` share one definition of each.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, TypeAlias

__all__ = [
    "MASK",
    "NAME_HINT",
    "PLACEHOLDER",
    "Replace",
    "Revealable",
    "SecretText",
    "hint_lines",
    "is_secret_name",
    "looks_random",
    "mask_group",
    "maskable",
    "substitute",
]

#: What every secret is replaced with.
MASK = "***"

#: A pass's replacement: the new text of a match, or ``None`` to keep it as is.
Replace = Callable[[re.Match[str]], "str | None"]


class Revealable(Protocol):
    """A secret kept wrapped (:class:`glm_magic.config.Secret`): its text only on demand."""

    def reveal(self) -> str:
        """The secret's text."""
        ...


#: A configured secret as callers hold it: text, wrapped (so no local variable shows it), or none.
SecretText: TypeAlias = "str | Revealable | None"

_MIN_VALUE = 4
_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(text: str) -> frozenset[str]:
    """Return the set of whitespace-separated words in ``text``."""
    return frozenset(text.split())


_SECRET_WORDS = _words(
    "key token secret secrets password passwd pwd pw passphrase credential credentials"
    " auth authorization apikey authkey"
)
_SECRET_SUFFIXES = tuple(
    _words(
        "password passwd secret apikey accesskey secretkey privatekey accesstoken authtoken"
        " refreshtoken apitoken accountkey"
    )
)
_DESCRIPTORS = _words(
    "count counts num number size len length limit limits max min type types kind method"
    " mode name names url uri urls endpoint host port path paths file filename files dir"
    " directory column col cols field fields index idx id ids prefix suffix env var"
    " variable format fmt provider scheme version enabled required expiry expires ttl"
    " timeout pattern regex policy location source hint help prompt param params"
    " arg args attr func fn callback class cls backend strategy algorithm bits encoding"
    " label style width height"
    # Exception and warning class names (KeyError, TokenError) name a failure, not a secret:
    # masking "KeyError: 'total'" would hide the very thing explain/fix must see.
    " error errors exception exceptions warning warnings exc"
)
_KEYWORD_VALUES = _words("none null nil undefined true false yes no on off ~")
#: Values that stand for a secret rather than being one.
PLACEHOLDER = re.compile(
    r"\*\*\*|\.\.\.|…|^[xX*._\-\s]*$|^<[^<>]*>$|\{[^{}]*\}|^\$|^%[^%]*%$"
    r"|your[-_ ]?(?:api[-_ ]?)?(?:key|token|secret|password)",
    re.IGNORECASE,
)
#: Every name :func:`is_secret_name` accepts holds one of these: lines without any are skipped.
NAME_HINT = re.compile(r"key|token|secret|pass|pw|auth|credential", re.IGNORECASE)
_HINT_LOWER = re.compile(NAME_HINT.pattern)


def hint_lines(text: str) -> list[int]:
    """The numbers (0-based) of the lines of ``text`` holding a :data:`NAME_HINT` word, in order."""
    # One search per hinted line over the lower-cased text, newlines counted in C: several
    # times faster than a case-blind search of every line. Lower-casing never shortens a
    # character, so the same length means every position (and line) is kept.
    low, pattern = text.lower(), _HINT_LOWER
    if len(low) != len(text):
        low, pattern = text, NAME_HINT
    found: list[int] = []
    line = counted_to = pos = 0
    while (match := pattern.search(low, pos)) is not None:
        line += low.count("\n", counted_to, match.start())
        counted_to = match.start()
        found.append(line)
        newline = low.find("\n", match.start())
        if newline < 0:
            break
        pos = newline + 1
    return found


_RANDOM_SIGNS = re.compile(r"[0-9+/=_]|[a-z][A-Z]")


def is_secret_name(name: str) -> bool:
    """Return True when a variable, key or flag ``name`` names a secret.

    The name is split into words on ``_``, ``-``, ``.`` and camelCase
    boundaries. It is a secret name when a word is one of KEY, TOKEN, SECRET,
    PASSWORD, PASSWD, PWD, PW, PASSPHRASE, CREDENTIAL(S), AUTH, AUTHORIZATION
    (or a glued form such as ``pgpassword``, ``apikey``, ``authtoken``,
    ``AccountKey``) or the last word is PASS; but not when the last word
    describes the secret rather than holding it (``max_tokens``, ``key_size``,
    ``token_count``, ``auth_type``, ``password_file``), and not a bare ``key``
    (a dict or sort key far more often than a credential). So ``api_key``,
    ``apiKey``, ``SECRET``, ``db_password``, ``pw`` and ``authToken`` are
    secret names; ``monkey`` and ``key`` are not.
    """
    words = [word.lower() for word in _NAME_WORDS.findall(name)]
    if not words or words[-1] in _DESCRIPTORS or words == ["key"]:
        return False
    if words[-1] == "pass":
        return True
    return any(word in _SECRET_WORDS or word.endswith(_SECRET_SUFFIXES) for word in words)


def maskable(value: str) -> bool:
    """Return False for empty, short, keyword and placeholder values."""
    return (
        len(value) >= _MIN_VALUE
        and value.lower() not in _KEYWORD_VALUES
        and not PLACEHOLDER.search(value)
    )


def looks_random(token: str) -> bool:
    """Tell a credential from a word: a digit, a sign, inner capitals or 32+ chars."""
    return len(token) >= 32 or _RANDOM_SIGNS.search(token) is not None


def mask_group(match: re.Match[str], group: str) -> str:
    """Return the match with one group replaced by the mask."""
    start = match.start()
    whole = match.group()
    return whole[: match.start(group) - start] + MASK + whole[match.end(group) - start :]


def substitute(pattern: re.Pattern[str], text: str, replace: Replace) -> tuple[str, int]:
    """Run ``pattern.sub``; ``replace`` returns None to keep a match as is."""
    count = 0

    def one(match: re.Match[str]) -> str:
        nonlocal count
        result = replace(match)
        if result is None:
            return match.group()
        count += 1
        return result

    return pattern.sub(one, text), count
