"""The notebook bridge's comm in the kernel, to the ``glm-magic-bridge`` frontend extension.

How it works, given what ipykernel (7.x) really does (docs/bridge.md):
messages from the kernel reach the frontend at any time, but messages from
the frontend are handled only when no cell is running. So nothing here ever
waits for the frontend on the main thread:

- ``%load_ext glm_magic`` opens a comm (target ``glm_magic.bridge``). The
  extension answers ``hello``; once that answer has been handled (between
  cells) the bridge is *detected*. A new page attaches to the same comm and
  says hello again. Without the extension (VS Code, Colab, classic
  Notebook, nbclient, a terminal) nothing answers and everything falls back
  to what glm-magic does without the bridge.
- Before each cell runs, the extension pushes a ``snapshot`` of the live
  notebook; it is handled before the cell's code, so the running cell sees
  the notebook as it was when the user ran it (unsaved edits included).
- ``insert`` and ``replace`` are sent from anywhere (cells, widget callbacks);
  ``replace`` only proposes: the user accepts or rejects a diff.
- A background thread (never the main thread) may ask for a fresh snapshot
  and waits at most :data:`WAIT` seconds.

:func:`insert_reply` and :func:`propose_fix` are what the magics do with it;
each returns ``False`` when there is no bridge, and the caller falls back.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import bridge as proto

if TYPE_CHECKING:
    from ..failures import Failure
    from ..reply import Reply

__all__ = [
    "WAIT",
    "Bridge",
    "active",
    "current_cell_id",
    "get",
    "insert_reply",
    "live_notebook_finder",
    "propose_fix",
    "start",
    "stop",
]

#: The longest a background thread waits for the frontend (seconds).
WAIT = 1.0

log = logging.getLogger(__name__)

_bridges: dict[int, Bridge] = {}


def current_cell_id(shell: Any) -> str | None:
    """The id of the cell whose request the kernel is handling (from its metadata)."""
    try:
        parent = shell.kernel.get_parent() or {}
    except Exception:
        return None
    cell_id = (parent.get("metadata") or {}).get("cellId")
    return cell_id if isinstance(cell_id, str) and cell_id else None


class Bridge:
    """One kernel's end of the bridge comm."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.comm: Any = None
        #: The frontend's hello (``None`` until one answered: no bridge).
        self.frontend: str | None = None
        #: The optional features its hello named (``proto.AGENT``: approval cards, step cells).
        self.features: frozenset[str] = frozenset()
        self.snapshot: proto.Snapshot | None = None
        self.results: dict[str, proto.Result] = {}
        self.targets: dict[str, proto.Target] = {}
        self.dropped = 0
        self._waiters: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    # -- the comm ------------------------------------------------------------------

    def open(self) -> None:
        """Open the comm; the frontend extension, when present, answers ``hello``."""
        from comm import create_comm

        from ..version import __version__

        if self.comm is not None:
            return
        self.comm = create_comm(target_name=proto.TARGET, data=proto.hello_message(__version__))
        self.comm.on_msg(self._on_msg)
        self.comm.on_close(self._on_close)

    def close(self) -> None:
        """Close the comm; the bridge is gone until :meth:`open`."""
        comm, self.comm = self.comm, None
        self.frontend = None
        self.features = frozenset()
        if comm is not None:
            comm.close()

    def _on_close(self, msg: Any) -> None:
        self.comm = None
        self.frontend = None
        self.features = frozenset()

    @property
    def detected(self) -> bool:
        """Whether a frontend extension answered ``hello`` on the open comm."""
        return self.comm is not None and self.frontend is not None

    def supports(self, feature: str) -> bool:
        """Whether the answering frontend named ``feature`` in its hello (e.g. ``agent``)."""
        return self.detected and feature in self.features

    def send(self, data: dict[str, Any]) -> bool:
        """Send one built message (never waits); ``False`` when no frontend answered."""
        comm = self.comm
        if comm is None or self.frontend is None:
            return False
        comm.send(data)
        return True

    def _on_msg(self, msg: Any) -> None:
        data = (msg.get("content") or {}).get("data")
        try:
            message = proto.parse_message(data)
        except proto.BridgeError as exc:
            # Untrusted input: drop it, change nothing, keep one line for debugging.
            self.dropped += 1
            log.warning("%s", exc.one_line())
            return
        self.handle(message)

    def handle(self, message: proto.Hello | proto.Snapshot | proto.Result | proto.Action) -> None:
        """Act on one validated message from the frontend."""
        if isinstance(message, proto.Hello):
            self.frontend = message.frontend
            self.features = frozenset(message.features)
        elif isinstance(message, proto.Snapshot):
            self.snapshot = message
            self._wake(message.request_id)
        elif isinstance(message, proto.Result):
            self.results[message.id] = message
            self._wake(message.id)
        else:
            self._on_action(message)

    def _wake(self, msg_id: str | None) -> None:
        if msg_id is None:
            return
        with self._lock:
            event = self._waiters.pop(msg_id, None)
        if event is not None:
            event.set()

    # -- operations -----------------------------------------------------------------

    def insert(
        self,
        after: str,
        cells: Sequence[Mapping[str, Any]],
        *,
        model: str,
        request_id: str | None,
        msg_id: str | None = None,
    ) -> str | None:
        """Insert ``cells`` after cell ``after``; the message id (``None``: no bridge)."""
        msg_id = msg_id or secrets.token_hex(8)
        data = proto.insert_message(msg_id, after, cells, proto.provenance(model, request_id))
        return msg_id if self.send(data) else None

    def replace(
        self, cell_id: str, source: str, *, model: str, request_id: str | None
    ) -> str | None:
        """Propose ``source`` for ``cell_id`` as a diff; the message id (``None``: no bridge)."""
        msg_id = secrets.token_hex(8)
        data = proto.replace_message(msg_id, cell_id, source, proto.provenance(model, request_id))
        return msg_id if self.send(data) else None

    def fresh_snapshot(self, timeout: float = WAIT) -> proto.Snapshot | None:
        """Ask for a snapshot and wait up to ``timeout`` (background threads only).

        On the main thread the answer could only arrive after the caller
        returns, so this returns the latest pushed snapshot at once instead.
        """
        if threading.current_thread() is threading.main_thread():
            return self.snapshot
        msg_id = secrets.token_hex(8)
        event = threading.Event()
        with self._lock:
            self._waiters[msg_id] = event
        if not self.send(proto.snapshot_request(msg_id)):
            with self._lock:
                self._waiters.pop(msg_id, None)
            return self.snapshot
        event.wait(timeout)
        with self._lock:
            self._waiters.pop(msg_id, None)
        return self.snapshot

    def live_snapshot(self) -> proto.Snapshot | None:
        """The snapshot that describes the notebook as this request sees it, if any.

        In a running cell: only the one pushed for that very cell (by id).
        Between cells (widget callbacks, threads): the latest one.
        """
        snap = self.snapshot
        if not self.detected or snap is None:
            return None
        running = current_cell_id(self.shell)
        from ..context import running_cell

        if running_cell(self.shell) is None:
            return snap
        return snap if running is not None and snap.running_cell == running else None

    # -- Insert buttons in shown replies ---------------------------------------------

    def register(self, target: proto.Target) -> str:
        """A token naming where Insert in one shown reply puts code (see :class:`Target`)."""
        token = secrets.token_hex(8)
        self.targets[token] = target
        return token

    def _on_action(self, action: proto.Action) -> None:
        target = self.targets.get(action.token)
        if target is None or not action.code.strip():
            self.dropped += 1
            return
        from .cells import code_cell_source

        reply = target.reply()
        request_id = reply.request_id if reply is not None else None
        after = target.after
        if after == proto.ACTIVE and action.active:
            after = action.active  # the click itself selected the reply's cell
        self.insert(
            after,
            [{"cell_type": "code", "source": code_cell_source(action.code, target.model)}],
            model=target.model,
            request_id=request_id,
            msg_id=action.id,
        )


