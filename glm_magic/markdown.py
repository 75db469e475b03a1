"""Finding fenced code blocks in Markdown (CommonMark-style fences).

Used to give a reply its ``.code``, to insert generated code as a cell and to
put Copy/Insert buttons on code blocks. Only fences count: ```` ``` ```` or
``~~~`` of length three or more, closed by the same character at least as
long; an unclosed fence runs to the end of the text (a reply cut mid-block
still yields its code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "PYTHON_LANGS",
    "CodeBlock",
    "Segment",
    "code_blocks",
    "fence_for",
    "fenced",
    "join_code",
    "segments",
]

_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})[ \t]*([^`\n]*?)[ \t]*$")

#: Info strings we treat as runnable Python in a notebook cell.
PYTHON_LANGS = frozenset({"", "python", "py", "python3", "ipython", "ipython3", "pycon"})


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


@dataclass(frozen=True)
class Segment:
    """A run of prose (``lang is None``) or one fenced code block, in document order."""

    text: str
    lang: str | None = None
    closed: bool = True

    @property
    def is_code(self) -> bool:
        """Whether this is a fenced code block."""
        return self.lang is not None


def segments(text: str) -> list[Segment]:
    """Split Markdown into prose and fenced code blocks, in order.

    An unclosed fence runs to the end (a streaming or cut reply).
    """
    out: list[Segment] = []
    prose: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m.group(2)[0] == "`" and "`" in m.group(3)):
            prose.append(lines[i])
            i += 1
            continue
        if prose:
            out.append(Segment("\n".join(prose)))
            prose = []
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3)
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            line = lines[i]
            stripped = line.lstrip(" ")
            if (
                len(line) - len(stripped) <= 3
                and stripped.startswith(fence[0] * len(fence))
                and not stripped.rstrip().strip(fence[0])
            ):
                closed = True
                i += 1
                break
            # Content lines lose up to the fence's own indentation, as CommonMark says.
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            i += 1
        words = info.split()
        out.append(Segment("\n".join(body), words[0] if words else "", closed))
    if prose:
        out.append(Segment("\n".join(prose)))
    return out


def code_blocks(text: str) -> list[CodeBlock]:
    """Return the fenced code blocks of ``text`` in order."""
    return [
        CodeBlock(lang=seg.lang or "", code=seg.text, closed=seg.closed)
        for seg in segments(text)
        if seg.is_code
    ]


_BACKTICK_RUNS = re.compile(r"`{3,}")


def fence_for(body: str) -> str:
    """A backtick fence longer than any run of three or more backticks in ``body``."""
    runs = _BACKTICK_RUNS.findall(body)
    return "`" * (max(map(len, runs)) + 1) if runs else "```"


def fenced(body: str, lang: str = "") -> str:
    """``body`` as a fenced code block that no backticks inside it can close."""
    fence = fence_for(body)
    return f"{fence}{lang}\n{body.rstrip()}\n{fence}"


def join_code(text: str, *, python_only: bool = True) -> str:
    """Join the (Python) code blocks of ``text`` into one cell's source.

    When ``python_only`` is set and there are Python blocks, other languages
    (shell output, JSON samples) are left out; when there are none, all
    blocks are joined so the user still gets something to insert.
    """
    blocks = code_blocks(text)
    chosen = [b for b in blocks if b.is_python] if python_only else blocks
    if not chosen:
        chosen = blocks
    return "\n\n".join(b.code.strip("\n") for b in chosen if b.code.strip())
