"""Secrets recognised by their shape alone, and the configured key in any form.

These passes need no secret-looking name nearby: a token's own prefix and
alphabet (``ghp_``, ``hf_``, ``SG.``, ``AKIA``, JWTs, ...), a credential's
place in a command (``Bearer``, ``curl -u user:pass``, ``mysql -pPASS``, a
URL's ``user:password@``), a private-key PEM block, or the configured key
itself: :func:`mask_key` finds it in any letter case and finds any run of 12
or more of its characters, so a key cut short, split in two or upper-cased
by a server is still masked. The token shapes follow the detectors of
maintained secret scanners (prefix, alphabet, length), not guesses.
"""

from __future__ import annotations

import functools
import re

from .masking_names import MASK, Replace, looks_random, mask_group, maskable, substitute

__all__ = ["KEY_RUN", "mask_key", "mask_pem", "mask_shapes"]

#: The shortest run of the configured key's characters that is masked on its own.
KEY_RUN = 12
_MIN_CONFIGURED = 6

_BEARER = re.compile(
    r"(?:[Bb](?:earer|EARER)(?<!\w.{6})|[Bb](?:asic|ASIC)(?<!\w.{5}))[ \t]+"
    r"(?P<value>[A-Za-z0-9._~+/=-]{8,})"
)
_AWS_SECRET = re.compile(
    r"(?i:aws_secret_access_key)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?P<value>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"
)
_AWS_KEY_ID = re.compile(r"(?:AKIA|ASIA)(?<![A-Za-z0-9]....)[A-Z0-9]{16}(?![A-Za-z0-9])")
#: A quoted 40-character AWS secret, looked for just after an access key id.
_AWS_SECRET_NEAR = re.compile(r"[\"'](?P<value>[A-Za-z0-9/+]{40})[\"']")
_AWS_NEAR_CHARS = 300
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
        r"(?<![A-Za-z0-9])[0-9a-fA-F]{32}\.[A-Za-z0-9]{16,}",
        r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        # Hugging Face user access tokens: hf_ and 34 letters (30+ accepted).
        r"hf_(?<![A-Za-z0-9_]hf_)[A-Za-z0-9]{30,}",
        # SendGrid API keys: SG.<22 id chars>.<43 secret chars>.
        r"SG\.(?<![A-Za-z0-9_.-]SG\.)[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{20,}",
    )
)
_SLACK_WEBHOOK = re.compile(
    r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<value>[A-Za-z0-9_/-]{8,})"
)
# The password may hold "@": the user info ends at the last "@" before the host.
_URL_PASSWORD = re.compile(
    r"://(?P<user>[^\s:/@]*):(?P<value>[^\s/?#]+)@(?=[^\s@/?#]*(?:[/?#\s\"'<>)\]]|$))"
)
_CURL_USER = re.compile(
    r"-(?<![\w-]-)(?:u|-user)(?:[ \t]*=[ \t]*|[ \t]+|(?=[^\s=]))"
    r"(?P<q>[\"']?)(?P<user>[^\s:\"']*):(?P<value>[^\s\"']+)(?P=q)"
)
_MYSQL_PASSWORD = re.compile(
    r"(?:mysql|mariadb)(?<![\w-]mysql)(?<![\w-]mariadb)\w*\b[^\n]*?[ \t]-p"
    r"(?P<q>[\"']?)(?P<value>[^\s\"'-][^\s\"']*)(?P=q)"
)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_BODY = re.compile(r"(?:[ \t]*\r?\n(?:[A-Za-z0-9+/=]+|[A-Za-z-]+:[^\r\n]*))*")
_PEM_LEAD = re.compile(r"(?:\s|\\[nr])*")  # whitespace or JSON-escaped newlines


