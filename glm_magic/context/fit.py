"""Fitting context sections into a character budget, then rendering them as Markdown.

A :class:`Section` (a cell, the failure, the variables) is a title and some
:class:`Piece` s of text (a source, an output, a traceback, a summary). Fitting
works on lengths only, so text that will be thrown away is never copied,
scanned or masked:

1. sections are taken in priority order (the caller puts the failure and the
   variables first, then cells newest first) while their *smallest* form fits:
   each piece cut to its floor. The first cell that does not fit ends the cells,
   so what is kept is always the most recent run of cells;
2. one cap ``C`` shared by every piece is raised as far as the budget allows
   (a piece keeps ``max(C, floor)`` characters plus a cut marker, or all of it
   when shorter), so short outputs stay whole and only the longest are cut;
3. the kept sections are rendered with those caps, each piece cut in the middle
   by :func:`~glm_magic.context.cells.shorten`; fences grow past any backtick
   run in the text. Should the result still be over (long fences), the cap is
   lowered and, as a last resort, the lowest-priority section left out.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from ..markdown import fence_for
from .cells import shorten

__all__ = ["Fitted", "Piece", "Section", "fit"]

#: Room for the ``…[truncated N chars]…`` marker a cut adds.
MARKER = 32
FLOORS = {"source": 600, "output": 300, "error": 600, "variable": 200}
_MAX_ROUNDS = 12


@dataclass
class Piece:
    """A run of text in a section: ``label`` then ``text`` fenced as ``lang`` (inline if None)."""

    text: str
    kind: str  # "source" | "output" | "error" | "variable"
    label: str = ""
    lang: str | None = "text"

    @property
    def floor(self) -> int:
        """The fewest characters this piece is cut down to before its section is dropped."""
        return FLOORS.get(self.kind, 300)

    @property
    def overhead(self) -> int:
        """Characters around the text: label, fences, line breaks (3-backtick fences)."""
        if self.lang is None:
            return len(self.label) + 1
        return len(self.label) + 1 + len(self.lang) + 10


@dataclass
class Section:
    """A ``### title`` and its pieces; ``order`` places it in the text, ``kind`` names it."""

    title: str
    pieces: list[Piece]
    kind: str  # "cell" | "failure" | "variables"
    order: int
    count: int | None = None

    @property
    def overhead(self) -> int:
        """Fixed characters: the title line, the blank line after, each piece's frame."""
        return len(self.title) + 2 + sum(p.overhead for p in self.pieces)


@dataclass
class Fitted:
    """The rendered text, the sections kept (in text order) and left out, what was cut."""

    text: str
    kept: list[Section]
    dropped: list[Section]
    shortened: Counter[str] = field(default_factory=Counter)


def _min_size(piece: Piece) -> int:
    size = len(piece.text)
    return size if size <= piece.floor else piece.floor + MARKER


def _cap_of(piece: Piece, cap: int | None) -> int | None:
    return None if cap is None else max(cap, piece.floor)


class _Sizes:
    """Total kept size of many pieces under a shared cap, in O(log n) per query."""

    def __init__(self, pieces: list[Piece]) -> None:
        by_floor: dict[int, list[int]] = {}
        for piece in pieces:
            by_floor.setdefault(piece.floor, []).append(len(piece.text))
        self.groups: list[tuple[int, list[int], list[int]]] = []
        for floor, lengths in by_floor.items():
            lengths.sort()
            prefix = [0]
            for length in lengths:
                prefix.append(prefix[-1] + length)
            self.groups.append((floor, lengths, prefix))
        self.longest = max((g[1][-1] for g in self.groups), default=0)

    def total(self, cap: int) -> int:
        size = 0
        for floor, lengths, prefix in self.groups:
            c = max(cap, floor)
            whole = bisect.bisect_right(lengths, c)
            size += prefix[whole] + (len(lengths) - whole) * (c + MARKER)
        return size

    def best_cap(self, room: int) -> int | None:
        """The largest shared cap that fits ``room`` (``None``: nothing needs cutting)."""
        if self.total(self.longest) <= room:
            return None
        # Not strictly monotonic (a piece that just fits loses its marker), so keep
        # the invariant "lo fits" rather than trusting a closed form.
        lo, hi = 0, self.longest
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.total(mid) <= room:
                lo = mid
            else:
                hi = mid
        return lo


def _render_piece(piece: Piece, cap: int | None) -> str:
    body = piece.text if cap is None else shorten(piece.text, cap)
    body = body.rstrip("\n")
    if piece.lang is None:
        return f"{piece.label}{body}\n"
    fence = fence_for(body)
    label = f"{piece.label}\n" if piece.label else ""
    return f"{label}{fence}{piece.lang}\n{body}\n{fence}\n"


def _render(preamble: str, sections: list[Section], cap: int | None) -> str:
    parts = [preamble]
    for section in sorted(sections, key=lambda s: s.order):
        parts.append(section.title + "\n")
        parts.extend(_render_piece(p, _cap_of(p, cap)) for p in section.pieces)
        parts.append("\n")
    return "".join(parts).rstrip("\n") + "\n"


def fit(by_priority: list[Section], budget_chars: int, preamble: str) -> Fitted:
    """Keep, cut and render ``by_priority`` (most important first) within ``budget_chars``."""
    room = budget_chars - len(preamble)
    kept: list[Section] = []
    dropped: list[Section] = []
    used = 0
    cells_closed = False
    for section in by_priority:
        need = section.overhead + sum(_min_size(p) for p in section.pieces)
        if (section.kind == "cell" and cells_closed) or used + need > room:
            dropped.append(section)
            cells_closed = cells_closed or section.kind == "cell"
            continue
        kept.append(section)
        used += need
    while kept:
        fixed = sum(s.overhead for s in kept)
        sizes = _Sizes([p for s in kept for p in s.pieces])
        cap = sizes.best_cap(room - fixed)
        for _ in range(_MAX_ROUNDS):
            text = _render(preamble, kept, cap)
            over = len(text) - budget_chars
            if over <= 0:
                return Fitted(text, sorted(kept, key=lambda s: s.order), dropped, _cuts(kept, cap))
            current = sizes.longest if cap is None else cap
            if current <= 0:
                break
            cap = max(0, current - over - MARKER)
        # Fences or labels took more than estimated even at the floors: give up the
        # least important section and fit the rest again.
        dropped.append(kept.pop())
    return Fitted("", [], dropped)


def _cuts(sections: list[Section], cap: int | None) -> Counter[str]:
    cut: Counter[str] = Counter()
    for section in sections:
        for piece in section.pieces:
            limit = _cap_of(piece, cap)
            if limit is not None and len(piece.text) > limit:
                cut[piece.kind] += 1
    return cut
