"""The built-in defaults: endpoint, model, key variable, system prompt (stdlib only, instant).

Kept apart from :mod:`glm_magic.config` so ``%load_ext glm_magic`` can declare
its settings without importing anything a request needs.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_KEY_ENV",
    "DEFAULT_MODEL",
    "DEFAULT_SYSTEM",
    "FALLBACK_KEY_ENV",
]

DEFAULT_BASE_URL = "https://runapi.ai/v1"
DEFAULT_MODEL = "glm-5.1"
DEFAULT_KEY_ENV = "RUNAPI_KEY"
#: Looked up after the configured variable, so a Z.ai key works without renaming.
FALLBACK_KEY_ENV = "GLM_API_KEY"

DEFAULT_SYSTEM = (
    "You are a concise assistant inside a Jupyter notebook running Python. "
    "Answer in Markdown. Put code in fenced ```python blocks that run as a whole cell."
)
