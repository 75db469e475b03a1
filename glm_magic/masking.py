"""Masking secrets in text before anything leaves the machine.

Cell sources, outputs, tracebacks and variable summaries all pass through
:func:`mask_secrets` before they are put into a request. A secret is replaced
by ``***`` and the text around it is kept, so the model still understands the
code (``OPENAI_API_KEY=***``, ``password = "***"``, ``Bearer ***``).

What is masked, in this order:

1. every configured secret (``extra_secrets``, e.g. the API key) wherever it
   occurs, ignoring values shorter than 6 characters;
2. the body of private-key PEM blocks (``-----BEGIN ... PRIVATE KEY-----``),
   keeping the BEGIN/END lines; an unclosed block masks the base64 lines after it;
3. token shapes: ``sk-``/``sk-proj-``/``rk-``/``pk_live_`` style keys, the
   credential after ``Bearer``/``Basic``, AWS access key ids and
   ``aws_secret_access_key`` values, GitHub (``ghp_``, ``github_pat_``), Slack
   (``xox?-``), Google (``AIza``), Z.ai (32 hex, a dot, 16+ alphanumerics) and
   JWTs. A candidate after ``sk-``/``rk-``/``pk-`` or ``Bearer``/``Basic`` is
   taken for prose and kept unless it looks random: 32+ characters, or a
   digit, one of ``+/=_``, or a capital after a small letter;
4. values assigned to a *secret name* (see :func:`is_secret_name`): string and
   number literals after ``=``, ``:=``, ``=>`` or ``:`` with a bare, quoted or
   subscripted name (code, kwargs, JSON, ``os.environ["NAME"] = "..."``);
   bare values in ``NAME=value`` lines (also after ``export``/``set``/``%env``),
   ``name = value`` lines (ini) and ``name: value`` lines (YAML); ``--token=v``
   and ``--password v`` flags; ``?token=v`` query parameters; and the password
   in ``scheme://user:password@host``.

Values that are not secrets are kept: empty or very short values (under 4
characters), ``None``/``null``/``True``/``false``, placeholders (``***``,
``<your-key>``, ``...``, ``xxx``, ``$VAR``, ``{var}``, ``YOUR_API_KEY``), and
code references: in ``name = value`` lines an identifier, dotted name, call,
subscript or any expression with parentheses (``api_key = os.environ["X"]``,
``token = get_token()``); in YAML lines dotted names, calls and Python type
hints (``api_key: str``). Masking is idempotent: masking masked text changes
nothing and counts nothing. Every pattern is linear in the input size.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["MASK", "Masked", "is_secret_name", "mask_secrets"]

#: What every secret is replaced with.
MASK = "***"

_MIN_CONFIGURED = 6
_MIN_VALUE = 4

_BEARER = re.compile(
    r"(?:[Bb](?:earer|EARER)(?<!\w.{6})|[Bb](?:asic|ASIC)(?<!\w.{5}))[ \t]+"
    r"(?P<value>[A-Za-z0-9._~+/=-]{8,})"
)
_AWS_SECRET = re.compile(
    r"(?i:aws_secret_access_key)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?P<value>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
)
_PREFIXED_KEY = re.compile(r"[srp]k[-_](?<![A-Za-z0-9][srp]k[-_])(?P<value>[A-Za-z0-9_-]{16,})")
# Each pattern starts with a literal where it can, so the scan skips ahead fast;
# the left boundary is checked by a look-behind placed after that literal.
_OPAQUE_TOKENS = tuple(
    re.compile(pattern)
    for pattern in (
        r"gh[pousr]_(?<![A-Za-z0-9_]gh[pousr]_)[A-Za-z0-9]{20,}",
        r"github_pat_(?<![A-Za-z0-9_]github_pat_)[A-Za-z0-9_]{20,}",
        r"xox[baprs]-(?<![A-Za-z0-9]xox[baprs]-)[A-Za-z0-9-]{10,}",
        r"AIza(?<![A-Za-z0-9_-]AIza)[A-Za-z0-9_-]{35,}",
        r"(?:AKIA|ASIA)(?<![A-Za-z0-9]....)[A-Z0-9]{16}(?![A-Za-z0-9])",
        r"(?<![A-Za-z0-9])[0-9a-fA-F]{32}\.[A-Za-z0-9]{16,}",
        r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
    )
)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"(?:[ \t]*\r?\n(?:[A-Za-z0-9+/=]+|[A-Za-z-]+:[^\r\n]*))*")
_PEM_LEAD = re.compile(r"(?:\s|\\[nr])*")  # whitespace or JSON-escaped newlines

_STRING = (
    r"(?P<prefix>[rRbBuUfF]{0,2})(?P<quote>[\"'])"
    r"(?P<value>(?:[^\"'\\\n]|\\.|(?!(?P=quote))[\"'])*)(?P=quote)"
)
_KEYED_LITERAL = re.compile(
    r"(?:(?<![\w.-])(?P<name>[A-Za-z_][\w.-]*)|(?P<q>[\"'])(?P<qname>[A-Za-z_][\w. -]*)(?P=q)\]?)"
    r"[ \t]*(?::[ \t]*[A-Za-z_][\w.\[\]|, \t]*=|:=|=>|=|:)[ \t]*"
    r"(?:" + _STRING + r"|(?P<number>-?\d[\d_]*(?:\.\d+)?)(?![\w.]))"
)
_LINE_ASSIGN = re.compile(
    r"^(?P<indent>[ \t]*)(?P<export>(?:export|set|setx|ENV|ARG|%env|%set_env)[ \t]+)?(?:-[ \t]+)?"
    r"(?P<name>[A-Za-z_][\w.-]*)(?P<sep>=|[ \t]*:[ \t]+|[ \t]+=[ \t]*)(?P<value>[^\r\n]*)",
    re.MULTILINE,
)
_CLI_FLAG = re.compile(
    r"(?<![\w-])--(?P<name>[A-Za-z][\w-]*)(?P<sep>=|[ \t]+)"
    r"(?:(?P<quote>[\"'])(?P<quoted>[^\"'\n]*)(?P=quote)|(?P<value>[^\s\"'=-][^\s\"']*))"
)
_URL_PASSWORD = re.compile(r"://(?P<user>[^\s:/@]*):(?P<value>[^\s/@]+)@")
_QUERY_PARAM = re.compile(r"[?&](?P<name>[A-Za-z_][\w.-]*)=(?P<value>[^&#\s\"'<>]+)")

_NAME_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(text: str) -> frozenset[str]:
    """Return the set of whitespace-separated words in ``text``."""
    return frozenset(text.split())


_SECRET_WORDS = _words(
    "key token secret secrets password passwd pwd passphrase credential credentials"
    " auth authorization apikey authkey"
)
_SECRET_SUFFIXES = tuple(
    _words(
        "password passwd secret apikey accesskey secretkey privatekey accesstoken authtoken"
        " refreshtoken apitoken"
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
_PLACEHOLDER = re.compile(
    r"\*\*\*|\.\.\.|…|^[xX*._\-\s]*$|^<[^<>]*>$|\{[^{}]*\}|^\$|^%[^%]*%$"
    r"|your[-_ ]?(?:api[-_ ]?)?(?:key|token|secret|password)",
    re.IGNORECASE,
)
_CALL_OR_SUBSCRIPT = re.compile(r"[A-Za-z_][\w.]*[ \t]*[(\[]")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_TYPE_HINT = re.compile(
    r"(?:str|bytes|int|float|bool|SecretStr|SecretBytes|Any|object)(?:[ \t]*\|[ \t]*None)?"
)
_RANDOM_SIGNS = re.compile(r"[0-9+/=_]|[a-z][A-Z]")


@dataclass(frozen=True)
class Masked:
    """The result of :func:`mask_secrets`: the masked ``text`` and ``count`` of spans masked."""

    text: str
    count: int


def is_secret_name(name: str) -> bool:
    """Return True when a variable, key or flag ``name`` names a secret.

    The name is split into words on ``_``, ``-``, ``.`` and camelCase
    boundaries. It is a secret name when a word is one of KEY, TOKEN, SECRET,
    PASSWORD, PASSWD, PWD, PASSPHRASE, CREDENTIAL(S), AUTH, AUTHORIZATION (or
    a glued form such as ``pgpassword``, ``apikey``, ``authtoken``) or the last
    word is PASS; but not when the last word describes the secret rather than
    holding it (``max_tokens``, ``key_size``, ``token_count``, ``auth_type``,
    ``password_file``), and not a bare ``key`` (a dict or sort key far more
    often than a credential). So ``api_key``, ``apiKey``, ``SECRET``,
    ``db_password`` and ``authToken`` are secret names; ``monkey`` and ``key``
    are not.
    """
    words = [word.lower() for word in _NAME_WORDS.findall(name)]
    if not words or words[-1] in _DESCRIPTORS or words == ["key"]:
        return False
    if words[-1] == "pass":
        return True
    return any(word in _SECRET_WORDS or word.endswith(_SECRET_SUFFIXES) for word in words)


def mask_secrets(text: str, extra_secrets: Iterable[str | None] = ()) -> Masked:
    """Return ``text`` with secrets replaced by ``***`` and how many were masked.

    ``extra_secrets`` are exact values to mask wherever they occur (the
    configured API key, ...); ``None`` and values shorter than 6 characters
    are ignored. The module docstring lists every rule.
    """
    count = 0
    for secret in _usable_secrets(extra_secrets):
        found = text.count(secret)
        if found:
            text = text.replace(secret, MASK)
            count += found
    text, found = _mask_pem(text)
    count += found
    for pattern, replace in _PASSES:
        text, found = _substitute(pattern, text, replace)
        count += found
    text, found = _name_passes(text)
    return Masked(text, count + found)


def _name_passes(text: str) -> tuple[str, int]:
    """Run the name-based passes on the lines that could hold a secret name.

    Every name-based rule needs a name that :func:`is_secret_name` accepts,
    which always contains one of :data:`_NAME_HINT`'s words, and none spans
    lines; so lines without such a word are skipped (most of a notebook's
    output), which keeps megabytes of context cheap to mask.
    """
    if _NAME_HINT.search(text) is None:
        return text, 0
    lines = text.split("\n")
    count = 0
    for i, line in enumerate(lines):
        if _NAME_HINT.search(line) is None:
            continue
        for pattern, replace in _NAME_PASSES:
            line, found = _substitute(pattern, line, replace)
            count += found
        lines[i] = line
    return "\n".join(lines), count


def _usable_secrets(values: Iterable[str | None]) -> list[str]:
    """Return the configured secrets worth masking, longest first."""
    usable = {
        value.strip()
        for value in values
        if isinstance(value, str)
        and len(value.strip()) >= _MIN_CONFIGURED
        and not _PLACEHOLDER.search(value.strip())
    }
    return sorted(usable, key=len, reverse=True)


def _substitute(
    pattern: re.Pattern[str], text: str, replace: Callable[[re.Match[str]], str | None]
) -> tuple[str, int]:
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


def _mask_group(match: re.Match[str], group: str) -> str:
    """Return the match with one group replaced by the mask."""
    start = match.start()
    whole = match.group()
    return whole[: match.start(group) - start] + MASK + whole[match.end(group) - start :]


def _mask_pem(text: str) -> tuple[str, int]:
    """Mask the bodies of private-key PEM blocks."""
    if "PRIVATE KEY" not in text:
        return text, 0
    out: list[str] = []
    pos = count = 0
    end_missing_after = len(text) + 1  # no END marker from here on
    while (begin := _PEM_BEGIN.search(text, pos)) is not None:
        end = None if begin.end() >= end_missing_after else _PEM_END.search(text, begin.end())
        if end is None:
            end_missing_after = min(end_missing_after, begin.end())
            tail = _PEM_BODY.match(text, begin.end())
            body_end = tail.end() if tail else begin.end()
        else:
            body_end = end.start()
        out.append(text[pos : begin.end()])
        body = text[begin.end() : body_end]
        lead, trail = _edges(body)
        if body[lead:trail] not in ("", MASK):
            out.append(body[:lead] + MASK + body[trail:])
            count += 1
        else:
            out.append(body)
        pos = body_end
    out.append(text[pos:])
    return "".join(out), count


def _edges(body: str) -> tuple[int, int]:
    """Return where a PEM body's content starts and ends, inside its line breaks."""
    match = _PEM_LEAD.match(body)
    start = match.end() if match else 0
    end = len(body)
    while end > start:
        if body[end - 1].isspace():
            end -= 1
        elif end - 2 >= start and body[end - 2 : end] in ("\\n", "\\r"):
            end -= 2
        else:
            break
    return start, end


