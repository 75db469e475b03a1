"""Capturing failing cells with a ``post_run_cell`` hook.

Every cell that fails (``result.error_in_exec`` or ``error_before_exec``) is
recorded as a :class:`Failure`: execution count, raw source, exception type
and message, a plain-text traceback without ANSI colour or IPython's own
frames, and the frontend's cell id when it sent one. Tracebacks on screen
are never touched: we only read the result after IPython showed it, and we
do not use ``set_custom_exc`` (one slot shared by every extension).

Listeners (the Explain/Fix buttons) can subscribe to new failures.
:func:`uninstall` removes the hook and every listener.

A base module (docs/ARCHITECTURE.md): the shell is passed in and used by
duck typing (``shell.events``, ``shell.kernel``), so IPython is never imported.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Failure",
    "FailureLog",
    "cell_id",
    "existing_log",
    "failure_log",
    "install",
    "plain_traceback",
    "strip_ansi",
    "uninstall",
]

#: IPython's ``InteractiveShell`` and ``ExecutionResult``, by duck typing.
InteractiveShell = Any
ExecutionResult = Any

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_MAX_KEPT = 50


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes."""
    return _ANSI.sub("", text)


@dataclass(frozen=True)
class Failure:
    """One failed cell, as the model will be told about it."""

    execution_count: int | None
    source: str
    ename: str
    evalue: str
    traceback: str
    cell_id: str | None = None
    when: float = 0.0

    @property
    def label(self) -> str:
        """``In [5]`` style name of the cell (``the last cell`` when unnumbered)."""
        n = self.execution_count
        return f"In [{n}]" if n is not None else "the last cell"

    @property
    def summary(self) -> str:
        """``NameError: name 'x' is not defined`` on one line."""
        value = " ".join(self.evalue.split())
        return f"{self.ename}: {value}" if value else self.ename


def _cell_names(shell: Any) -> dict[str, int]:
    # IPython's compiler remembers which temporary file holds which cell.
    names = getattr(getattr(shell, "compile", None), "_filename_map", None)
    return dict(names) if isinstance(names, dict) else {}


def plain_traceback(exc: BaseException, shell: Any = None) -> str:
    """A plain-text traceback: no colour, no IPython frames, cells named ``Cell In[N]``."""
    # IPython's own frames are left out; it is loaded whenever a shell ran the cell.
    ipython = sys.modules.get("IPython")
    ipython_file = getattr(ipython, "__file__", None) if ipython is not None else None
    ipython_pkg = os.path.dirname(os.path.abspath(ipython_file)) + os.sep if ipython_file else "\0"
    cells = _cell_names(shell)
    lines = ["Traceback (most recent call last):"]
    for frame in traceback.extract_tb(exc.__traceback__):
        filename = frame.filename
        if filename.startswith(ipython_pkg):
            continue
        where = f"Cell In[{cells[filename]}]" if filename in cells else f'File "{filename}"'
        lines.append(f"  {where}, line {frame.lineno}, in {frame.name}")
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    if len(lines) == 1:
        lines = []
    lines.extend(
        strip_ansi(part).rstrip("\n") for part in traceback.format_exception_only(type(exc), exc)
    )
    return "\n".join(lines)


class FailureLog:
    """The recent failures of one shell, newest last, keyed by execution count."""

    def __init__(self) -> None:
        self._failures: OrderedDict[int, Failure] = OrderedDict()
        self._seq = 0
        self.listeners: list[Callable[[Failure], None]] = []

    def add(self, failure: Failure) -> None:
        """Record a failure and tell the listeners (a listener's error is contained)."""
        self._seq += 1
        key = failure.execution_count if failure.execution_count is not None else -self._seq
        self._failures.pop(key, None)
        self._failures[key] = failure
        while len(self._failures) > _MAX_KEPT:
            self._failures.popitem(last=False)
        for listener in list(self.listeners):
            try:
                listener(failure)
            except Exception:
                import logging

                logging.getLogger("glm_magic").debug("failure listener failed", exc_info=True)

    def last(self) -> Failure | None:
        """The most recent failure, if any."""
        return next(reversed(self._failures.values()), None)

    def get(self, execution_count: int) -> Failure | None:
        """The failure of cell ``In [execution_count]``, if it failed."""
        return self._failures.get(execution_count)

    def all(self) -> list[Failure]:
        """Every kept failure, oldest first."""
        return list(self._failures.values())

    def clear(self) -> None:
        """Forget every failure."""
        self._failures.clear()


_logs: dict[int, FailureLog] = {}
_callbacks: dict[int, Callable[[ExecutionResult], None]] = {}


def failure_log(shell: InteractiveShell) -> FailureLog:
    """The failure log of ``shell`` (created on first use)."""
    return _logs.setdefault(id(shell), FailureLog())


def existing_log(shell: Any) -> FailureLog | None:
    """The failure log of ``shell`` if it has one (asking never creates it)."""
    return _logs.get(id(shell))


def cell_id(shell: Any) -> str | None:
    """The frontend's id of the running cell (JupyterLab and Notebook 7 send it), if any."""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    try:
        parent = kernel.get_parent()
    except Exception:
        return None
    cell_id = (parent or {}).get("metadata", {}).get("cellId")
    return cell_id if isinstance(cell_id, str) and cell_id else None


def _capture(shell: Any, result: ExecutionResult) -> Failure | None:
    exc = result.error_in_exec or result.error_before_exec
    if exc is None:
        return None
    info = getattr(result, "info", None)
    source = getattr(info, "raw_cell", None) or ""
    # A failed %%glm / %glm cell (bad option, 429...) or an interrupt is not a bug to explain.
    if isinstance(exc, KeyboardInterrupt) or source.lstrip().startswith(("%glm", "%%glm")):
        return None
    return Failure(
        execution_count=result.execution_count,
        source=source,
        ename=type(exc).__name__,
        evalue=strip_ansi(str(exc)),
        traceback=plain_traceback(exc, shell),
        cell_id=cell_id(shell),
        when=time.time(),
    )


def install(shell: InteractiveShell) -> FailureLog:
    """Register the ``post_run_cell`` hook on ``shell`` (idempotent)."""
    log = failure_log(shell)
    if id(shell) in _callbacks:
        return log

    def on_post_run_cell(result: ExecutionResult) -> None:
        try:
            failure = _capture(shell, result)
        except Exception:
            return
        if failure is not None:
            log.add(failure)

    _callbacks[id(shell)] = on_post_run_cell
    shell.events.register("post_run_cell", on_post_run_cell)
    return log


def uninstall(shell: InteractiveShell) -> None:
    """Remove the hook, the listeners and the log."""
    callback = _callbacks.pop(id(shell), None)
    if callback is not None:
        with contextlib.suppress(ValueError):
            shell.events.unregister("post_run_cell", callback)
    log = _logs.pop(id(shell), None)
    if log is not None:
        log.listeners.clear()
