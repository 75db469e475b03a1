"""Running a notebook headlessly for ``glm-magic``, and reading its failures back.

This module owns the nbclient call the command line makes: the kernel, the
working directory (the notebook's folder, as in Jupyter), the per-cell
timeout, and ``allow_errors`` so that every cell runs even after one fails.
It turns the executed notebook's ``error`` outputs into
:class:`~glm_magic.failures.Failure` records, the same shape the magic captures
in a live kernel, so :mod:`glm_magic.core.assist` builds the same prompts.

nbclient and jupyter_client are imported inside :func:`execute_notebook`;
nothing here imports IPython.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..core.assist import defined_names
from ..failures import Failure, strip_ansi

__all__ = [
    "CellFailure",
    "Executed",
    "ExecutionFailed",
    "execute_notebook",
    "failures_of",
    "notebook_env",
]

_QUOTED = re.compile(r"""['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")
#: Lines of the kernel's own stderr shown when it dies: enough for the last traceback.
_KERNEL_LOG_TAIL = 15


class ExecutionFailed(Exception):
    """The notebook could not be run at all (no kernel, the kernel died, nbclient missing)."""


@dataclass(frozen=True)
class CellFailure:
    """A failing cell of an executed notebook: the failure and where the cell sits."""

    failure: Failure
    #: Position in ``nb.cells`` (0-based).
    index: int
    #: Execution count of an earlier failing cell this failure may only follow from.
    follows: int | None = None

    def describe(self) -> str:
        """``In [3] (cell 4, id ab12): NameError: name 'x' is not defined``."""
        where = f"cell {self.index + 1}"
        if self.failure.cell_id:
            where += f", id {self.failure.cell_id}"
        line = f"{self.failure.label} ({where}): {self.failure.summary}"
        if self.follows is not None:
            line += f" (may only follow from In [{self.follows}], which failed first)"
        return line


@dataclass
class Executed:
    """An executed notebook node, its failing cells and the sources of its code cells."""

    nb: Any  # nbformat.NotebookNode
    failures: list[CellFailure]
    #: ``{execution_count: source}`` of every executed code cell, for the assist prompts.
    cells: dict[int, str]
    code_cells: int
    elapsed: float


def _timed_out_message(timeout: int) -> str:
    return f"the cell ran longer than the --timeout of {timeout} s and was interrupted"


def failures_of(
    nb: Any, *, timed_out: frozenset[int] = frozenset(), timeout: int = 0
) -> list[CellFailure]:
    """The failing code cells of an executed notebook node, in notebook order.

    A cell fails when it has an ``error`` output. ``timed_out`` holds the
    positions of cells the timeout interrupted: their ``KeyboardInterrupt``
    says so, since the user did not press Ctrl-C.
    """
    found: list[CellFailure] = []
    for index, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if error is None:
            continue
        ename = str(error.get("ename", "") or "Error")
        evalue = str(error.get("evalue", "") or "")
        if index in timed_out and ename == "KeyboardInterrupt":
            evalue = _timed_out_message(timeout)
        count = cell.get("execution_count")
        failure = Failure(
            execution_count=count if isinstance(count, int) else None,
            source=str(cell.get("source", "")),
            ename=ename,
            evalue=strip_ansi(evalue),
            traceback=strip_ansi("\n".join(str(line) for line in error.get("traceback", []))),
            cell_id=str(cell["id"]) if cell.get("id") else None,
        )
        found.append(CellFailure(failure, index, _follows(failure, found)))
    return found


def _follows(failure: Failure, earlier: list[CellFailure]) -> int | None:
    """An earlier failing cell that should have defined a name this failure misses.

    With errors allowed, a cell that failed before binding ``df`` makes every
    later use of ``df`` fail too; those later failures are not separate bugs.
    """
    names = set(_QUOTED.findall(failure.evalue))
    if not names:
        return None
    for previous in reversed(earlier):
        if names & defined_names(previous.failure.source):
            return previous.failure.execution_count
    return None


def _tail(log: IO[bytes]) -> str:
    try:
        log.seek(0)
        text = log.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
    lines = [ln for ln in strip_ansi(text).splitlines() if ln.strip()]
    return "\n".join(lines[-_KERNEL_LOG_TAIL:])


def notebook_env(path: Path, budget_usd: float | None = None) -> dict[str, str]:
    """The kernel's environment for running ``path``: this process's, plus what replay needs.

    ``GLM_MAGIC_NOTEBOOK`` names the notebook, so ``%%glm`` cells replay its
    saved answers when the reply store lacks them; ``budget_usd`` is the
    notebook's spending limit (``GLM_MAGIC_BUDGET_USD``).
    """
    import os

    env = dict(os.environ)
    env["GLM_MAGIC_NOTEBOOK"] = str(path.resolve())
    if budget_usd is not None:
        env["GLM_MAGIC_BUDGET_USD"] = repr(float(budget_usd))
    return env


def execute_notebook(
    nb: Any,
    *,
    folder: Path,
    timeout: int,
    kernel: str = "python3",
    on_cell: Callable[[int, int], None] | None = None,
    env: dict[str, str] | None = None,
) -> Executed:
    """Run every cell of ``nb`` (modified in place) in a fresh kernel; collect failures.

    ``on_cell(done, total)`` is called as code cells start, for progress.
    ``env`` is the kernel's whole environment (default: this process's).
    Raises :class:`ExecutionFailed` with a one-line message (plus the tail of
    the kernel's own log when it died) when the notebook cannot be run.
    """
    try:
        import nbclient  # lazy: only the command line runs notebooks
        from jupyter_client.kernelspec import NoSuchKernel
        from nbclient.exceptions import CellControlSignal, DeadKernelError
    except ImportError as exc:
        raise ExecutionFailed(
            f"running notebooks needs nbclient and ipykernel ({exc.name} is missing): "
            "pip install 'glm-magic[cli]'"
        ) from None

    runnable = [
        i
        for i, c in enumerate(nb.cells)
        if c.get("cell_type") == "code" and str(c.get("source", "")).strip()
    ]
    started: dict[int, float] = {}
    timed_out: set[int] = set()

    def cell_start(cell: Any, cell_index: int) -> None:
        started[cell_index] = time.monotonic()
        if on_cell is not None and cell_index in runnable:
            on_cell(runnable.index(cell_index) + 1, len(runnable))

    def cell_executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        # nbclient interrupts a cell at the timeout and the kernel reports a
        # KeyboardInterrupt; the elapsed time tells it apart from a real Ctrl-C.
        begun = started.get(cell_index)
        if begun is not None and time.monotonic() - begun >= timeout:
            timed_out.add(cell_index)

    client = nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name=kernel,
        allow_errors=True,
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(folder)}},
        on_cell_start=cell_start,
        on_cell_executed=cell_executed,
    )
    begin = time.monotonic()
    # The kernel's own stderr (transport warnings, crash output) would garble the
    # progress lines; keep it aside and show its tail only if the kernel dies.
    with tempfile.TemporaryFile() as kernel_log:
        try:
            if env is None:
                client.execute(stderr=kernel_log)
            else:
                client.execute(stderr=kernel_log, env=env)
        except NoSuchKernel:
            raise ExecutionFailed(
                f"no Jupyter kernel named {kernel!r}; install one (pip install ipykernel) "
                "or pass --kernel NAME (see `jupyter kernelspec list`)"
            ) from None
        except DeadKernelError:
            tail = _tail(kernel_log)
            raise ExecutionFailed(
                "the kernel died while running the notebook"
                + (f"; its log:\n{tail}" if tail else "")
            ) from None
        except (CellControlSignal, RuntimeError, OSError) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ExecutionFailed(f"could not run the notebook: {detail}") from None
    elapsed = time.monotonic() - begin
    cells = {
        int(c["execution_count"]): str(c.get("source", ""))
        for c in nb.cells
        if c.get("cell_type") == "code" and isinstance(c.get("execution_count"), int)
    }
    failures = failures_of(nb, timed_out=frozenset(timed_out), timeout=timeout)
    return Executed(nb, failures, cells, len(runnable), elapsed)
