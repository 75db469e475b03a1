"""What context the user asked for: :class:`ContextSpec` and the words :func:`parse_spec` reads.

The words: cell ranges (``3``, ``3-5``, ``cells:3-5,8``), ``last:4`` (the four
cells before the asking one; ``last`` alone is one), ``error`` (the most recent
failure), ``vars:df,model`` and ``notebook`` (every cell so far), separated by
spaces or ``+`` and repeatable; ``none`` or nothing selects nothing. A bad word
raises :class:`~glm_magic.errors.ConfigError` with one line saying what is
accepted. ``str(spec)`` gives the words back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["ContextSpec", "parse_spec"]

_USAGE = "use cells ranges (3-5, last:4), error, vars:a,b, notebook or none"
_MAX_RANGE = 10_000
_SPLIT = re.compile(r"[\s+]+")
_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


@dataclass(frozen=True)
class ContextSpec:
    """What to put in the context; :func:`parse_spec` builds one from words."""

    cells: tuple[int, ...] = ()
    last: int = 0
    error: bool = False
    variables: tuple[str, ...] = ()
    notebook: bool = False

    @property
    def empty(self) -> bool:
        """True when nothing is selected (``none``)."""
        return not (self.cells or self.last or self.error or self.variables or self.notebook)

    def __str__(self) -> str:
        """The spec in :func:`parse_spec`'s words, e.g. ``cells:3-5,8 error vars:df``."""
        words = []
        if self.notebook:
            words.append("notebook")
        if self.cells:
            words.append("cells:" + _ranges(self.cells))
        if self.last:
            words.append(f"last:{self.last}")
        if self.error:
            words.append("error")
        if self.variables:
            words.append("vars:" + ",".join(self.variables))
        return " ".join(words) or "none"


def _ranges(counts: Sequence[int]) -> str:
    runs: list[list[int]] = []
    for n in counts:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _parse_cells(word: str, ranges: str, into: set[int]) -> None:
    for part in ranges.split(","):
        m = _RANGE.fullmatch(part)
        if m is None:
            raise ConfigError(f"unknown context {word!r}; {_USAGE}")
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else start
        if start < 1:
            raise ConfigError(f"bad cell number in {word!r}: execution counts start at 1")
        if end < start:
            raise ConfigError(f"bad cell range {part!r}: it ends before it starts")
        if end - start >= _MAX_RANGE:
            raise ConfigError(f"cell range {part!r} is too large (at most {_MAX_RANGE:,} cells)")
        into.update(range(start, end + 1))


def parse_spec(specs: str | Sequence[str]) -> ContextSpec:
    """Read a context spec: ``3-5``, ``cells:3-5,8``, ``last:4``, ``error``, ``vars:a,b``, ...

    Items are separated by spaces or ``+`` and may repeat (cells and variables
    add up, the largest ``last`` wins); ``none`` or nothing selects nothing.
    Raises :class:`~glm_magic.errors.ConfigError` with one line on a bad item.
    """
    items = [specs] if isinstance(specs, str) else list(specs)
    words: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(f"context items must be text, not {type(item).__name__}")
        # "vars: a, b" and "cells: 3-5" read naturally; glue them back together.
        item = re.sub(r"\s*([:,])\s*", r"\1", item)
        words.extend(w for w in _SPLIT.split(item) if w)
    cells: set[int] = set()
    variables: dict[str, None] = {}
    last = 0
    error = notebook = none = False
    for word in words:
        key, colon, value = word.partition(":")
        key = key.lower()
        if not colon and word.lower() in ("none", "error", "errors", "notebook", "last"):
            none = none or key == "none"
            error = error or key.startswith("error")
            notebook = notebook or key == "notebook"
            last = max(last, 1 if key == "last" else 0)
        elif colon and key == "last":
            if not value.isdigit() or int(value) < 1:
                raise ConfigError(
                    f"bad context {word!r}: last needs a number of cells, e.g. last:4"
                )
            last = max(last, int(value))
        elif colon and key in ("cells", "cell"):
            _parse_cells(word, value, cells)
        elif not colon and word[:1].isdigit():
            _parse_cells(word, word, cells)
        elif colon and key in ("vars", "var", "variables"):
            for name in value.split(","):
                if not name.isidentifier():
                    raise ConfigError(f"bad variable name {name!r} in {word!r}; {_USAGE}")
                variables[name] = None
        else:
            raise ConfigError(f"unknown context {word!r}; {_USAGE}")
    spec = ContextSpec(tuple(sorted(cells)), last, error, tuple(variables), notebook)
    if none and not spec.empty:
        raise ConfigError(f"context 'none' cannot be combined with {str(spec)!r}")
    return spec
