"""Notebook context the user selects: cells, the last failure, variables, fitted and masked.

A :class:`ContextSpec` says what to include; :func:`parse_spec` reads it from
the words a user types (``last:4 error vars:df``). :func:`build_context`
gathers it from a live shell, :func:`build_context_from_notebook` from a saved
notebook (the CLI), and both end in the pure :func:`build_context_from_cells`,
which returns a :class:`ContextBlock`: Markdown the model reads well, at most
``budget_tokens`` by :func:`~glm_magic.models.estimate_tokens`, with secrets
masked and one line of ``notes`` for everything the user should know (what was
trimmed, what was missing, how many secrets were masked).

What goes in: a cell's raw source and its outputs as text (see
:mod:`glm_magic.context.cells`), the most recent failure with its cleaned
traceback, and cheap variable summaries (:mod:`glm_magic.context.vars`). The
cell asking (the ``%%glm`` cell itself) is never included. When everything does
not fit, long outputs are cut in the middle first, then the oldest cells are
left out; the failure and the variables are kept longest
(:mod:`glm_magic.context.fit`). Masking runs once, on the text that is kept.

:func:`dry_run_report` shows the exact messages a request would send, with the
estimated prompt tokens and cost (``--dry-run``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..interpolate import truncate_middle
from ..masking import mask_secrets
from ..masking_names import SecretText
from ..models import estimate_tokens
from .cells import (
    CellRecord,
    cells_from_notebook,
    cells_from_shell,
    failure_from_notebook,
    failure_from_shell,
)
from .fit import Fitted, Piece, Section, fit
from .report import dry_run_report
from .spec import ContextSpec, parse_spec
from .vars import summarize_variable

if TYPE_CHECKING:
    from ..failures import Failure

#: IPython's shell, used by duck typing (this layer never imports IPython).
InteractiveShell = Any

__all__ = [
    "NO_OUTPUTS_NOTE",
    "CellRecord",
    "ContextBlock",
    "ContextSpec",
    "build_context",
    "build_context_from_cells",
    "build_context_from_notebook",
    "cells_from_notebook",
    "cells_from_shell",
    "dry_run_report",
    "failure_from_shell",
    "parse_spec",
    "running_cell",
    "summarize_variable",
]

NO_OUTPUTS_NOTE = "outputs are not available: IPython < 9.1 and the notebook file is unknown"
_PREAMBLE = "## Notebook context\n\n"


@dataclass
class ContextBlock:
    """Context ready to send: Markdown ``text``, its estimated ``tokens`` and what happened.

    ``notes`` are one-line messages for the user; ``masked`` counts secrets
    replaced by ``***``; ``cells`` lists the execution counts included.
    """

    text: str = ""
    tokens: int = 0
    notes: list[str] = field(default_factory=list)
    masked: int = 0
    cells: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when there is no context text."""
        return not self.text


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _missing_note(missing: list[int], where: str) -> str:
    shown = ", ".join(f"In [{n}]" for n in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return f"not in {where}: {shown}{more}"


def _select(
    cells: Mapping[int, CellRecord], spec: ContextSpec, current: int | None
) -> tuple[list[int], list[int]]:
    """Counts to include, and explicitly requested counts that do not exist."""
    before = sorted(n for n in cells if current is None or n < current)
    chosen: set[int] = set()
    if spec.notebook:
        chosen.update(before)
    if spec.last:
        chosen.update(before[-spec.last :])
    missing = [n for n in spec.cells if n not in cells and n != current]
    chosen.update(n for n in spec.cells if n in cells and n != current)
    return sorted(chosen), missing


def _cell_section(record: CellRecord) -> Section:
    pieces = [Piece(record.source, "source", lang="python")]
    for i, text in enumerate(record.outputs):
        pieces.append(Piece(text, "output", "Output:" if i == 0 else ""))
    if record.error:
        pieces.append(Piece(record.error, "error", "Error:"))
    if record.markdown:
        pieces.append(Piece(record.markdown, "markdown", "Markdown after it:", lang="markdown"))
    n = record.execution_count
    return Section(f"### Cell In [{n}]", pieces, "cell", n, n)


def _failure_section(failure: Failure, outputs: list[str]) -> Section:
    title = f"### Failure in {failure.label}: {truncate_middle(failure.summary, 300)}"
    pieces = [Piece(failure.source, "source", lang="python")]
    for i, text in enumerate(outputs):
        pieces.append(Piece(text, "output", "Output before the error:" if i == 0 else ""))
    pieces.append(Piece(failure.traceback, "error", "Traceback:"))
    return Section(title, pieces, "failure", 1 << 62, failure.execution_count)


def _variables_section(
    names: Sequence[str], variables: Mapping[str, object], notes: list[str]
) -> Section | None:
    pieces = []
    for name in names:
        if name not in variables:
            notes.append(f"variable {name!r} does not exist here, so nothing was sent for it")
            continue
        summary = summarize_variable(name, variables[name])
        if "\n" in summary or len(summary) > 200:
            pieces.append(Piece(summary, "variable", f"- `{name}`:"))
        else:
            pieces.append(Piece(summary, "variable", f"- `{name}`: ", lang=None))
    return Section("### Variables", pieces, "variables", (1 << 62) + 1) if pieces else None


def _trim_note(budget_tokens: int, fitted: Fitted) -> str | None:
    parts = []
    cut = fitted.shortened
    outputs = cut["output"] + cut["error"]
    if outputs:
        parts.append(_plural(outputs, "output") + " shortened")
    if cut["source"]:
        parts.append(_plural(cut["source"], "source") + " shortened")
    if cut["variable"]:
        parts.append(_plural(cut["variable"], "variable summary", "variable summaries") + " cut")
    dropped_cells = sum(1 for s in fitted.dropped if s.kind == "cell")
    if dropped_cells:
        parts.append(_plural(dropped_cells, "older cell") + " left out")
    for s in fitted.dropped:
        if s.kind == "failure":
            parts.append("the failure left out")
        elif s.kind == "variables":
            parts.append("the variables left out")
    if not parts:
        return None
    return f"context trimmed to fit {budget_tokens:,} tokens: " + ", ".join(parts)


def build_context_from_cells(
    cells: Mapping[int, CellRecord],
    spec: ContextSpec,
    *,
    budget_tokens: int,
    variables: Mapping[str, object] | None = None,
    failure: Failure | None = None,
    mask: bool = True,
    secrets: Iterable[SecretText] = (),
    outputs_note: str | None = None,
    current_count: int | None = None,
    where: str = "this session's history",
) -> ContextBlock:
    """Select, fit and mask context from ``cells`` (pure: no shell, no files).

    ``failure`` is used when the spec asks for ``error``; ``variables`` is where
    ``vars:`` names are looked up; ``outputs_note`` is added to the notes when
    cells are selected (why outputs are missing); ``current_count`` is the cell
    asking, never included (``last`` and ``notebook`` take only cells before
    it); ``where`` names the source of cells in the "not in ..." note.
    """
    block = ContextBlock()
    if spec.empty:
        return block
    notes = block.notes
    chosen, missing = _select(cells, spec, current_count)
    if outputs_note and (spec.cells or spec.last or spec.notebook):
        notes.append(outputs_note)
    if missing:
        notes.append(_missing_note(missing, where))
    by_priority: list[Section] = []
    if spec.error:
        if failure is None or (
            current_count is not None and failure.execution_count == current_count
        ):
            notes.append("no failure recorded yet")
        else:
            record = cells.get(failure.execution_count) if failure.execution_count else None
            outputs: list[str] = []
            if record is not None:
                if record.execution_count in chosen:
                    chosen.remove(record.execution_count)  # shown once, as the failure
                if record.source.strip() == failure.source.strip():
                    outputs = record.outputs  # what it printed before failing
            by_priority.append(_failure_section(failure, outputs))
    if spec.variables:
        section = _variables_section(spec.variables, variables or {}, notes)
        if section is not None:
            by_priority.append(section)
    by_priority.extend(_cell_section(cells[n]) for n in reversed(chosen))
    fitted = fit(by_priority, max(budget_tokens, 0) * 7 // 2, _PREAMBLE)
    trimmed = _trim_note(budget_tokens, fitted)
    if trimmed:
        notes.append(trimmed)
    text = fitted.text
    if mask and text:
        masked = mask_secrets(text, tuple(secrets))
        text, block.masked = masked.text, masked.count
        if masked.count:
            notes.append(_plural(masked.count, "secret") + " masked")
    block.text = text
    block.tokens = estimate_tokens(text)
    block.cells = sorted(s.count for s in fitted.kept if s.count is not None)
    return block


def running_cell(shell: InteractiveShell) -> int | None:
    """The execution count of the cell running now, or ``None`` between cells.

    IPython hands the running cell's ``ExecutionResult`` to the display hook
    for the whole execution and clears it after; a panel callback or a thread
    runs between cells and excludes nothing.
    """
    running = getattr(getattr(shell, "displayhook", None), "exec_result", None)
    count = getattr(running, "execution_count", None)
    return count if isinstance(count, int) else None


def _wanted(
    shell: InteractiveShell, spec: ContextSpec, current: int | None, failure: Failure | None
) -> set[int] | None:
    """The execution counts a spec can use, so other cells' outputs are never rendered."""
    if spec.notebook:
        return None
    wanted = set(spec.cells)
    if failure is not None and failure.execution_count is not None:
        wanted.add(failure.execution_count)
    stored = len(getattr(shell.history_manager, "input_hist_raw", ()) or ())
    end = stored if current is None else min(current, stored)
    wanted.update(range(max(1, end - spec.last), end))
    return wanted


def build_context(
    shell: InteractiveShell | None,
    spec: ContextSpec | str | Sequence[str],
    budget_tokens: int,
    *,
    mask: bool = True,
    secrets: Iterable[SecretText] = (),
    current_count: int | None = None,
) -> ContextBlock:
    """Build the context ``spec`` selects from a live shell (see :func:`build_context_from_cells`).

    ``current_count`` is the asking cell's execution count; by default the cell
    running now (:func:`running_cell`), which is excluded in any case, so
    passing ``shell.execution_count`` (one past the running cell) is safe too.
    ``shell`` may be ``None`` (plain Python): then nothing is found; a notebook
    (path, nbformat node or ``LoadedNotebook``) in its place is read with
    :func:`build_context_from_notebook`. ``spec`` may be given as words.
    """
    if not isinstance(spec, ContextSpec):
        spec = parse_spec(spec)
    if spec.empty:
        return ContextBlock()
    if shell is not None and not hasattr(shell, "history_manager"):
        # A notebook rather than a shell: the CLI and benchmarks pass a path or a node.
        return build_context_from_notebook(
            shell,
            spec,
            budget_tokens=budget_tokens,
            mask=mask,
            secrets=secrets,
            current_count=current_count,
        )
    if shell is None:  # plain Python: no history, no namespace, no failures
        return build_context_from_cells({}, spec, budget_tokens=budget_tokens, variables={})
    running = running_cell(shell)
    current = current_count if current_count is not None else running
    if running is not None and current is not None and current > running:
        current = running  # e.g. shell.execution_count: already one past the running cell
    cells: dict[int, CellRecord] = {}
    outputs_note = None
    failure = failure_from_shell(shell, before=current) if spec.error else None
    if failure is not None and running is not None and failure.execution_count == running:
        failure = None
    if spec.cells or spec.last or spec.notebook:
        from .live import live_cells

        live = live_cells(shell)  # the notebook bridge's live notebook, when present
        source: str | None
        if live is not None:
            cells, source = live, "live notebook"
        else:
            cells, source = cells_from_shell(shell, only=_wanted(shell, spec, current, failure))
        if source is None:
            outputs_note = NO_OUTPUTS_NOTE
        if running is not None:
            cells.pop(running, None)
    return build_context_from_cells(
        cells,
        spec,
        budget_tokens=budget_tokens,
        variables=shell.user_ns if spec.variables else None,
        failure=failure,
        mask=mask,
        secrets=secrets,
        outputs_note=outputs_note,
        current_count=current,
    )


def _read_for_context(path: str | bytes | os.PathLike[str]) -> Any:
    """The notebook's JSON as plain dicts: reading only, so no nbformat nodes or repairs.

    That halves the cost of a big file; anything unusual (not JSON, not format
    4) goes through :func:`~glm_magic.notebook.read_notebook` for its error.
    """
    from ..notebook import read_notebook

    where = os.fsdecode(path)
    try:
        with open(where, "rb") as f:
            raw = json.loads(f.read())
    except (OSError, ValueError):
        raw = None
    if isinstance(raw, dict) and raw.get("nbformat") == 4 and isinstance(raw.get("cells"), list):
        return raw
    return read_notebook(where).nb


def build_context_from_notebook(
    nb: Any,
    spec: ContextSpec | str | Sequence[str],
    *,
    budget_tokens: int,
    variables: Mapping[str, object] | None = None,
    failure: Failure | None = None,
    mask: bool = True,
    secrets: Iterable[SecretText] = (),
    current_count: int | None = None,
) -> ContextBlock:
    """Build context from a saved notebook: an nbformat node, a ``LoadedNotebook`` or a path.

    ``error`` uses ``failure`` when given, else the highest-numbered cell with
    an error output. A file has no live variables: ``vars:`` names resolve in
    ``variables`` when given, else a note says they are unavailable.
    """
    if not isinstance(spec, ContextSpec):
        spec = parse_spec(spec)
    if spec.empty:
        return ContextBlock()
    if isinstance(nb, (str, bytes)) or hasattr(nb, "__fspath__"):
        nb = _read_for_context(nb)
    nb = getattr(nb, "nb", nb)  # a LoadedNotebook
    cells = cells_from_notebook(nb)
    if spec.error and failure is None:
        failure = failure_from_notebook(
            r for n, r in cells.items() if current_count is None or n < current_count
        )
    block = build_context_from_cells(
        cells,
        spec,
        budget_tokens=budget_tokens,
        variables=variables,
        failure=failure,
        mask=mask,
        secrets=secrets,
        current_count=current_count,
        where="the notebook",
    )
    if spec.variables and variables is None:
        block.notes = [n for n in block.notes if not n.startswith("variable ")]
        block.notes.insert(0, "variables are not available from a notebook file")
    return block
