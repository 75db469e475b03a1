"""The notebook agent's use of the bridge: approval cards and the cells of its steps.

The agent runs in the foreground, inside the cell that asked for it, and
ipykernel handles comm messages from the frontend only between cells (see
:mod:`glm_magic.ipython.bridge`). So this module only ever *sends*:

- :meth:`AgentBridge.ask` shows an approval card (Run / Skip / Run all for this
  task / Stop) under the agent's cell. The answer never comes back over the
  comm: the agent calls ``input(prompt)`` right after, and a click on the card
  answers that stdin request (``y`` / ``n`` / ``a`` / ``q``); typing into
  JupyterLab's own input box works too. :meth:`AgentBridge.answered` then
  removes the card, whoever answered.
- :meth:`AgentBridge.insert_step` inserts a step as a real cell, with the
  outputs and execution count its run had in the kernel: the first one
  directly below the agent's cell, each later one below the one before.

:func:`agent_bridge` gives ``None`` when no frontend with the agent feature
answered (VS Code, classic Notebook, nbclient, a terminal, an older
extension): the agent then asks with a plain stdin prompt. Messages:
``docs/bridge.md``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import bridge as proto
from ..bridge_cells import normalise_outputs
from .bridge import active, current_cell_id

if TYPE_CHECKING:
    from .bridge import Bridge

__all__ = ["AgentBridge", "agent_bridge"]


def _shown(output: Any) -> Any:
    """``output`` when the frontend can show it, else a one-line note saying why not."""
    why = normalise_outputs([output])
    if isinstance(why, str):
        kind = output.get("output_type") if isinstance(output, Mapping) else None
        text = f"[an output ({str(kind)[:40]}) could not be shown: {why}]\n"
        return {"output_type": "stream", "name": "stderr", "text": text}
    return output


def agent_bridge(shell: Any) -> AgentBridge | None:
    """The bridge for an agent running in ``shell``'s current cell; ``None``: fall back.

    Call it inside the agent's cell: the cell's id (from the execute request)
    is where the cards go and below which the first step is inserted.
    """
    found = active(shell)
    if found is None or not found.supports(proto.AGENT):
        return None
    return AgentBridge(found, current_cell_id(shell))


class AgentBridge:
    """One agent run's messages to the notebook: cards to approve steps, cells for steps."""

    def __init__(self, found: Bridge, cell_id: str | None) -> None:
        self._bridge = found
        #: The agent's running cell (``None``: the frontend finds the running cell itself).
        self.cell_id = cell_id
        self._last_key: str | None = None

    def ask(self, step: int, code: str, prompt: str) -> str:
        """Show a card asking to run ``code`` as step ``step``; the approval's id.

        ``prompt`` must be exactly what the caller passes to ``input()`` next:
        the card answers the stdin request with that prompt. A prompt that
        names the step makes that match exact. Never waits.
        """
        approval_id = secrets.token_hex(8)
        self._bridge.send(proto.approve_message(approval_id, self.cell_id, step, code, prompt))
        return approval_id

    def answered(self, approval_id: str, answer: str) -> None:
        """The approval was answered (``run`` / ``skip`` / ``all`` / ``stop``, or ``y/n/a/q``).

        The card goes, whether a click or the typed input box answered it.
        """
        self._bridge.send(proto.approve_done_message(approval_id, answer))

    def insert_step(
        self,
        source: str,
        outputs: list[dict[str, Any]],
        execution_count: int | None,
        cell_type: str = "code",
        provenance: dict[str, str] | None = None,
    ) -> None:
        """Insert a step's cell with its outputs: below the agent's cell, then below the last.

        ``outputs`` are nbformat outputs (stream, display_data, execute_result,
        error); they are shown untrusted (sanitised HTML, nothing runs). One
        that cannot be shown (not nbformat, not JSON) is replaced by a one-line
        note, as is a huge one: the step's cell is always inserted.
        ``provenance`` (string values; ``generated_by`` and ``time`` are added)
        is stored as the cell's ``metadata.glm_magic``; a non-string value
        raises :class:`~glm_magic.bridge.BridgeError`.
        """
        key = f"glm-step-{secrets.token_hex(8)}"
        cell: dict[str, Any] = {"cell_type": cell_type, "source": source, "key": key}
        if cell_type == "code":
            cell["outputs"] = [_shown(output) for output in outputs]
            cell["execution_count"] = execution_count
        prov: Mapping[str, Any] = {
            "generated_by": "glm-magic",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **(provenance or {}),
        }
        after = self._last_key or self.cell_id or proto.ACTIVE
        data = proto.insert_message(secrets.token_hex(8), after, [cell], prov)
        if self._bridge.send(data):
            self._last_key = key
