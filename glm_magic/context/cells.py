"""Reading executed cells, as plain text, from a live shell or a notebook file.

A :class:`CellRecord` is one executed cell: its execution count, its *raw*
source (``history_manager.input_hist_raw``, so ``%time x`` stays ``%time x``
rather than ``get_ipython().run_line_magic(...)``), its outputs rendered to
plain text, and its error traceback. Outputs come from
``history_manager.outputs`` (IPython >= 9.1) or, on older IPython, from the
saved ``.ipynb`` when its path is known, for cells whose saved source still
matches what ran.

Rendering: ``text/plain`` for results and displays, stream text with ANSI
colours removed and carriage-return progress lines collapsed, tracebacks
without colour; images and other binary or rich-only outputs become a short
placeholder such as ``[image/png output, 34 KB]``. Reading is linear in the
size of the outputs: each is joined (when stored as lines) and checked once
for colour codes and carriage returns, changed only when it has them, and one
longer than :data:`MAX_OUTPUT_CHARS` is cut right away, since no model window
could show more.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..failures import Failure, failure_log, strip_ansi
from ..interpolate import truncate_middle

#: IPython's shell, used by duck typing (this layer never imports IPython).
InteractiveShell = Any

__all__ = [
    "MAX_OUTPUT_CHARS",
    "CellRecord",
    "cells_from_notebook",
    "cells_from_shell",
    "failure_from_notebook",
    "failure_from_shell",
    "raw_cells",
    "render_output",
    "shorten",
]

#: One output is never kept longer than this (about 280K tokens, above any window).
MAX_OUTPUT_CHARS = 1_000_000
#: How far a cut may move to land on a line break.
_SNAP = 256
#: Characters of keys and tokens (base64, JWTs, sk-...): a cut never lands between two.
_TOKEN_CHARS = r"A-Za-z0-9_\-.+/=~"
_SEPARATOR = re.compile(rf"[^{_TOKEN_CHARS}]")
_LAST_SEPARATOR = re.compile(rf"[^{_TOKEN_CHARS}][{_TOKEN_CHARS}]*\Z")
#: A longer run of token characters is data (base64), not a credential.
_MAX_TOKEN = 4096
_IMAGE_PREFIX = "image/"
_BINARY_BASE64 = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
_SHORT_TEXT = 200


@dataclass
class CellRecord:
    """One executed cell: raw source, outputs as plain text, and its traceback if it failed.

    ``markdown`` holds the Markdown cells after it when the live notebook is
    known (the notebook bridge, :mod:`glm_magic.context.live`), else nothing.
    """

    execution_count: int
    source: str
    outputs: list[str] = field(default_factory=list)
    error: str | None = None
    markdown: str = ""


def shorten(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters in the middle, with a marker.

    Like :func:`~glm_magic.interpolate.truncate_middle` (same marker), but each
    cut moves inwards to a line break when one is near, else to the nearest
    character that cannot be part of a token (a space, a quote, a comma...):
    masking runs after the cut, and half a key or half an ``API_KEY = "..."``
    line would no longer look like a secret to it. Only a run of token
    characters longer than 4,096 (base64 data, not a credential) is cut inside.
    """
    if len(text) <= max_chars:
        return text
    head = (max_chars + 1) // 2
    tail_start = len(text) - (max_chars - head)
    head_end = _snap_back(text, head)
    start = _snap_forward(text, tail_start)
    if head_end == head and start == tail_start:
        return truncate_middle(text, max_chars)
    dropped = start - head_end
    # Cut at line breaks on both sides: the marker gets a line of its own.
    newline = "\n" if text[head_end - 1 : head_end] == text[start - 1 : start] == "\n" else ""
    return f"{text[:head_end]}…[truncated {dropped} chars]…{newline}{text[start:]}"


