"""The notebook bridge protocol: versioned messages between the kernel and the frontend.

The bridge is a comm (target :data:`TARGET`) between glm-magic in the kernel
and the ``glm-magic-bridge`` JupyterLab 4 / Notebook 7 extension. This module
holds the schema only (no IPython, no comm): builders for what the kernel
sends and a strict parser for what the frontend sends. ``docs/bridge.md``
documents the same schema for people.

Every message is a JSON object with ``"v"`` (:data:`VERSION`) and ``"op"``.

Kernel -> frontend: ``hello`` (the comm's open data), ``insert``, ``replace``
and ``snapshot_request``; for the notebook agent ``approve`` / ``approve_done``
(an approval card that answers the ``input()`` prompt which follows) and
``insert`` with outputs and keys (a step's cell). The frontend refuses any
other op or version with one console warning and changes nothing.

Frontend -> kernel: ``hello`` (the answer to the open, naming the
:data:`FEATURES` it supports), ``snapshot`` (the
live notebook; pushed before each cell runs and on request), ``result`` (what
became of an ``insert`` or ``replace``), ``action`` (the user clicked Insert
in a reply that glm-magic showed). Anything else raises :class:`BridgeError`
with one line saying why; the comm side drops such a message.

The lower layers reach a shell's bridge through the small registry at the end
(:func:`endpoint`): the comm side (:mod:`glm_magic.ipython.bridge`) attaches
itself per shell, so context building and the widgets need no IPython import.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .bridge_cells import step_fields
from .errors import GlmError

if TYPE_CHECKING:
    from .failures import Failure
    from .reply import Reply

__all__ = [
    "ACTIVE",
    "AGENT",
    "ANSWERS",
    "FEATURES",
    "MAX_CELLS",
    "MAX_SOURCE",
    "TARGET",
    "VERSION",
    "Action",
    "BridgeError",
    "Endpoint",
    "Hello",
    "LiveCell",
    "Result",
    "Snapshot",
    "Target",
    "applied_note",
    "approve_done_message",
    "approve_message",
    "attach",
    "detach",
    "endpoint",
    "hello_message",
    "insert_message",
    "parse_message",
    "propose_replace",
    "provenance",
    "replace_message",
    "reply_class",
    "snapshot_request",
]

#: The comm target both sides register.
TARGET = "glm_magic.bridge"
#: The protocol version; the frontend refuses any other.
VERSION = 1
#: ``insert``'s ``after`` value meaning "the cell the user has selected".
ACTIVE = "@active"
#: Limits on what one message may carry (a snapshot of a huge notebook is cut, not refused).
MAX_CELLS = 2000
MAX_SOURCE = 1_000_000

#: The feature a frontend names in its ``hello`` when it handles the agent's operations.
AGENT = "agent"
#: What this side understands; an older frontend names none, and gets none of them.
FEATURES = (AGENT,)
#: An approval's answers, and the ``input()`` reply each stands for.
ANSWERS = {"run": "y", "skip": "n", "all": "a", "stop": "q"}

_CELL_TYPES = ("code", "markdown", "raw")


class BridgeError(GlmError):
    """A bridge message does not follow the schema (it is dropped, nothing changes)."""


# -- kernel -> frontend ----------------------------------------------------------------


def provenance(model: str, request_id: str | None) -> dict[str, Any]:
    """The metadata stored on every cell the bridge inserts (``metadata.glm_magic``)."""
    return {
        "generated_by": "glm-magic",
        "model": str(model),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "request_id": request_id or "",
    }


def hello_message(kernel_version: str) -> dict[str, Any]:
    """The comm's open data: who the kernel side is."""
    return {"v": VERSION, "op": "hello", "kernel": f"glm-magic {kernel_version}"}


def _cell(cell: Mapping[str, Any]) -> dict[str, Any]:
    kind = cell.get("cell_type", "code")
    source = cell.get("source", "")
    if kind not in ("code", "markdown") or not isinstance(source, str):
        raise BridgeError(f"bridge: a cell to insert must be code or markdown text, not {kind!r}")
    extra = step_fields(cell, str(kind))
    if isinstance(extra, str):
        raise BridgeError(f"bridge: {extra}")
    return {"cell_type": str(kind), "source": source, **extra}


def _provenance(prov: Mapping[str, Any]) -> dict[str, str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in prov.items()):
        raise BridgeError("bridge: provenance values must be strings")
    return dict(prov)


def insert_message(
    msg_id: str,
    after: str,
    cells: Sequence[Mapping[str, Any]],
    prov: Mapping[str, Any],
) -> dict[str, Any]:
    """Insert ``cells`` after cell ``after`` (a cell id, a cell's ``key``, or :data:`ACTIVE`).

    A cell is ``{"cell_type", "source"}``, and for the agent's steps also
    ``key`` (names the new cell for a later ``after``), ``outputs`` (nbformat,
    see :mod:`glm_magic.bridge_cells`) and ``execution_count``.
    """
    if not cells or len(cells) > 100:
        raise BridgeError("bridge: insert needs 1 to 100 cells")
    return {
        "v": VERSION,
        "op": "insert",
        "id": msg_id,
        "after": after,
        "cells": [_cell(c) for c in cells],
        "provenance": _provenance(prov),
    }