def mask_key(text: str, secret: str) -> tuple[str, int]:
    """Mask ``secret`` in ``text`` in any letter case, and every run of 12+ of its characters.

    Values shorter than 6 characters are ignored (they would mask ordinary
    words); values shorter than 12 are masked only whole.
    """
    secret = secret.strip()
    if len(secret) < _MIN_CONFIGURED:
        return text, 0
    if secret.isascii():
        # Plain substring search of each window is far faster than the case-blind pattern,
        # and finds a superset: text the pattern matches holds a window once lower-cased.
        low = text.lower()
        if not any(window in low for window in _windows(secret.lower())):
            return text, 0
    pattern = _key_pattern(secret)
    if pattern.search(text) is None:
        return text, 0
    if len(secret) < KEY_RUN:
        return pattern.subn(MASK, text)
    lowered = secret.lower()
    out: list[str] = []
    pos = count = 0
    while (match := pattern.search(text, pos)) is not None:
        start, end = match.span()
        # The window matched somewhere in the key: extend the run as far as it goes on.
        best = end
        window = match.group().lower()
        at = lowered.find(window)
        while at >= 0:
            i, j = end, at + len(window)
            while i < len(text) and j < len(lowered) and text[i].lower() == lowered[j]:
                i += 1
                j += 1
            best = max(best, i)
            at = lowered.find(window, at + 1)
        out.append(text[pos:start] + MASK)
        pos = best
        count += 1
    out.append(text[pos:])
    return "".join(out), count


@functools.lru_cache(maxsize=8)
def _windows(secret: str) -> tuple[str, ...]:
    """Every ``KEY_RUN``-character window of ``secret`` (the whole of a shorter one)."""
    if len(secret) < KEY_RUN:
        return (secret,)
    return tuple(dict.fromkeys(secret[i : i + KEY_RUN] for i in range(len(secret) - KEY_RUN + 1)))


@functools.lru_cache(maxsize=8)
def _key_pattern(secret: str) -> re.Pattern[str]:
    """A case-blind pattern for any of :func:`_windows`."""
    windows = _windows(secret.lower())
    return re.compile("|".join(re.escape(w) for w in windows), re.IGNORECASE)


def mask_shapes(text: str) -> tuple[str, int]:
    """Mask every token recognised by its shape or its place in a command."""
    count = 0
    text, found = _mask_aws_pairs(text)
    count += found
    for pattern, needle, replace in _PASSES:
        if needle in text:
            text, found = substitute(pattern, text, replace)
            count += found
    return text, count


def _mask_aws_pairs(text: str) -> tuple[str, int]:
    """Mask a quoted 40-character secret shortly after an AWS access key id.

    ``Session('AKIA...', 'wJalr...')`` names neither; the id's shape gives the
    pair away, and the secret follows it within a few hundred characters.
    """
    if "AKIA" not in text and "ASIA" not in text:
        return text, 0
    spans: list[tuple[int, int]] = []
    for key_id in _AWS_KEY_ID.finditer(text):
        near = _AWS_SECRET_NEAR.search(text, key_id.end(), key_id.end() + _AWS_NEAR_CHARS)
        if near is not None and looks_random(near.group("value")):
            spans.append(near.span("value"))
    if not spans:
        return text, 0
    out: list[str] = []
    pos = 0
    for start, end in sorted(set(spans)):
        out.append(text[pos:start] + MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out), len(spans)


def mask_pem(text: str) -> tuple[str, int]:
    """Mask the bodies of private-key PEM blocks; an unclosed block masks its base64 lines."""
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


def _replace_random(match: re.Match[str]) -> str | None:
    """Mask the ``value`` group when it looks random (after ``Bearer``)."""
    return mask_group(match, "value") if looks_random(match.group("value")) else None


def _replace_random_whole(match: re.Match[str]) -> str | None:
    """Mask the whole match when its ``value`` group looks random (``sk-...``)."""
    return MASK if looks_random(match.group("value")) else None


def _replace_value(match: re.Match[str]) -> str:
    """Mask the ``value`` group."""
    return mask_group(match, "value")


def _replace_whole(match: re.Match[str]) -> str:
    """Mask the whole match."""
    return MASK


def _replace_maskable(match: re.Match[str]) -> str | None:
    """Mask the ``value`` group unless it is short, a keyword or a placeholder."""
    return mask_group(match, "value") if maskable(match.group("value")) else None


#: Each with a text its match always holds: when the text lacks it, the pass is skipped.
_PASSES: tuple[tuple[re.Pattern[str], str, Replace], ...] = (
    (_BEARER, "", _replace_random),
    (_AWS_SECRET, "", _replace_value),
    (_PREFIXED_KEY, "k", _replace_random_whole),
    (_AWS_KEY_ID, "A", _replace_whole),
    *((pattern, "", _replace_whole) for pattern in _OPAQUE_TOKENS),
    (_SLACK_WEBHOOK, "hooks.slack.com/", _replace_value),
    (_URL_PASSWORD, "://", _replace_maskable),
    (_CURL_USER, "-u", _replace_maskable),
    (_MYSQL_PASSWORD, " -p", _replace_maskable),
)
