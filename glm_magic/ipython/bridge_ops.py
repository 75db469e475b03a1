"""``%glm bridge``: whether the notebook bridge is on, in one line (never waits).

The comm and what the magics do with it are :mod:`glm_magic.ipython.bridge`;
the schema and the per-shell registry are :mod:`glm_magic.bridge`.
"""

from __future__ import annotations

from typing import Any

from ..bridge import AGENT
from . import bridge

#: The loaded :class:`~glm_magic.ipython.magics.GlmMagics` (duck-typed: it imports this module).
GlmMagics = Any

__all__ = ["cmd_bridge", "status"]


def status(shell: Any) -> str:
    """One line for ``%glm bridge``: detected or not, and what that means."""
    found = bridge.active(shell)
    if found is not None:
        cards = "; the agent asks with approval cards" if found.supports(AGENT) else ""
        return (
            f"bridge: on ({found.frontend}); Insert places cells, Apply shows a diff, "
            f"context reads the live notebook{cards}"
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

        raise UsageError(
            f"%glm bridge takes no arguments (got {' '.join(args)!r}); usage: %glm bridge"
        )
    print(status(magics.shell))