def get(shell: Any) -> Bridge | None:
    """The bridge of ``shell`` (``None`` outside a Jupyter kernel or before :func:`start`)."""
    return _bridges.get(id(shell))


def active(shell: Any) -> Bridge | None:
    """The bridge of ``shell`` when a frontend extension answered, else ``None`` (fall back)."""
    found = _bridges.get(id(shell))
    return found if found is not None and found.detected else None


def live_notebook_finder(shell: Any, key_prefix: str) -> str | None:
    """Where the open notebook (unsaved cells too) holds the cell inserted for a request.

    Registered with :func:`glm_magic.ipython.cells.register_cell_finder`, so a re-run
    of ``%%glm --insert`` or ``%glm fix`` finds a cell inserted but not yet saved.
    """
    from ..provenance import read_mark

    found = active(shell)
    snapshot = found.live_snapshot() if found is not None else None
    if snapshot is None:
        return None  # no bridge: the saved file is asked next
    for index, cell in enumerate(snapshot.cells):
        mark = read_mark(cell.source) if cell.cell_type == "code" else None
        if mark is not None and mark.key_prefix == key_prefix:
            return f"cell {index + 1} of the open notebook"
    return None


def start(shell: Any) -> Bridge | None:
    """Open the bridge comm for ``shell`` (idempotent; nothing outside a kernel)."""
    if getattr(shell, "kernel", None) is None:
        return None
    from .cells import register_cell_finder

    register_cell_finder(live_notebook_finder)
    found = _bridges.get(id(shell))
    if found is None:
        found = _bridges[id(shell)] = Bridge(shell)
        proto.attach(shell, found)
    try:
        found.open()
    except Exception as exc:  # no comm support in this kernel: no bridge, nothing breaks
        log.warning("glm-magic bridge: cannot open a comm (%s)", exc)
        return None
    return found


