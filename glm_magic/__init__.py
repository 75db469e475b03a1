"""glm-magic: GLM (and any OpenAI-compatible model) inside IPython and Jupyter.

``%load_ext glm_magic`` registers the ``%%glm`` cell magic and the ``%glm``
line magic. Importing this package is cheap: httpx, nbformat and ipywidgets
are imported only when first needed, and the public names below resolve
lazily on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

__all__ = [
    "ChatClient",
    "GlmError",
    "Reply",
    "Settings",
    "__version__",
    "ask",
    "load_ipython_extension",
    "panel",
    "unload_ipython_extension",
]

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .client.chat import ChatClient
    from .config import Settings
    from .errors import GlmError
    from .reply import Reply
    from .widgets.app import ChatPanel

_LAZY = {
    "ChatClient": "glm_magic.client.chat",
    "GlmError": "glm_magic.errors",
    "Reply": "glm_magic.reply",
    "Settings": "glm_magic.config",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'glm_magic' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register ``%%glm`` / ``%glm`` and the failure-capture hook (``%load_ext``)."""
    from .ipython.extension import load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove everything :func:`load_ipython_extension` registered (``%unload_ext``)."""
    from .ipython.extension import unload

    unload(ipython)


def ask(prompt: str, **options: Any) -> Reply | None:
    """Send ``prompt`` like a ``%%glm`` cell would and return the :class:`Reply`.

    In a notebook the reply streams into the output; ``options`` are the
    magic's settings (``model=``, ``system=``, ``temperature=``, ``max_tokens=``,
    ``thinking=``, ``stream=``, ``new=``).
    """
    from .ipython.extension import ask as _ask

    return _ask(prompt, **options)


def panel(**options: Any) -> ChatPanel:
    """Show a chat panel in this cell's output and return it (see ``widgets.app.show_panel``)."""
    from .ipython.extension import panel as show

    result: ChatPanel = show(**options)
    return result