def _looks_random(token: str) -> bool:
    """Tell a credential from a word: a digit, a sign, inner capitals or 32+ chars."""
    return len(token) >= 32 or _RANDOM_SIGNS.search(token) is not None


def _replace_random(match: re.Match[str]) -> str | None:
    """Mask the ``value`` group when it looks random (after ``Bearer``)."""
    return _mask_group(match, "value") if _looks_random(match.group("value")) else None


def _replace_random_whole(match: re.Match[str]) -> str | None:
    """Mask the whole match when its ``value`` group looks random (``sk-...``)."""
    return MASK if _looks_random(match.group("value")) else None


def _replace_value(match: re.Match[str]) -> str:
    """Mask the ``value`` group."""
    return _mask_group(match, "value")


def _replace_whole(match: re.Match[str]) -> str:
    """Mask the whole match."""
    return MASK


def _maskable(value: str) -> bool:
    """Return False for empty, short, keyword and placeholder values."""
    return (
        len(value) >= _MIN_VALUE
        and value.lower() not in _KEYWORD_VALUES
        and not _PLACEHOLDER.search(value)
    )


def _replace_keyed_literal(match: re.Match[str]) -> str | None:
    """Mask a string or number literal assigned to a secret name."""
    if not is_secret_name(match.group("name") or match.group("qname")):
        return None
    group = "value" if match.group("quote") else "number"
    if not _maskable(match.group(group)):
        return None
    return _mask_group(match, group)


