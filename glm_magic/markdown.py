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

__all__ = ["PYTHON_LANGS", "CodeBlock", "code_blocks", "join_code"]

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


def code_blocks(text: str) -> list[CodeBlock]:
    """Return the fenced code blocks of ``text`` in order."""
    blocks: list[CodeBlock] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None or (m.group(2)[0] == "`" and "`" in m.group(3)):
            i += 1
            continue
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
        lang = info.split()[0] if info.split() else ""
        blocks.append(CodeBlock(lang=lang, code="\n".join(body), closed=closed))
    return blocks


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
