r"""Masking secrets in text before anything leaves the machine.

Cell sources, outputs, tracebacks, variable summaries and interpolated
values all pass through :func:`mask_secrets` before they are put into a
request. A secret is replaced by ``***`` and the text around it is kept, so
the model still understands the code (``OPENAI_API_KEY=***``,
``password = "***"``, ``Bearer ***``).

What is masked, in this order:

1. string literals split across ``+`` or implicit concatenation whose joined
   value is a secret by the rules below or is assigned to a secret name
   (:mod:`.masking_layout`);
2. every configured secret (``extra_secrets``, e.g. the API key) wherever it
   occurs, in any letter case, and any run of 12 or more of its characters;
   values shorter than 6 characters are ignored (:func:`.masking_shapes.mask_key`);
3. the body of private-key PEM blocks (``-----BEGIN ... PRIVATE KEY-----``),
   keeping the BEGIN/END lines; an unclosed block masks the base64 lines after it;
4. token shapes (:mod:`.masking_shapes`): ``sk-``/``sk-proj-``/``rk-``/``pk_live_``
   style keys, the credential after ``Bearer``/``Basic``, AWS access key ids,
   ``aws_secret_access_key`` values and a quoted 40-character secret right
   after an access key id (``Session('AKIA...', '...')``), GitHub (``ghp_``,
   ``github_pat_``), Slack (``xox?-`` and webhook URLs), Google (``AIza``),
   Hugging Face (``hf_``), SendGrid (``SG.``), Z.ai (32 hex, a dot, 16+
   alphanumerics), JWTs, the password in ``scheme://user:password@host``
   (which may hold ``@``), ``curl -u user:password`` and ``mysql -pPASSWORD``.
   A candidate after ``sk-``/``rk-``/``pk-`` or ``Bearer``/``Basic`` is taken
   for prose and kept unless it looks random: 32+ characters, or a digit, one
   of ``+/=_``, or a capital after a small letter;
5. values given to a *secret name* (see :func:`is_secret_name`): string and
   number literals after ``=``, ``:=``, ``=>`` or ``:`` with a bare, quoted,
   JSON-escaped (``\"api_key\": \"...\"``) or subscripted name (code,
   kwargs, JSON, logs, ``os.environ["NAME"] = "..."``); bare values in
   ``NAME=value`` lines (also after ``export``/``set``/``%env``), ``name = value``
   lines (ini) and ``name: value`` lines (YAML); ``--token=v`` and
   ``--password v`` flags; ``?token=v`` query parameters; header strings such
   as ``'X-Api-Key: v'`` (``curl -H``); ``;AccountKey=v;`` pairs of
   connection strings;
6. the secret columns of tables whose header row names them on its own line.

Values that are not secrets are kept: empty or very short values (under 4
characters), ``None``/``null``/``True``/``false``, placeholders (``***``,
``<your-key>``, ``...``, ``xxx``, ``$VAR``, ``{var}``, ``YOUR_API_KEY``), and
code references: in ``name = value`` lines an identifier, dotted name, call,
subscript or any expression with parentheses (``api_key = os.environ["X"]``,
``token = get_token()``); in YAML lines dotted names, calls and Python type
hints (``api_key: str``). Masking is idempotent: masking masked text changes
nothing and counts nothing. Every pass is linear in the input size.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .masking_layout import mask_split_literals, mask_tables
from .masking_names import (
    MASK,
    PLACEHOLDER,
    Replace,
    SecretText,
    hint_lines,
    is_secret_name,
    mask_group,
    maskable,
    substitute,
)
from .masking_shapes import mask_key, mask_pem, mask_shapes

__all__ = ["MASK", "Masked", "is_secret_name", "mask_key", "mask_secrets"]

_MIN_CONFIGURED = 6

_STRING = (
    r"(?P<prefix>[rRbBuUfF]{0,2})(?P<quote>[\"'])"
    r"(?P<value>(?:[^\"'\\\n]|\\.|(?!(?P=quote))[\"'])*)(?P=quote)"
)
_KEYED_LITERAL = re.compile(
    r"(?:(?<![\w.-])(?P<name>[A-Za-z_][\w.-]*)|(?P<q>[\"'])(?P<qname>[A-Za-z_][\w. -]*)(?P=q)\]?)"
    r"[ \t]*(?::[ \t]*[A-Za-z_][\w.\[\]|, \t]*=|:=|=>|=|:)[ \t]*"
    r"(?:" + _STRING + r"|(?P<number>-?\d[\d_]*(?:\.\d+)?)(?![\w.]))"
)
# JSON inside a string, as logs print it: {\"api_key\": \"...\"}.
_ESCAPED_JSON = re.compile(
    r"\\(?P<q>[\"'])(?P<name>[A-Za-z_][\w. -]*)\\(?P=q)[ \t]*:[ \t]*"
    r"\\(?P=q)(?P<value>(?:[^\\\n]|\\(?!(?P=q)).)*)\\(?P=q)"
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
_QUERY_PARAM = re.compile(r"[?&](?P<name>[A-Za-z_][\w.-]*)=(?P<value>[^&#\s\"'<>]+)")
# An HTTP header inside one string: curl -H 'X-Api-Key: ...', headers=["Authorization: ..."].
_HEADER_STRING = re.compile(
    r"(?P<q>[\"'])(?P<name>[A-Za-z][\w-]*)[ \t]*:[ \t]*(?P<value>[^\"'\r\n]+?)[ \t]*(?P=q)"
)
# A key=value pair of a connection string (Azure's ;AccountKey=...;, ODBC's ;PWD=...;).
_SEMICOLON_PAIR = re.compile(
    r"(?<![\w-])(?P<name>[A-Za-z][\w]*)[ \t]*=[ \t]*(?P<value>[^;\"'\s]+)(?P<end>;?)"
)

_CALL_OR_SUBSCRIPT = re.compile(r"[A-Za-z_][\w.]*[ \t]*[(\[]")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_TYPE_HINT = re.compile(
    r"(?:str|bytes|int|float|bool|SecretStr|SecretBytes|Any|object)(?:[ \t]*\|[ \t]*None)?"
)


@dataclass(frozen=True)
class Masked:
    """The result of :func:`mask_secrets`: the masked ``text`` and ``count`` of spans masked."""

    text: str
    count: int


def mask_secrets(text: str, extra_secrets: Iterable[SecretText] = ()) -> Masked:
    """Return ``text`` with secrets replaced by ``***`` and how many were masked.

    ``extra_secrets`` are values to mask wherever they occur, in any case and
    any 12+ character run of them (the configured API key, ...); ``None`` and
    values shorter than 6 characters are ignored; wrapped values (with a
    ``reveal()`` method, such as the key's ``Secret``) are unwrapped only
    here, so callers never hold the key's text. The module docstring lists
    every rule.
    """
    secrets = _usable_secrets(extra_secrets)

    def secrets_in(value: str) -> int:
        return sum(mask_key(value, s)[1] for s in secrets) + mask_shapes(value)[1]

    text, count = mask_split_literals(text, secrets_in)
    for secret in secrets:
        text, found = mask_key(text, secret)
        count += found
    text, found = mask_pem(text)
    count += found
    text, found = mask_shapes(text)
    count += found
    text, found = _name_passes(text)
    return Masked(text, count + found)


def _name_passes(text: str) -> tuple[str, int]:
    """Run the name-based passes on the lines that could hold a secret name.

    Every name-based rule needs a name that :func:`is_secret_name` accepts,
    which always contains one of :data:`NAME_HINT`'s words, and none spans
    lines (a table's header names its column for the lines below it); so only
    lines with such a word are looked at, found by one scan of the text, which
    keeps megabytes of context cheap to mask.
    """
    hinted = hint_lines(text)
    if not hinted:
        return text, 0
    lines = text.split("\n")
    count = 0
    for i in hinted:
        line = lines[i]
        for pattern, needle, replace in _NAME_PASSES:
            if needle in line:
                line, found = substitute(pattern, line, replace)
                count += found
        lines[i] = line
    count += mask_tables(lines, hinted)
    return "\n".join(lines), count


def _usable_secrets(values: Iterable[SecretText]) -> list[str]:
    """Return the configured secrets worth masking, longest first."""
    texts = (v if isinstance(v, str) or v is None else v.reveal() for v in values)
    usable = {
        value.strip()
        for value in texts
        if isinstance(value, str)
        and len(value.strip()) >= _MIN_CONFIGURED
        and not PLACEHOLDER.search(value.strip())
    }
    return sorted(usable, key=len, reverse=True)


def _replace_keyed_literal(match: re.Match[str]) -> str | None:
    """Mask a string or number literal assigned to a secret name."""
    if not is_secret_name(match.group("name") or match.group("qname")):
        return None
    group = "value" if match.group("quote") else "number"
    if not maskable(match.group(group)):
        return None
    return mask_group(match, group)


def _replace_named_value(match: re.Match[str]) -> str | None:
    """Mask the ``value`` group when ``name`` is a secret name and the value maskable."""
    if not is_secret_name(match.group("name")) or not maskable(match.group("value")):
        return None
    return mask_group(match, "value")


def _replace_semicolon_pair(match: re.Match[str]) -> str | None:
    """Mask ``Name=value`` in a connection string (a ``;`` on either side)."""
    start = match.start()
    joined = match.group("end") or (start > 0 and match.string[start - 1] == ";")
    return _replace_named_value(match) if joined else None


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
    if not value or not maskable(value) or _looks_like_code(value, style):
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
    if not maskable(value):
        return None
    if group == "value" and match.group("sep") != "=" and value.isalpha() and value.islower():
        return None  # "use --token to authenticate": prose, not a value
    return mask_group(match, group)


#: Passes whose match needs a secret-like name on the same line (see _name_passes).
#: Each with a text its match always holds: lines without it skip the pass.
_NAME_PASSES: tuple[tuple[re.Pattern[str], str, Replace], ...] = (
    (_KEYED_LITERAL, "", _replace_keyed_literal),
    (_ESCAPED_JSON, "\\", _replace_named_value),
    (_HEADER_STRING, ":", _replace_named_value),
    (_LINE_ASSIGN, "", _replace_line_assignment),
    (_CLI_FLAG, "--", _replace_cli_flag),
    (_QUERY_PARAM, "=", _replace_named_value),
    (_SEMICOLON_PAIR, ";", _replace_semicolon_pair),
)
