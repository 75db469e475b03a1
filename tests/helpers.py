"""Test helpers written once: a clean environment, a loaded kernel, no retries, examples.

Each was copied from test file to test file before issue 8; the fixtures that use
them stay in the ``conftest.py`` of their folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .kernel.harness import Kernel

__all__ = [
    "EXAMPLES",
    "KEY_VARS",
    "SUITE_STORE",
    "clean_env",
    "clear_glm_env",
    "loaded_kernel",
    "no_retries",
    "run_example",
]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "notebooks"
#: Where glm-magic finds a key: never inherited from the developer's shell.
KEY_VARS = ("RUNAPI_KEY", "GLM_API_KEY")


#: The suite's reply-store settings (tests/conftest.py: off, in a scratch folder): kept.
SUITE_STORE = ("GLM_MAGIC_CACHE", "GLM_MAGIC_CACHE_DIR")


def _ours(name: str) -> bool:
    # The key variables and every GLM_* setting (base URL, model, timeouts), but not the
    # suite's reply store: a child must never replay, nor write to the user's cache.
    return (name in KEY_VARS or name.startswith("GLM_")) and name not in SUITE_STORE


def clean_env(base_url: str | None = None, **extra: str) -> dict[str, str]:
    """This process's environment for a child (kernel, IPython, Jupyter) with no key or GLM_*.

    ``base_url`` becomes ``GLM_BASE_URL``; ``extra`` is set last (a key, ``IPYTHONDIR``).
    """
    env = {k: v for k, v in os.environ.items() if not _ours(k)}
    if base_url:
        env["GLM_BASE_URL"] = base_url
    env.update(extra)
    return env


def clear_glm_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """The same for this process: unset the key and GLM_* variables, then set ``values``."""
    for name in [k for k in os.environ if _ours(k)]:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@contextmanager
def loaded_kernel(base_url: str, key: str | None = None) -> Iterator[Kernel]:
    """A kernel on ``base_url``, ``key`` as ``$RUNAPI_KEY``, ``%load_ext glm_magic`` run."""
    from .kernel.harness import Kernel

    k = Kernel(clean_env(base_url, **({"RUNAPI_KEY": key} if key is not None else {})))
    try:
        ex = k.run("%load_ext glm_magic")
        assert ex.status == "ok", ex.messages
        yield k
    finally:
        k.shutdown()


@contextmanager
def no_retries(kernel: Kernel) -> Iterator[Kernel]:
    """``GlmMagics.max_retries = 0`` inside the block (one request per fault), 3 after it."""
    kernel.run("%config GlmMagics.max_retries = 0")
    try:
        yield kernel
    finally:
        kernel.run("%config GlmMagics.max_retries = 3")


def run_example(name: str, base_url: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """Execute ``examples/notebooks/<name>`` with nbclient on ``base_url`` with glm-4.7.

    No key unless ``env`` gives one (``RUNAPI_KEY=...``); the variables stay set for the
    rest of the test. Returns the executed notebook; the file on disk is not written.
    """
    import nbformat
    from nbclient import NotebookClient

    path = EXAMPLES / name
    clear_glm_env(monkeypatch, GLM_BASE_URL=base_url, GLM_MODEL="glm-4.7", **env)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3").execute(cwd=str(path.parent))
    return nb
