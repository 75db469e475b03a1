"""The cells ``glm-magic explain`` / ``fix`` insert, and how they go into the notebook.

An explanation is one Markdown cell; a fix is a Markdown diagnosis (the reply
without its code block) followed by the corrected code cell, whose first line
says which model wrote it. Cells are inserted directly below the failing cell
(by cell id on nbformat >= 4.5, by position before that). The executed
outputs written with them have the API key masked, since the kernel inherits
the environment that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import Secret, Settings
from ..markdown import close_open_fence, escape_text, safe_markdown, without_code
from ..masking import mask_key
from ..notebook import LoadedNotebook, NewCell, insert_cells
from .exec import CellFailure

__all__ = ["cells_for", "insert_planned", "mask_outputs"]


def cells_for(
    kind: str,
    item: CellFailure,
    text: str,
    code: str,
    footer: str,
    settings: Settings,
    *,
    note: str = "",
    cut_code: bool = False,
) -> list[NewCell]:
    """The cells to insert below a failing cell for one reply.

    ``note`` is a cut reply's one line (:attr:`Reply.note`), shown above the
    footer; ``cut_code`` says the reply ended inside a code block, which
    ``code`` does not hold: it stays visible in the Markdown, closed, and the
    cell says it was left out of the fixed cell.
    """
    # The prompt was masked, but a proxy or a model could still echo the key.
    redact = settings.redactor()
    text, code = redact(text), redact(code)
    failure = item.failure
    # The model's text is stored as Markdown cells: rewritten so raw HTML shows as
    # text and amounts never become math; our own words are escaped whole.
    text = safe_markdown(text)
    summary = escape_text(redact(failure.summary))  # a cell's error can quote the key
    footer = escape_text(footer)
    follows = (
        f"_{failure.label} may fail only because In [{item.follows}] failed first._\n\n"
        if item.follows is not None
        else ""
    )
    warning = f"**⚠ {escape_text(note)}**\n\n" if note else ""
    if kind == "explain":
        body = f"**glm-magic: why {failure.label} failed** ({summary})\n\n{follows}{text}"
        body = close_open_fence(body.rstrip())
        return [NewCell(f"{body}\n\n{warning}<sub>{footer}</sub>", "markdown")]
    diagnosis = without_code(text, closed_only=cut_code) if code.strip() else ""
    if code.strip():
        after = f"The next cell is a corrected {failure.label}."
    elif cut_code:
        after = "_The reply was cut inside its code block, so no fixed cell was inserted._"
    else:
        after = "_The reply held no code block, so no fixed cell was inserted._"
    if code.strip() and cut_code:
        after += " _The reply was cut inside a later code block, which was left out of it._"
    shown = close_open_fence(diagnosis or text.strip())
    body = (
        f"**glm-magic: fix for {failure.label}** ({summary})\n\n{follows}"
        f"{shown}\n\n{after}\n\n{warning}<sub>{footer}</sub>"
    )
    cells = [NewCell(body, "markdown")]
    if code.strip():
        header = f"# fixed by {' '.join(settings.model.split())} via glm-magic"
        cells.append(NewCell(f"{header}\n{code.strip(chr(10))}", "code"))
    return cells


def _mask_value(value: Any, keys: Sequence[Secret]) -> tuple[Any, int]:
    if isinstance(value, str):
        total = 0
        for key in keys:
            value, n = mask_key(value, key.reveal())
            total += n
        return value, total
    total = 0
    if isinstance(value, list):
        for i, item in enumerate(value):
            value[i], n = _mask_value(item, keys)
            total += n
    elif isinstance(value, dict):
        for k in list(value):
            value[k], n = _mask_value(value[k], keys)
            total += n
    return value, total


def mask_outputs(nb: Any, keys: Sequence[Secret]) -> int:
    """Mask the API keys wherever a cell printed them (the kernel inherits our environment).

    Each key is found in any case and as any 12+ character run of it.
    """
    usable = [k for k in keys if len(k.reveal()) >= 8]  # a short "key" would mask ordinary text
    if not usable:
        return 0
    total = 0
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            _, n = _mask_value(cell.get("outputs", []), usable)
            total += n
    return total


def insert_planned(
    loaded: LoadedNotebook, planned: list[tuple[CellFailure, list[NewCell]]], model: str
) -> list[tuple[CellFailure, int]]:
    """Insert every plan below its cell; return each fix's failure and fixed cell position."""
    fixed: list[tuple[CellFailure, Any]] = []
    # Bottom-up, so the positions of the cells still to handle do not move.
    for item, cells in sorted(planned, key=lambda p: p[0].index, reverse=True):
        cell_id = item.failure.cell_id
        if loaded.has_cell_ids and cell_id:
            insert_cells(loaded, cells, model=model, after_cell_id=cell_id)
        else:
            insert_cells(loaded, cells, model=model, after_index=item.index)
        if cells[-1].cell_type == "code":
            fixed.append((item, loaded.nb.cells[item.index + len(cells)]))
    # Positions are final only once every insertion is done: find the nodes by identity.
    where = {id(cell): i for i, cell in enumerate(loaded.nb.cells)}
    return sorted(((item, where[id(node)]) for item, node in fixed), key=lambda p: p[1])
