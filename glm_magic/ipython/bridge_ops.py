"""What the magics do with the notebook bridge (``%glm bridge``, ``--insert``, ``fix --replace``).

Each function returns whether the bridge handled the request; ``False`` means
"no bridge here: do what glm-magic does without it" (the callers keep their
old paths and one-line notes). The comm is :mod:`glm_magic.ipython.bridge`;
the schema and the per-shell registry are :mod:`glm_magic.bridge`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import bridge as proto
from . import bridge

if TYPE_CHECKING:
    from ..failures import Failure
    from ..reply import Reply
    from .magics import GlmMagics

__all__ = ["cmd_bridge", "insert_reply", "propose_fix", "status"]


def status(shell: Any) -> str:
    """One line for ``%glm bridge``: detected or not, and what that means."""
    found = bridge.active(shell)
    if found is not None:
        return (
            f"bridge: on ({found.frontend}); Insert places cells, Apply shows a diff, "
            "context reads the live notebook"
        )
    if getattr(shell, "kernel", None) is None:
        return "bridge: off (no Jupyter kernel)"
    return (
        "bridge: off (no glm-magic-bridge extension answered: JupyterLab 4 / Notebook 7 "
        "have it when glm-magic is installed in the server's environment); "
        "Insert copies, context comes from the history"
    )


def cmd_bridge(magics: GlmMagics, args: list[str]) -> None:
    """``%glm bridge``: say whether the notebook bridge is on (never waits)."""
    if args:
        from IPython.core.error import UsageError

        raise UsageError(f"%glm bridge takes no arguments (got {' '.join(args)!r})")
    print(status(magics.shell))


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

    found = bridge.active(shell)
    here = bridge.current_cell_id(shell)
    blocks = _code_blocks(reply)
    if found is None or here is None or not blocks:
        return False
    cells = [{"cell_type": "code", "source": code_cell_source(c, reply.model)} for c in blocks]
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