def approve_message(
    msg_id: str, cell_id: str | None, step: int, code: str, prompt: str
) -> dict[str, Any]:
    """Show an approval card for ``code`` under ``cell_id`` (``None``: the running cell).

    A click answers the kernel's next stdin request whose prompt is ``prompt``.
    """
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise BridgeError("bridge: an approval's step must be a non-negative integer")
    data = {"cell_id": cell_id, "code": code, "prompt": prompt}
    _str(data, "cell_id", optional=True)
    _str(data, "code", limit=MAX_SOURCE)
    _str(data, "prompt", limit=1000)
    return {"v": VERSION, "op": "approve", "id": msg_id, "step": step, **data}


def approve_done_message(msg_id: str, answer: str) -> dict[str, Any]:
    """The approval ``msg_id`` was answered (``run``, ``skip``, ``all``, ``stop``): the card goes.

    The ``input()`` letters (``y``, ``n``, ``a``, ``q``) are accepted for the same answers.
    """
    letters = {letter: word for word, letter in ANSWERS.items()}
    word = letters.get(answer, answer)
    if word not in ANSWERS:
        raise BridgeError(f"bridge: unknown approval answer {str(answer)[:20]!r}")
    return {"v": VERSION, "op": "approve_done", "id": msg_id, "answer": word}


def replace_message(
    msg_id: str, cell_id: str, source: str, prov: Mapping[str, Any]
) -> dict[str, Any]:
    """Propose ``source`` for cell ``cell_id``: the frontend shows a diff to accept or reject."""
    return {
        "v": VERSION,
        "op": "replace",
        "id": msg_id,
        "cell_id": cell_id,
        "source": source,
        "provenance": dict(prov),
    }


def snapshot_request(msg_id: str) -> dict[str, Any]:
    """Ask for a fresh ``snapshot`` (answered when the kernel is next idle)."""
    return {"v": VERSION, "op": "snapshot_request", "id": msg_id}


# -- frontend -> kernel ----------------------------------------------------------------


@dataclass(frozen=True)
class Hello:
    """The frontend's answer to the comm open, and the optional features it handles."""

    frontend: str
    features: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveCell:
    """One cell of the live notebook, as the frontend's model holds it (unsaved edits too)."""

    id: str
    cell_type: str
    source: str
    execution_count: int | None = None
    outputs: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """The live notebook: its cells in order, the selected cell, the cell being run."""

    cells: tuple[LiveCell, ...]
    active_cell: str | None
    running_cell: str | None
    path: str = ""
    request_id: str | None = None
    received: float = field(default=0.0, compare=False)

    def index(self, cell_id: str | None) -> int | None:
        """Position of ``cell_id`` in the notebook (``None`` when absent)."""
        for i, cell in enumerate(self.cells):
            if cell.id == cell_id:
                return i
        return None

    def as_notebook(self) -> dict[str, Any]:
        """The cells as an nbformat-shaped dict (for the context builders)."""
        return {
            "cells": [
                {
                    "id": c.id,
                    "cell_type": c.cell_type,
                    "source": c.source,
                    "execution_count": c.execution_count,
                    "outputs": list(c.outputs),
                    "metadata": {},
                }
                for c in self.cells
            ]
        }


@dataclass(frozen=True)
class Result:
    """What became of an ``insert`` or ``replace``: ``status`` and where (``below``)."""

    id: str
    status: str  # "inserted" | "accepted" | "rejected" | "failed"
    below: int | None = None  # the anchor's execution count, for "inserted below [7]"
    message: str = ""


@dataclass(frozen=True)
class Action:
    """The user clicked a code block's Insert in a reply shown with bridge ``token``.

    ``id`` is chosen by the frontend; the ``insert`` that answers reuses it, so
    the frontend can say where the code went next to the clicked button.
    """

    id: str
    token: str
    code: str
    active: str | None = None  # the cell selected before the click selected the button's cell


def _str(data: Mapping[str, Any], key: str, *, optional: bool = False, limit: int = 200) -> Any:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise BridgeError(f"bridge: {key!r} must be a string of at most {limit} characters")
    return value


def _live_cell(raw: Any) -> LiveCell:
    if not isinstance(raw, Mapping):
        raise BridgeError("bridge: a snapshot cell must be an object")
    kind = _str(raw, "cell_type")
    if kind not in _CELL_TYPES:
        raise BridgeError(f"bridge: unknown cell type {kind!r}")
    count = raw.get("execution_count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool)):
        raise BridgeError("bridge: execution_count must be an integer or null")
    outputs = raw.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, Mapping) for o in outputs):
        raise BridgeError("bridge: outputs must be a list of objects")
    return LiveCell(
        id=_str(raw, "id"),
        cell_type=kind,
        source=_str(raw, "source", limit=MAX_SOURCE),
        execution_count=count,
        outputs=tuple(outputs),
    )


