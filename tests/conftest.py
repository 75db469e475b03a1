"""Shared fixtures: the bundled endpoint on loopback, and a clean key state."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glm_magic import config
from glm_magic.testing import EndpointServer, serve

# The reply store never touches the user's cache, and stays off unless a test turns it on:
# other tests send the same prompt twice and count two requests. Set before any kernel or
# subprocess starts, so they inherit it (tests of replay set GLM_MAGIC_CACHE themselves).
os.environ["GLM_MAGIC_CACHE_DIR"] = tempfile.mkdtemp(prefix="glm-test-store-")
os.environ.setdefault("GLM_MAGIC_CACHE", "off")

#: A recognisable fake key: tests assert it never shows up anywhere.
FAKE_KEY = "sk-glmtest-FAKEKEY-0123456789abcdef"
#: A key no pattern masker would catch (a local proxy's own key): only the configured-key
#: masking can hide it, so a test with it fails when that masking breaks.
PLAIN_KEY = "localproxy-Key-7f3a9c2e"


@pytest.fixture(scope="session")
def endpoint() -> Iterator[EndpointServer]:
    """The bundled OpenAI-compatible endpoint, a real HTTP server on 127.0.0.1."""
    server = serve(port=0)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fresh_endpoint(endpoint: EndpointServer) -> EndpointServer:
    """The shared endpoint with its request log and fail counters cleared."""
    endpoint.reset()
    return endpoint


@pytest.fixture(autouse=True)
def _no_session_key() -> Iterator[None]:
    config.clear_session_key()
    yield
    config.clear_session_key()


@pytest.fixture
def ipshell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real IPython ``InteractiveShell`` in this process: history in memory, fresh per test.

    For unit tests of the IPython layer that need no kernel (no comms, no display
    front end); kernel behaviour is tested in ``tests/kernel``.
    """
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance(config=config)
    try:
        yield shell
    finally:
        if "glm_magic" in shell.extension_manager.loaded:
            shell.extension_manager.unload_extension("glm_magic")
        shell.history_manager.end_session()
        InteractiveShell.clear_instance()