def _looks_like_code(value: str, style: str) -> bool:
    """Return True when a bare assigned value is a code reference, not a secret."""
    if _CALL_OR_SUBSCRIPT.match(value) or value[0] in "([{\"'=#":
        return True
    if style == "env":
        return False
    if _DOTTED.fullmatch(value):
        return True
    if style == "yaml":
        return value[0] in "|>!&*" or " = " in value or _TYPE_HINT.fullmatch(value) is not None
    first = value.split(None, 1)[0]
    return value.isidentifier() or "(" in value or keyword.iskeyword(first)


def _replace_line_assignment(match: re.Match[str]) -> str | None:
    """Mask the bare value of a ``NAME=value``, ``name = value`` or ``name: value`` line."""
    raw = match.group("value")
    if not raw or not is_secret_name(match.group("name")):
        return None
    sep = match.group("sep")
    if ":" in sep:
        style = "yaml"
    elif sep == "=" and (match.group("export") or not match.group("indent")):
        style = "env"
    else:
        style = "ini"
    if style == "env":
        value = raw.split(None, 1)[0] if raw.strip() else ""
    else:
        comment = raw.find(" #")
        value = (raw if comment < 0 else raw[:comment]).rstrip().rstrip(",;")
    if not value or not _maskable(value) or _looks_like_code(value, style):
        return None
    start = match.start("value") - match.start()
    whole = match.group()
    return whole[:start] + raw.replace(value, MASK, 1) + whole[start + len(raw) :]


