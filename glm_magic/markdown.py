r"""Markdown through one well-kept parser: markdown-it-py (CommonMark), raw HTML off.

Everything in glm-magic that reads Markdown goes through :func:`parser`: the
code blocks that become a reply's ``.code`` and inserted cells
(:func:`code_blocks`), the HTML that shows a reply (:mod:`glm_magic.htmlrender`)
and the Markdown cells written from a model's text (:func:`safe_markdown`).
So what is shown and what is inserted always agree.

The parser is CommonMark plus GFM tables and strikethrough, with math
(``$...$``, ``$$...$$``, ``\(...\)``, ``\[...\]``, from ``mdit-py-plugins``)
recognised so it is kept verbatim for the notebook's MathJax. Raw HTML is
never parsed as HTML (``html=False``): a model's tags are text.

**Currency rule.** A ``$`` directly followed by a digit, optionally after
one space or sign (``$5``, ``$1,200``, ``$ 3``, ``$-2``), is a literal dollar,
never the start of math: data-analysis answers are full of amounts, and
JupyterLab would otherwise set ``from $1.2M to $3.4M`` as italic math.
Math that starts with a digit must be written ``\(2x\)``.
Every literal ``$`` (currency, escaped ``\$``, or one that closes nothing)
is written out as :data:`DOLLAR`, an HTML entity inside a ``<span>``: checked
in JupyterLab 4.6 and Notebook 7.6, neither their Markdown pre-pass nor
MathJax pairs it with another ``$`` (a plain ``\$`` does get paired there).

The parser is imported lazily (on the first reply), so ``%load_ext`` stays cheap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

__all__ = [
    "DOLLAR",
    "MAX_NESTING",
    "PYTHON_LANGS",
    "CodeBlock",
    "close_open_fence",
    "code_blocks",
    "escape_text",
    "fence_closed",
    "fence_for",
    "fenced",
    "join_code",
    "parser",
    "safe_markdown",
    "tokens",
    "without_code",
]

#: Info strings we treat as runnable Python in a notebook cell.
PYTHON_LANGS = frozenset({"", "python", "py", "python3", "ipython", "ipython3", "pycon"})

#: How a literal ``$`` is written, in HTML and in Markdown: never read as math.
DOLLAR = "<span>&#36;</span>"

#: Deepest nesting of blocks and inlines the parser follows (quotes in quotes,
#: lists in lists); deeper input is shown as text. It keeps rendering iterative
#: in practice and linear in the input (a reply of 1,500 ``>`` is one paragraph).
MAX_NESTING = 20

# "$" + optional single space or sign + a digit (or ".5"): an amount, not math.
_CURRENCY = re.compile(r"\$[ +\-\u2212]?\.?\d")


def _currency_rule(state: Any, silent: bool) -> bool:
    """Inline rule: a ``$`` that starts an amount is plain text (see the module doc)."""
    pos = state.pos
    if state.src[pos] != "$" or not _CURRENCY.match(state.src, pos):
        return False
    if not silent:
        token = state.push("text", "", 0)
        token.content = "$"
    state.pos = pos + 1
    return True


@lru_cache(maxsize=1)
def parser() -> MarkdownIt:
    """The one configured Markdown parser (built on first use)."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from mdit_py_plugins.texmath import texmath_plugin

    md = MarkdownIt("commonmark", {"html": False, "maxNesting": MAX_NESTING})
    md.enable(["table", "strikethrough"])
    # allow_digits=False: "$5 and $x" is not math (a closing "$" before a digit).
    md.use(dollarmath_plugin, allow_digits=False, allow_space=False, double_inline=True)
    md.use(texmath_plugin, delimiters="brackets")
    md.inline.ruler.after("text", "glm_currency", _currency_rule)
    return md


@lru_cache(maxsize=32)
def tokens(text: str) -> tuple[Token, ...]:
    """The parser's block tokens for ``text`` (cached; treat them as read-only)."""
    # Cached: a reply asks for its blocks and its HTML from the same text.
    return tuple(parser().parse(text))