def _snapshot(data: Mapping[str, Any]) -> Snapshot:
    cells = data.get("cells")
    if not isinstance(cells, list):
        raise BridgeError("bridge: a snapshot needs a list of cells")
    return Snapshot(
        cells=tuple(_live_cell(c) for c in cells[:MAX_CELLS]),
        active_cell=_str(data, "active_cell", optional=True),
        running_cell=_str(data, "running_cell", optional=True),
        path=_str(data, "path", optional=True, limit=4096) or "",
        request_id=_str(data, "id", optional=True),
        received=time.monotonic(),
    )


def _result(data: Mapping[str, Any]) -> Result:
    status = _str(data, "status")
    if status not in ("inserted", "accepted", "rejected", "failed"):
        raise BridgeError(f"bridge: unknown result status {status!r}")
    below = data.get("below")
    if below is not None and (not isinstance(below, int) or isinstance(below, bool)):
        raise BridgeError("bridge: 'below' must be an integer or null")
    message = data.get("message") or ""
    return Result(_str(data, "id"), status, below, str(message)[:200])


def parse_message(data: Any) -> Hello | Snapshot | Result | Action:
    """Validate one message from the frontend; :class:`BridgeError` says what is wrong."""
    if not isinstance(data, Mapping):
        raise BridgeError("bridge: a message must be a JSON object")
    version = data.get("v")
    if version != VERSION:
        raise BridgeError(f"bridge: protocol version {version!r} is not {VERSION}")
    op = data.get("op")
    if op == "hello":
        features = data.get("features") or []
        if not isinstance(features, list) or len(features) > 50:
            raise BridgeError("bridge: 'features' must be a list of names")
        names = tuple(_str({"feature": f}, "feature", limit=50) for f in features)
        return Hello(_str(data, "frontend"), names)
    if op == "snapshot":
        return _snapshot(data)
    if op == "result":
        return _result(data)
    if op == "action":
        return Action(
            _str(data, "id"),
            _str(data, "token"),
            _str(data, "code", limit=MAX_SOURCE),
            _str(data, "active", optional=True),
        )
    raise BridgeError(f"bridge: unknown op {op!r}")


# -- the per-shell registry --------------------------------------------------------------


@dataclass
class Target:
    """Where Insert in one shown reply puts code, and the provenance it records."""

    after: str  # a cell id, or ACTIVE
    model: str
    reply: Callable[[], Reply | None]


class Endpoint(Protocol):
    """What a shell's bridge offers (implemented by :class:`glm_magic.ipython.bridge.Bridge`)."""

    @property
    def detected(self) -> bool:
        """Whether a frontend extension answered ``hello``."""

    def live_snapshot(self) -> Snapshot | None:
        """The snapshot describing the notebook as the current request sees it."""

    def replace(
        self, cell_id: str, source: str, *, model: str, request_id: str | None
    ) -> str | None:
        """Propose ``source`` for ``cell_id``; the message id, ``None`` without a bridge."""

    def register(self, target: Target) -> str:
        """A token for a shown reply whose Insert buttons go to ``target``."""


_endpoints: dict[int, Endpoint] = {}


def attach(shell: Any, found: Endpoint) -> None:
    """Make ``found`` the bridge of ``shell``."""
    _endpoints[id(shell)] = found


def detach(shell: Any) -> None:
    """Forget the bridge of ``shell``."""
    _endpoints.pop(id(shell), None)


def endpoint(shell: Any) -> Endpoint | None:
    """The bridge of ``shell`` when a frontend answered, else ``None`` (fall back)."""
    found = _endpoints.get(id(shell))
    return found if found is not None and found.detected else None


def reply_class(shell: Any, after: str | None, model: str, reply: Callable[[], Any]) -> str | None:
    """A CSS class for a shown reply whose Insert buttons place cells after ``after``.

    ``after`` is a cell id, or ``None`` for the cell selected when the user
    clicks. ``None`` when there is no bridge (Insert copies, as before).
    """
    found = endpoint(shell)
    if found is None:
        return None
    return f"glm-bridge-{found.register(Target(after or ACTIVE, model, reply))}"


def propose_replace(shell: Any, failure: Failure, reply: Reply) -> bool:
    """Show ``reply``'s code as a diff on the failing cell; ``False`` without a bridge."""
    found = endpoint(shell)
    code = reply.code.strip()
    if found is None or failure.cell_id is None or not code:
        return False
    sent = found.replace(failure.cell_id, code, model=reply.model, request_id=reply.request_id)
    return sent is not None


def applied_note(failure: Failure) -> str:
    """The line saying where the proposed fix is shown."""
    return f"the fix is shown as a diff on {failure.label}: Accept or Reject it there"
