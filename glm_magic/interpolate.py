r"""Brace-safe interpolation of a ``%%glm`` cell's text before it is sent.

jupyter-ai runs ``str.format_map`` over the whole prompt, so any pasted code,
JSON or LaTeX with braces breaks it (jupyter-ai#27). This module owns the
opposite rule: recognise one narrow placeholder grammar, substitute only what
resolves, and leave every other character exactly as typed.

**Placeholders.** An *expression* is an identifier, then any number of
``.attribute`` steps, then at most one subscript holding an integer or a
quoted string without backslashes: ``{df}``, ``{model.config.name}``,
``{In[3]}``, ``{Out[-1]}``, ``{d["k"]}``. A *placeholder group* is a maximal
run of ``m`` opening braces, an expression, and a maximal run of ``n`` closing
braces, where the first brace does not directly follow a word character or
one of ``\ $ ^ }`` (so ``\frac{a}{b}``, ``x_{i}``, ``x^{n}`` and ``${HOME}``
are never touched). Let ``k = min(m, n)``: the ``m - k`` outer ``{`` and
``n - k`` outer ``}`` stay as typed, ``k // 2`` brace pairs are escapes and
each collapses to one literal brace on its side, and when ``k`` is odd the
innermost pair is the placeholder itself. So ``{x}`` substitutes,
``{{x}}`` gives the literal text ``{x}``, ``{{{x}}}`` gives ``{`` + value +
``}``, and ``{"a": {b}}`` gives ``{"a": `` + value + ``}``.

A placeholder is replaced by ``str(value)`` only when it *resolves*: the root
name is in the namespace and does not start with ``__``; no attribute starts
with ``_``; every ``getattr``/``getitem`` succeeds; and ``str()`` succeeds.
Otherwise it stays as typed (its escape pairs still collapse). Nothing is
evaluated: there is no ``eval`` and no call beyond ``getattr``, ``getitem``
and ``str``. Substituted values are never scanned again.

**Everything else stays as typed**, including lone ``{{`` and ``}}``: dict,
set and JSON literals (``{"a": {"b": 1}}`` keeps both closing braces),
f-string fields such as ``{x!r}`` and ``{x:>10}``, ``{ name }`` with spaces,
Jinja's ``{{ name }}``, unknown names and lookups that raise.

**Code is never touched.** Fenced blocks follow CommonMark: a line of at least
three backticks or tildes opens a fence (a backtick fence's info string may
not contain a backtick), a line of the same character at least as long and
nothing else closes it, and an unclosed fence runs to the end of the text.
Unlike CommonMark, fences may be indented by any amount of spaces or tabs, so
fences inside list items and indented docstrings are protected too. Inline
code spans (a backtick run closed by the next run of the same length within
the same paragraph) are protected as well.

**Long values** are cut in the middle to ``max_chars`` characters of the value
plus a marker such as ``…[truncated 12345 chars]…``.

**Secrets.** A ``clean`` function, when given, sees every value before it is
cut (the magic masks secrets with it, as in context) and what it returns is
what goes into the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_MAX_CHARS", "Interpolated", "interpolate", "truncate_middle"]

#: Default cap on the characters kept from one substituted value.
DEFAULT_MAX_CHARS = 20_000

_IDENT = r"[^\W\d]\w*"
_EXPR = (
    r"(?P<root>" + _IDENT + r")"
    r"(?P<attrs>(?:\." + _IDENT + r")*)"
    r"(?:\[(?P<key>-?\d+|'[^'\\\n]*'|\"[^\"\\\n]*\")\])?"
)
_PLACEHOLDER = re.compile(r"(?<![\w\\$^{}])(?P<open>\{+)(?P<expr>" + _EXPR + r")(?P<close>\}+)")
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$", re.MULTILINE)
_FENCE_CLOSE = {
    "`": re.compile(r"^[ \t]*(?P<fence>`{3,})[ \t]*\r?$", re.MULTILINE),
    "~": re.compile(r"^[ \t]*(?P<fence>~{3,})[ \t]*\r?$", re.MULTILINE),
}
_BACKTICKS = re.compile(r"`+")
_BLANK_LINE = re.compile(r"\n[ \t]*\r?\n")

_MISSING: Any = object()


@dataclass(frozen=True)
class Interpolated:
    """The result of :func:`interpolate`.

    ``text`` is the text to send. ``replaced`` lists the expressions that were
    substituted (without braces, e.g. ``"In[3]"``), each once, in order of
    first appearance, so the UI can tell the user what went into the prompt.
    """

    text: str
    replaced: list[str] = field(default_factory=list)


def truncate_middle(text: str, max_chars: int) -> str:
    """Return ``text`` cut to ``max_chars`` characters with a marker in the middle.

    The first and last halves are kept and ``…[truncated N chars]…`` stands for
    the ``N`` characters dropped; text within the limit comes back unchanged.
    Raises :class:`ValueError` when ``max_chars`` is below 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    if len(text) <= max_chars:
        return text
    head = (max_chars + 1) // 2
    tail = max_chars - head
    dropped = len(text) - max_chars
    return f"{text[:head]}…[truncated {dropped} chars]…{text[len(text) - tail :]}"


