"""Loading and unloading the extension, finding the loaded magics, and ``glm_magic.ask``.

``load`` registers :class:`~glm_magic.ipython.magics.GlmMagics`, the failure-capture
hook and (when configured) the Explain/Fix buttons; ``unload`` removes every
one of them, so ``%unload_ext glm_magic`` leaves the shell as it found it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .magics import GlmMagics

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..core.session import Session
    from ..reply import Reply

__all__ = ["ask", "current", "load", "panel", "unload"]

#: The magics loaded into each shell, by id(shell).
_loaded: dict[int, GlmMagics] = {}
_standalone: Session | None = None


def load(ipython: InteractiveShell) -> None:
    """Register the magics on ``ipython`` (idempotent)."""
    if id(ipython) in _loaded:
        return
    magics = GlmMagics(shell=ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics
    magics.loaded = True
    from .. import failures as hooks

    hooks.install(ipython)
    if magics.buttons and getattr(ipython, "kernel", None) is not None:
        from ..widgets import buttons

        buttons.enable(ipython, magics.session)
    from . import bridge

    bridge.start(ipython)  # the notebook bridge, when the frontend extension answers


def unload(ipython: InteractiveShell) -> None:
    """Remove every magic, hook and configurable that :func:`load` added."""
    found = _loaded.pop(id(ipython), None)
    if found is None:
        return
    magics: Any = found  # IPython types configurables as shells
    magics.loaded = False
    from .. import failures as hooks
    from ..widgets import buttons
    from . import bridge

    bridge.stop(ipython)
    buttons.disable(ipython)
    hooks.uninstall(ipython)
    table = ipython.magics_manager.magics
    for kind in ("line", "cell"):
        if getattr(table[kind].get("glm"), "__self__", None) is magics:
            del table[kind]["glm"]
    ipython.magics_manager.registry.pop(type(magics).__name__, None)
    if magics in ipython.configurables:
        ipython.configurables.remove(magics)
    magics.close()


def current(ipython: InteractiveShell | None = None) -> GlmMagics | None:
    """The loaded magics of ``ipython`` (default: the running shell), if any."""
    if ipython is None:
        from IPython import get_ipython

        ipython = get_ipython()
    return _loaded.get(id(ipython)) if ipython is not None else None


def ask(prompt: str, **options: Any) -> Reply | None:
    """The Python API behind :func:`glm_magic.ask`.

    In IPython it is ``%glm QUESTION`` (the loaded magics' session, shown in
    the output); in plain Python the core alone streams to the terminal.
    """
    from IPython import get_ipython

    shell = get_ipython()
    magics = current(shell)
    if magics is None and shell is not None:
        load(shell)
        magics = current(shell)
    system = options.pop("system", None)
    new = bool(options.pop("new", False))
    stream = options.pop("stream", None)
    fmt = options.pop("format", "markdown")
    sampling = {k: options.pop(k, None) for k in ("model", "temperature", "max_tokens", "thinking")}
    if magics is not None:
        return magics.run_prompt(
            prompt, system=system, new=new, stream=stream, fmt=fmt, out=None, **sampling, **options
        )
    return _ask_plain(prompt, system, new, stream, fmt, sampling, options)


def _ask_plain(
    prompt: str,
    system: str | None,
    new: bool,
    stream: bool | None,
    fmt: str,
    sampling: dict[str, Any],
    options: dict[str, Any],
) -> Reply:
    from ..core.session import Session
    from ..errors import ConfigError
    from .render import TerminalRenderer

    global _standalone
    context = options.pop("context", None)
    if options:
        raise ConfigError(f"unknown option(s) to glm_magic.ask: {', '.join(sorted(options))}")
    session = _standalone = _standalone or Session()
    settings = session.settings(**sampling)
    if new:
        session.conversation.reset()
    prepared = session.prepare(prompt, settings, system=system, context=context)
    return session.run(prepared, TerminalRenderer(settings.model, fmt=fmt), stream=stream)


def panel(**options: Any) -> Any:
    """The Python API behind :func:`glm_magic.panel`: load the extension, show a panel."""
    from IPython import get_ipython

    from ..widgets.app import show_panel

    shell = options.pop("shell", None) or get_ipython()
    magics = current(shell)
    if magics is None and shell is not None:
        load(shell)
        magics = current(shell)
    if magics is None:
        from ..errors import ConfigError

        raise ConfigError("the chat panel needs a Jupyter kernel (widgets); use %%glm here")
    return show_panel(magics.session, **options)
