"""Loading and unloading the extension, finding the loaded magics, and ``glm_magic.ask``.

``load`` registers :class:`~glm_magic.magics.GlmMagics`, the failure-capture
hook and (when configured) the Explain/Fix buttons; ``unload`` removes every
one of them, so ``%unload_ext glm_magic`` leaves the shell as it found it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .magics import GlmMagics

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .reply import Reply

__all__ = ["ask", "current", "load", "unload"]

#: The magics loaded into each shell, by id(shell).
_loaded: dict[int, GlmMagics] = {}
_standalone: GlmMagics | None = None


def load(ipython: InteractiveShell) -> None:
    """Register the magics on ``ipython`` (idempotent)."""
    if id(ipython) in _loaded:
        return
    magics = GlmMagics(shell=ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics
    from . import hooks

    hooks.install(ipython)
    if magics.buttons and getattr(ipython, "kernel", None) is not None:
        from . import buttons

        buttons.enable(ipython, magics)


def unload(ipython: InteractiveShell) -> None:
    """Remove every magic, hook and configurable that :func:`load` added."""
    found = _loaded.pop(id(ipython), None)
    if found is None:
        return
    magics: Any = found  # IPython types configurables as shells
    from . import buttons, hooks

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
    """The Python API behind :func:`glm_magic.ask`."""
    from IPython import get_ipython

    global _standalone
    shell = get_ipython()
    magics = current(shell)
    if magics is None and shell is not None:
        load(shell)
        magics = current(shell)
    if magics is None:
        # Plain Python: no shell, so no display; the terminal renderer prints.
        magics = _standalone = _standalone or GlmMagics(shell=None)
    thinking = options.pop("thinking", None)
    return magics.run_prompt(
        prompt,
        system=options.pop("system", None),
        new=bool(options.pop("new", False)),
        stream=options.pop("stream", None),
        fmt=options.pop("format", "markdown"),
        out=None,
        model=options.pop("model", None),
        temperature=options.pop("temperature", None),
        max_tokens=options.pop("max_tokens", None),
        thinking=thinking,
        **options,
    )