# -- code blocks ---------------------------------------------------------------------


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its language (first word of the info string) and its code."""

    lang: str
    code: str
    closed: bool = True

    @property
    def is_python(self) -> bool:
        """Whether the block looks like Python (or has no language)."""
        return self.lang.lower() in PYTHON_LANGS


def fence_closed(token: Token) -> bool:
    """Whether a ``fence`` token had its closing fence (a cut reply's last block may not)."""
    start, end = token.map or (0, 0)
    content = token.content
    # A last content line without its newline is the end of the input, not a fence.
    lines = content.count("\n") + (1 if content and not content.endswith("\n") else 0)
    # The token spans the opening line, the content lines and, if closed, the closing line.
    return end - start - 1 - lines >= 1


def code_blocks(text: str) -> list[CodeBlock]:
    """The fenced code blocks of ``text``, in order (in lists and quotes too).

    An unclosed fence runs to the end of the text (``closed=False``): a reply
    cut mid-block still shows its code, and callers that insert code can
    leave it out.
    """
    return [
        CodeBlock(
            lang=t.info.split()[0] if t.info.split() else "",
            code=t.content[:-1] if t.content.endswith("\n") else t.content,
            closed=fence_closed(t),
        )
        for t in tokens(text)
        if t.type == "fence"
    ]


def without_code(text: str, *, closed_only: bool = False) -> str:
    """``text`` minus the fenced blocks that :func:`join_code` takes (a fix's diagnosis).

    With ``closed_only`` (as ``join_code``'s) a block the text ends inside stays.
    """
    fences = [
        t
        for t in tokens(text)
        if t.type == "fence" and t.map and (fence_closed(t) or not closed_only)
    ]
    python_only = any(_lang(t) in PYTHON_LANGS for t in fences)
    drop: set[int] = set()
    for t in fences:
        if not python_only or _lang(t) in PYTHON_LANGS:
            drop.update(range(*(t.map or (0, 0))))
    kept = [line for i, line in enumerate(text.split("\n")) if i not in drop]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


def close_open_fence(text: str) -> str:
    """``text`` with a closing fence added when it ends inside a fenced code block.

    Markdown written after a cut reply's text (a note, a footer) would
    otherwise land inside its last, unclosed block.
    """
    fences = [t for t in tokens(text) if t.type == "fence"]
    if not fences or fence_closed(fences[-1]):
        return text
    return f"{text.rstrip(chr(10))}\n{fences[-1].markup}"


def _lang(token: Token) -> str:
    words = token.info.split()
    return words[0].lower() if words else ""


_BACKTICK_RUNS = re.compile(r"`{3,}")


def fence_for(body: str) -> str:
    """A backtick fence longer than any run of three or more backticks in ``body``."""
    runs = _BACKTICK_RUNS.findall(body)
    return "`" * (max(map(len, runs)) + 1) if runs else "```"


def fenced(body: str, lang: str = "") -> str:
    """``body`` as a fenced code block that no backticks inside it can close."""
    fence = fence_for(body)
    return f"{fence}{lang}\n{body.rstrip()}\n{fence}"


def join_code(text: str, *, python_only: bool = True, closed_only: bool = False) -> str:
    """Join the (Python) code blocks of ``text`` into one cell's source.

    When ``python_only`` is set and there are Python blocks, other languages
    (shell output, JSON samples) are left out; when there are none, all
    blocks are joined so the user still gets something to insert.
    ``closed_only`` leaves out a block the text ends inside (a cut reply's).
    """
    blocks = [b for b in code_blocks(text) if b.closed or not closed_only]
    chosen = [b for b in blocks if b.is_python] if python_only else blocks
    if not chosen:
        chosen = blocks
    return "\n\n".join(b.code.strip("\n") for b in chosen if b.code.strip())


# -- Markdown that is safe to store -------------------------------------------------

# Characters that open inline markup anywhere, and those that open a block at
# the start of a line; "$", "<", ">" and "&" get entities instead.
_PUNCT = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^(\s*\d*)([#+=-]|(?<=\d)[.)])")


def escape_text(value: str) -> str:
    """``value`` as Markdown that shows exactly these characters, never markup or math.

    For text glm-magic writes itself (model ids in a table, file names, notes,
    footers) and for literal text of a model's reply rewritten by
    :func:`safe_markdown`: markup characters are backslash-escaped, ``<``,
    ``>`` and ``&`` become entities and every ``$`` becomes :data:`DOLLAR`.
    Newlines become spaces.
    """
    out = _PUNCT.sub(r"\\\1", value.replace("\r", " ").replace("\n", " "))
    out = _LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", out)
    out = out.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace("$", DOLLAR)


def _code_span(content: str) -> str:
    ticks = max((len(m) for m in re.findall(r"`+", content)), default=0)
    fence = "`" * (ticks + 1)
    pad = " " if content.startswith("`") or content.endswith("`") or not content.strip() else ""
    return f"{fence}{pad}{content}{pad}{fence}"


def _inline_markdown(children: list[Token]) -> str:
    """Markdown for one block's inline tokens, with every literal written safely."""
    out: list[str] = []
    links: list[str] = []
    in_autolink = False
    for t in children:
        kind = t.type
        if in_autolink and kind != "link_close":
            continue  # an autolink's text is its address, written whole below
        if kind == "text":
            out.append(escape_text(t.content))
        elif kind == "code_inline":
            out.append(_code_span(t.content))
        elif kind == "softbreak":
            out.append("\n")
        elif kind == "hardbreak":
            out.append("\\\n")
        elif kind in ("em_open", "em_close", "strong_open", "strong_close", "s_open", "s_close"):
            out.append(t.markup)
        elif kind == "link_open":
            href = _url(str(t.attrs.get("href", "")))
            in_autolink = t.markup == "autolink"
            links.append(href)
            out.append(f"<{href}>" if in_autolink else "[")
        elif kind == "link_close":
            href = links.pop() if links else ""
            out.append("" if in_autolink else f"]({href})")
            in_autolink = False
        elif kind == "image":
            src = _url(str(t.attrs.get("src", "")))
            out.append(f"![{escape_text(t.content)}]({src})")
        elif kind in ("math_inline", "math_inline_double"):
            delim = "$$" if kind == "math_inline_double" else "$"
            out.append(f"{delim}{t.content}{delim}")
        else:  # anything else is shown as its text
            out.append(escape_text(t.content))
    return "".join(out)


def _url(url: str) -> str:
    # The parser has validated and percent-encoded it; keep it one destination token.
    return url.replace("(", "%28").replace(")", "%29").replace(" ", "%20").replace("<", "%3C")


_UNSAFE_LITERAL = re.compile(r"[<>&$\[\]]")


def safe_markdown(text: str) -> str:
    """A model's Markdown, safe to store as a Markdown cell and to render anywhere.

    The text is parsed with the same parser as everything else; each line of
    inline text that the parser read as *literal* characters but another
    Markdown renderer could read as HTML, a link or math (``<tag>``,
    ``&entity;``, ``[a](javascript:...)``, a currency ``$``) is rewritten
    from the parser's tokens, so raw HTML shows as text, refused links stay
    text and amounts never become math. Code (spans and fences) and real math
    are untouched; lines that need nothing stay exactly as the model wrote them.
    """
    lines = text.split("\n")
    cursor: dict[int, int] = {}  # per line: where the next inline may start (table rows)
    for t in tokens(text):
        if t.type != "inline" or not t.map or not t.children:
            continue
        if not any(c.type == "text" and _UNSAFE_LITERAL.search(c.content) for c in t.children):
            continue
        start = t.map[0]
        old = t.content.split("\n")
        new = _inline_markdown(list(t.children)).split("\n")
        if len(new) != len(old) or start + len(old) > len(lines):
            new = [" ".join(new)] + [""] * (len(old) - 1) if len(old) > 1 else [" ".join(new)]
        for offset, (inner, repl) in enumerate(zip(old, new, strict=True)):
            i = start + offset
            line = lines[i] if i < len(lines) else ""
            at = line.find(inner, cursor.get(i, 0)) if inner else -1
            if at < 0:
                # Not found as written (unusual container shapes): write the line out whole.
                lines[i] = escape_text(line) if i < len(lines) else line
                continue
            lines[i] = line[:at] + repl + line[at + len(inner) :]
            cursor[i] = at + len(repl)
    return "\n".join(lines)
