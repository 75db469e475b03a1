"""``%glm panel`` and ``%glm buttons``: the widget features as sub-commands.

``%glm panel [-m MODEL] [--think|--no-think] [--context SPEC]`` shows a chat
panel (:mod:`glm_magic.widgets.app`); ``%glm buttons on|off`` turns the
Explain / Fix buttons under failing cells on or off (:mod:`glm_magic.widgets.buttons`).
Bad input is one ``UsageError`` line.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

from ..errors import GlmError

#: The loaded :class:`~glm_magic.ipython.magics.GlmMagics` (duck-typed: it imports this module).
GlmMagics = Any

__all__ = ["cmd_buttons", "cmd_panel"]


def cmd_panel(magics: GlmMagics, args: list[str]) -> None:
    """Show a chat panel in this cell's output."""
    from .options import SubcommandParser

    parser = SubcommandParser("panel")
    parser.add_argument("-m", "--model")
    parser.add_argument("--think", action="store_true", dest="think", default=None)
    parser.add_argument("--no-think", action="store_false", dest="think")
    parser.add_argument("--context", nargs="+", default=["none"], metavar="SPEC")
    opts = parser.parse(args)
    from ..widgets.app import show_panel

    try:
        show_panel(
            magics.session, model=opts.model, thinking=opts.think, context=" ".join(opts.context)
        )
    except (GlmError, ValueError) as exc:
        message = exc.one_line() if isinstance(exc, GlmError) else str(exc)
        raise UsageError(f"%glm panel: {message}") from None


def cmd_buttons(magics: GlmMagics, args: list[str]) -> None:
    """``on``: Explain / Fix under failing cells from now on; ``off``: no more; none: the state."""
    from ..widgets import buttons

    shell = magics.shell
    if shell is None:
        raise UsageError("%glm buttons needs an IPython shell")
    if not args:
        state = "on" if buttons.enabled(shell) else "off"
        print(f"Explain / Fix buttons under failing cells are {state} (%glm buttons on|off).")
        return
    if len(args) != 1 or args[0] not in ("on", "off"):
        raise UsageError(
            f"%glm buttons takes on or off, not {' '.join(args)!r}; usage: %glm buttons [on|off]"
        )
    if args[0] == "off":
        buttons.disable(shell)
        print("Explain / Fix buttons are off.")
        return
    try:
        buttons.enable(shell, magics.session)
    except GlmError as exc:
        raise UsageError(f"%glm buttons: {exc.one_line()}") from None
    print("Explain / Fix buttons are on: they appear under the next cell that fails.")