def interpolate(
    text: str,
    namespace: Mapping[str, object],
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    clean: Callable[[str], str] | None = None,
) -> Interpolated:
    """Substitute resolvable ``{expression}`` placeholders in ``text``.

    ``namespace`` is where root names are looked up (typically the shell's
    ``user_ns``). The grammar, the escape rule and what counts as code are
    described in the module docstring. Each value is cut with
    :func:`truncate_middle` to ``max_chars``, after ``clean`` (if given) has
    seen it. Never raises for any ``text``
    and any namespace (except :class:`ValueError` for ``max_chars < 1``).

    When nothing resolves (e.g. an empty namespace) the only change is that
    each placeholder group's ``k`` hugging brace pairs become ``ceil(k / 2)``
    pairs: ``{{x}}`` becomes ``{x}``, ``{x}`` stays, and every brace that is
    not part of a placeholder group, in or out of code, stays as typed.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    if "{" not in text:
        return Interpolated(text)
    out: list[str] = []
    replaced: dict[str, None] = {}
    for start, end, is_code in _segments(text):
        if is_code:
            out.append(text[start:end])
            continue
        pos = start
        for m in _PLACEHOLDER.finditer(text, start, end):
            out.append(text[pos : m.start()])
            out.append(_render_group(m, namespace, max_chars, replaced, clean))
            pos = m.end()
        out.append(text[pos:end])
    return Interpolated("".join(out), list(replaced))


def _render_group(
    m: re.Match[str],
    namespace: Mapping[str, object],
    max_chars: int,
    replaced: dict[str, None],
    clean: Callable[[str], str] | None,
) -> str:
    """Return the replacement text for one placeholder group."""
    opening, expr, closing = m.group("open"), m.group("expr"), m.group("close")
    k = min(len(opening), len(closing))
    escapes = k // 2
    inner = expr
    if k % 2:
        value = _resolve(m, namespace)
        rendered = None if value is _MISSING else _safe_str(value)
        if rendered is None:
            inner = "{" + expr + "}"
        else:
            if clean is not None:
                # Cut very long values first: masking stays linear and bounded.
                rendered = clean(truncate_middle(rendered, 50 * max_chars))
            inner = truncate_middle(rendered, max_chars)
            replaced[expr] = None
    outer_open = "{" * (len(opening) - k + escapes)
    outer_close = "}" * (len(closing) - k + escapes)
    return outer_open + inner + outer_close


def _resolve(m: re.Match[str], namespace: Mapping[str, object]) -> Any:
    """Look up a placeholder expression, or return ``_MISSING``."""
    root = m.group("root")
    if root.startswith("__"):
        return _MISSING
    try:
        value: Any = namespace.get(root, _MISSING)
    except Exception:
        return _MISSING
    if value is _MISSING:
        return _MISSING
    attrs = m.group("attrs")
    if attrs:
        for name in attrs[1:].split("."):
            if name.startswith("_"):
                return _MISSING
            try:
                value = getattr(value, name)
            except Exception:
                return _MISSING
    key = m.group("key")
    if key is not None:
        try:
            index: object = key[1:-1] if key[0] in "'\"" else int(key)
            value = value[index]
        except Exception:
            return _MISSING
    return value


def _safe_str(value: object) -> str | None:
    """Return ``str(value)``, or ``None`` when that raises."""
    try:
        return str(value)
    except Exception:
        return None


def _segments(text: str) -> Iterator[tuple[int, int, bool]]:
    """Cover ``text`` in order with ``(start, end, is_code)`` ranges."""
    pos = 0
    for block_start, block_end in _fenced_blocks(text):
        yield from _prose_segments(text, pos, block_start)
        yield block_start, block_end, True
        pos = block_end
    yield from _prose_segments(text, pos, len(text))


def _fenced_blocks(text: str) -> Iterator[tuple[int, int]]:
    """Yield the ``(start, end)`` of each fenced code block, in order."""
    pos, size = 0, len(text)
    while pos < size:
        opening = _FENCE_OPEN.search(text, pos)
        if opening is None:
            return
        fence = opening.group("fence")
        if fence[0] == "`" and "`" in opening.group("info"):
            pos = opening.end() + 1  # an inline code span, not a fence
            continue
        closer = _FENCE_CLOSE[fence[0]]
        search_from = opening.end()
        while True:
            closing = closer.search(text, search_from)
            if closing is None:
                yield opening.start(), size
                return
            if len(closing.group("fence")) >= len(fence):
                yield opening.start(), closing.end()
                pos = closing.end()
                break
            search_from = closing.end()


def _prose_segments(text: str, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """Split ``text[start:end]`` (outside fences) into prose and inline code."""
    pos = start
    paragraph_start = start
    breaks = [m.end() for m in _BLANK_LINE.finditer(text, start, end)]
    for paragraph_end in [*breaks, end]:
        for span_start, span_end in _code_spans(text, paragraph_start, paragraph_end):
            if span_start > pos:
                yield pos, span_start, False
            yield span_start, span_end, True
            pos = span_end
        paragraph_start = paragraph_end
    if end > pos:
        yield pos, end, False


def _code_spans(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Yield inline code spans in one paragraph, in linear time.

    A run of backticks opens a span that the next run of exactly the same
    length closes; a run without such a partner is literal text.
    """
    runs = [(m.start(), m.end()) for m in _BACKTICKS.finditer(text, start, end)]
    by_length: dict[int, list[int]] = {}
    for index, (run_start, run_end) in enumerate(runs):
        by_length.setdefault(run_end - run_start, []).append(index)
    cursor: dict[int, int] = {}
    i = 0
    while i < len(runs):
        length = runs[i][1] - runs[i][0]
        candidates = by_length[length]
        c = cursor.get(length, 0)
        while c < len(candidates) and candidates[c] <= i:
            c += 1
        cursor[length] = c
        if c < len(candidates):
            j = candidates[c]
            yield runs[i][0], runs[j][1]
            i = j + 1
        else:
            i += 1