def _replace_cli_flag(match: re.Match[str]) -> str | None:
    """Mask the value of ``--secret-flag=value`` or ``--secret-flag value``."""
    if not is_secret_name(match.group("name")):
        return None
    group = "quoted" if match.group("quote") else "value"
    value = match.group(group)
    if not _maskable(value):
        return None
    if group == "value" and match.group("sep") != "=" and value.isalpha() and value.islower():
        return None  # "use --token to authenticate": prose, not a value
    return _mask_group(match, group)


def _replace_maskable(match: re.Match[str]) -> str | None:
    """Mask the ``value`` group unless it is short, a keyword or a placeholder."""
    return _mask_group(match, "value") if _maskable(match.group("value")) else None


def _replace_query_param(match: re.Match[str]) -> str | None:
    """Mask ``?token=value`` query parameters."""
    if not is_secret_name(match.group("name")) or not _maskable(match.group("value")):
        return None
    return _mask_group(match, "value")


_PASSES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]], ...] = (
    (_BEARER, _replace_random),
    (_AWS_SECRET, _replace_value),
    (_PREFIXED_KEY, _replace_random_whole),
    *((pattern, _replace_whole) for pattern in _OPAQUE_TOKENS),
    (_URL_PASSWORD, _replace_maskable),
)
#: Passes whose match needs a secret-like name on the same line (see _name_passes).
_NAME_PASSES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str | None]], ...] = (
    (_KEYED_LITERAL, _replace_keyed_literal),
    (_LINE_ASSIGN, _replace_line_assignment),
    (_CLI_FLAG, _replace_cli_flag),
    (_QUERY_PARAM, _replace_query_param),
)
_NAME_HINT = re.compile(r"key|token|secret|pass|pwd|auth|credential", re.IGNORECASE)
