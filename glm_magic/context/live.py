"""Context from the live notebook (the notebook bridge's snapshot) instead of the history.

Sources are what the editor holds (unsaved edits included); Markdown cells
ride on the executed cell before them (or the first one). Pure: no shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .cells import CellRecord, cells_from_notebook

if TYPE_CHECKING:
    from ..bridge import Snapshot

__all__ = ["cells_from_snapshot", "live_cells", "live_sources"]


def cells_from_snapshot(snap: Snapshot) -> dict[int, CellRecord]:
    """Executed cells above the running cell, by execution count."""
    records: dict[int, CellRecord] = {}
    last: CellRecord | None = None
    pending: list[str] = []
    for cell in snap.cells:
        if snap.running_cell is not None and cell.id == snap.running_cell:
            break
        if cell.cell_type == "markdown" and cell.source.strip():
            if last is None:
                pending.append(cell.source)
            else:
                last.markdown = "\n\n".join(filter(None, [last.markdown, cell.source]))
            continue
        count = cell.execution_count
        if cell.cell_type != "code" or count is None:
            continue
        nb = {"cells": [{**cell.__dict__, "outputs": list(cell.outputs)}]}
        record = cells_from_notebook(nb).get(count)
        if record is None:
            continue
        if pending:
            record.markdown = "\n\n".join(pending)
            pending = []
        records[count] = last = record
    return records


def live_cells(shell: object) -> dict[int, CellRecord] | None:
    """The live notebook's cells for ``shell`` (``None``: no bridge or no snapshot)."""
    from ..bridge import endpoint

    found = endpoint(shell)
    snap = found.live_snapshot() if found is not None else None
    return cells_from_snapshot(snap) if snap is not None else None


def live_sources(shell: object, fallback: dict[int, str]) -> dict[int, str]:
    """``fallback`` (execution count -> source) with the live notebook's sources over it."""
    records = live_cells(shell)
    if records is None:
        return fallback
    return {**fallback, **{n: r.source for n, r in records.items()}}