def stop(shell: Any) -> None:
    """Close the bridge of ``shell`` (``%unload_ext``)."""
    found = _bridges.pop(id(shell), None)
    proto.detach(shell)
    if found is not None:
        found.close()


# -- what the magics do with it (False: no bridge, fall back) -----------------------------


def _code_blocks(reply: Reply) -> list[str]:
    # The blocks reply.code joins: Python ones (all when there are none), closed
    # ones only when the reply was cut short.
    blocks = [b for b in reply.code_blocks if b.closed or reply.complete]
    chosen = [b for b in blocks if b.is_python] or blocks
    return [b.code.strip("\n") for b in chosen if b.code.strip()]


def insert_reply(shell: Any, reply: Reply) -> bool:
    """Insert one cell per code block of ``reply`` directly below the running cell."""
    from ..reply import CUT_BLOCK_LEFT_OUT
    from .cells import code_cell_source

    found = active(shell)
    here = current_cell_id(shell)
    blocks = _code_blocks(reply)
    if found is None or here is None or not blocks:
        return False
    cells = [
        {"cell_type": "code", "source": code_cell_source(c, reply.model, reply.key)} for c in blocks
    ]
    if found.insert(here, cells, model=reply.model, request_id=reply.request_id) is None:
        return False
    if reply.cut_code:
        print(f"note: {CUT_BLOCK_LEFT_OUT}; the closed blocks are inserted")
    n = len(cells)
    print(f"note: inserted {n} cell{'s' if n != 1 else ''} below this cell")
    return True


def propose_fix(shell: Any, failure: Failure, reply: Reply) -> bool:
    """Show ``reply``'s code as a diff on the failing cell, and say so in one line."""
    if not proto.propose_replace(shell, failure, reply):
        return False
    print(f"note: {proto.applied_note(failure)}")
    return True