def _line_window(kept: int) -> int:
    # Up to a quarter of the kept part (at least 64, at most 256) to reach a line break.
    return min(_SNAP, max(64, kept // 4))


def _snap_back(text: str, pos: int) -> int:
    """Where the head should end: after a line break or a non-token character before ``pos``."""
    if pos <= 0 or text[pos - 1] == "\n":
        return pos
    found = text.rfind("\n", max(0, pos - _line_window(pos)), pos)
    if found != -1:
        return found + 1
    if _SEPARATOR.match(text, pos - 1) or _SEPARATOR.match(text, pos):
        return pos
    low = max(0, pos - _MAX_TOKEN)
    last = _LAST_SEPARATOR.search(text, low, pos)
    if last is not None:
        return last.start() + 1
    return 0 if low == 0 else pos


def _snap_forward(text: str, pos: int) -> int:
    """Where the tail should start: after a line break or at a non-token character."""
    size = len(text)
    if pos >= size or text[pos - 1] == "\n":
        return pos
    found = text.find("\n", pos, min(size, pos + _line_window(size - pos)))
    if found != -1:
        return found + 1
    if _SEPARATOR.match(text, pos - 1) or _SEPARATOR.match(text, pos):
        return pos
    match = _SEPARATOR.search(text, pos, min(size, pos + _MAX_TOKEN))
    if match is not None:
        return match.start()
    return size if pos + _MAX_TOKEN >= size else pos


def _clean(text: str) -> str:
    """Cap, then drop ANSI colours and overwritten progress-bar lines (only when present)."""
    if len(text) > MAX_OUTPUT_CHARS:
        text = shorten(text, MAX_OUTPUT_CHARS)
    if "\x1b" in text:
        text = strip_ansi(text)
    if "\r" in text:
        text = _collapse_carriage_returns(text)
    return text


def _collapse_carriage_returns(text: str) -> str:
    r"""Keep what a terminal shows: the last non-empty ``\r`` segment of each line."""
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if "\r" in line:
            shown = [part for part in line.split("\r") if part]
            lines[i] = shown[-1] if shown else ""
    return "\n".join(lines)


def _joined(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "".join(str(part) for part in value)
    return "" if value is None else str(value)


def _size(value: object, base64: bool) -> str:
    if isinstance(value, (bytes, bytearray)):
        n = len(value)
    else:
        n = (
            sum(len(part) for part in value)
            if isinstance(value, (list, tuple))
            else len(str(value))
        )
        if base64:
            n = n * 3 // 4
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{round(n / 1024)} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def _render_bundle(data: Mapping[str, Any]) -> str:
    """A MIME bundle as text: ``text/plain``, or a placeholder for images and rich-only data."""
    plain = data.get("text/plain")
    text = _clean(_joined(plain)) if plain is not None else None
    for mime, value in data.items():
        if mime.startswith(_IMAGE_PREFIX) or mime == "application/pdf":
            placeholder = f"[{mime} output, {_size(value, mime in _BINARY_BASE64)}]"
            # "<Figure size 640x480 with 1 Axes>" says what the picture is; keep short ones.
            if text and len(text) <= _SHORT_TEXT:
                return f"{placeholder} {text.strip()}"
            return placeholder
    if text is not None:
        return text
    if not data:
        return ""
    mime, value = next(iter(data.items()))
    return f"[{mime} output, {_size(value, False)}]"


def render_output(output: Any) -> tuple[str, bool]:
    """One output (an nbformat output or an IPython ``HistoryOutput``) as ``(text, is_error)``."""
    kind = _field(output, "output_type")
    if kind == "error":
        return _clean("\n".join(_joined(line) for line in _field(output, "traceback") or ())), True
    if kind == "stream":
        return _clean(_joined(_field(output, "text"))), False
    if kind in ("out_stream", "err_stream"):
        bundle = _field(output, "bundle") or {}
        return _clean(_joined(bundle.get("stream"))), False
    data = _field(output, "data")
    if data is None:
        data = _field(output, "bundle")
    return (_render_bundle(data), False) if isinstance(data, Mapping) else ("", False)


def _field(output: Any, name: str) -> Any:
    if isinstance(output, Mapping):
        return output.get(name)
    return getattr(output, name, None)


def _record_from_nb_cell(cell: Any, count: int) -> CellRecord:
    record = CellRecord(count, _joined(cell.get("source", "")))
    for output in cell.get("outputs") or ():
        text, is_error = render_output(output)
        if is_error:
            record.error = text
        elif text:
            record.outputs.append(text)
    return record


def cells_from_notebook(nb: Any) -> dict[int, CellRecord]:
    """Every executed code cell of an nbformat notebook, by execution count.

    Cells never run (no execution count) are skipped; when two cells carry the
    same count (copied cells), the later one wins.
    """
    records: dict[int, CellRecord] = {}
    for cell in nb.get("cells") or ():
        count = cell.get("execution_count")
        if cell.get("cell_type") == "code" and isinstance(count, int):
            records[count] = _record_from_nb_cell(cell, count)
    return records


def failure_from_notebook(records: Iterable[CellRecord]) -> Failure | None:
    """The failure of the highest-numbered cell with an error output, as a :class:`Failure`."""
    failed = [r for r in records if r.error is not None]
    if not failed:
        return None
    last = max(failed, key=lambda r: r.execution_count)
    return _failure_from_traceback(last.execution_count, last.source, last.error or "")


def _failure_from_traceback(count: int, source: str, traceback: str) -> Failure:
    lines = [line for line in traceback.splitlines() if line.strip()]
    final = lines[-1] if lines else "Error"
    ename, _, evalue = final.partition(": ")
    if not ename.replace(".", "").replace("_", "").isalnum():
        ename, evalue = "Error", final
    return Failure(count, source, ename.strip(), evalue.strip(), traceback)


def failure_from_shell(shell: InteractiveShell, before: int | None = None) -> Failure | None:
    """The most recent failure: our hook's record, else IPython's ``exceptions`` history.

    ``before`` excludes the cell being run and any later count.
    """
    captured = [
        f
        for f in failure_log(shell).all()
        if before is None or f.execution_count is None or f.execution_count < before
    ]
    best = captured[-1] if captured else None
    hm: Any = getattr(shell, "history_manager", None)
    exceptions = getattr(hm, "exceptions", None)
    if isinstance(exceptions, Mapping):
        counts = [n for n in exceptions if isinstance(n, int) and (before is None or n < before)]
        newest = max(counts, default=None)
        if newest is not None and (
            best is None or best.execution_count is None or newest > best.execution_count
        ):
            info = exceptions[newest]
            raw = getattr(hm, "input_hist_raw", [])
            source = raw[newest] if 0 <= newest < len(raw) else ""
            return Failure(
                newest,
                source,
                str(info.get("ename", "Error")),
                strip_ansi(str(info.get("evalue", ""))),
                _clean("\n".join(str(line) for line in info.get("traceback") or ())),
            )
    return best


def _same_source(a: str, b: str) -> bool:
    return a.strip() == b.strip()


def cells_from_shell(
    shell: InteractiveShell,
    *,
    kernel_id: str | None = None,
    only: Collection[int] | None = None,
) -> tuple[dict[int, CellRecord], str | None]:
    """The cells run in ``shell`` so far, and where their outputs came from.

    The second value is ``"history"`` (IPython >= 9.1 keeps outputs),
    ``"notebook"`` (read from the saved ``.ipynb``) or ``None`` (no outputs).
    ``only`` limits the work to those execution counts; ``kernel_id`` lets
    notebook discovery ask a running Jupyter server (default: this kernel's
    id, looked up only on IPython < 9.1).
    """
    hm: Any = shell.history_manager
    raw: list[str] = list(getattr(hm, "input_hist_raw", None) or [""])
    counts = range(1, len(raw)) if only is None else sorted(n for n in only if 0 < n < len(raw))
    failures = {f.execution_count: f for f in failure_log(shell).all()}
    exceptions = getattr(hm, "exceptions", None)
    if not isinstance(exceptions, Mapping):
        exceptions = {}
    records: dict[int, CellRecord] = {}
    for n in counts:
        record = records[n] = CellRecord(n, raw[n] if isinstance(raw[n], str) else "")
        failure = failures.get(n)
        if failure is not None:  # our hook's traceback: no colours, no IPython frames
            record.error = failure.traceback
        elif isinstance(exceptions.get(n), Mapping):
            record.error = _clean("\n".join(str(t) for t in exceptions[n].get("traceback") or ()))
    history = getattr(hm, "outputs", None)
    if isinstance(history, Mapping):
        for n, record in records.items():
            # .get, not [n]: IPython's outputs is a defaultdict and must not grow here.
            for output in history.get(n) or ():
                text, _ = render_output(output)
                if text:
                    record.outputs.append(text)
        return records, "history"
    return records, _outputs_from_notebook(shell, records, kernel_id)


def _outputs_from_notebook(
    shell: InteractiveShell, records: dict[int, CellRecord], kernel_id: str | None
) -> str | None:
    """Fill outputs from the saved notebook; return ``"notebook"`` or ``None``."""
    from ..errors import NotebookError
    from ..notebook import current_kernel_id, find_notebook_path, read_notebook

    found = find_notebook_path(shell.user_ns, kernel_id=kernel_id or current_kernel_id())
    if found is None:
        return None
    try:
        saved = cells_from_notebook(read_notebook(found.path).nb)
    except NotebookError:
        return None
    for n, record in records.items():
        match = saved.get(n)
        # The file holds the last *save*: a cell re-run since then has other outputs.
        if match is not None and _same_source(match.source, record.source):
            record.outputs = match.outputs
            if record.error is None:
                record.error = match.error
    return "notebook"


def raw_cells(shell: Any) -> dict[int, str]:
    """Execution count -> raw source of every cell run so far."""
    raw = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or []
    return {n: src for n, src in enumerate(raw) if n > 0 and isinstance(src, str) and src.strip()}
