"""Fixtures for real-browser tests: one Jupyter server per frontend, one Chromium.

Every test runs in JupyterLab 4 and in Notebook 7 (``frontend`` parameter).
Servers and the browser live for the whole session (starting them is most of
the cost); each test gets a fresh browser context (clipboard permission
granted) and its own notebook, and its kernels are shut down afterwards.
Without Chromium or the Python packages the tests are skipped locally with
the reason, and fail under CI, where ``scripts/browser-setup.sh`` must have run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from glm_magic.testing import EndpointServer

from .jupyter import CHROMIUM, CHROMIUM_ARGS, JupyterServer, jupyter_server, missing_requirements

FRONTENDS = ("lab", "notebook")
#: The notebook bridge's extension name (labextension/package.json).
BRIDGE = "glm-magic-bridge"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def _requirements() -> None:
    why = missing_requirements()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run: {why}")
        pytest.skip(why)


@pytest.fixture(scope="session")
def _servers(_requirements: None, endpoint: EndpointServer) -> Iterator[dict[str, Any]]:
    # Started lazily, at most one per frontend, and kept for the session.
    started: dict[str, Any] = {}
    managers: list[Any] = []
    try:
        yield {"started": started, "managers": managers, "endpoint": endpoint}
    finally:
        for manager in reversed(managers):
            manager.__exit__(None, None, None)


@pytest.fixture(params=FRONTENDS)
def server(request: pytest.FixtureRequest, _servers: dict[str, Any]) -> Iterator[JupyterServer]:
    """A running JupyterLab 4 (``lab``) or Notebook 7 (``notebook``) server.

    Tests marked ``no_bridge`` get a server where the glm-magic bridge extension
    is disabled (``jupyter labextension disable``): what users without it see.
    """
    app = request.param
    off = request.node.get_closest_marker("no_bridge") is not None
    key = f"{app}-no-bridge" if off else app
    started = _servers["started"]
    if key not in started:
        manager = jupyter_server(
            app,
            {"GLM_BASE_URL": _servers["endpoint"].base_url},
            disable=(BRIDGE,) if off else (),
        )
        started[key] = manager.__enter__()
        _servers["managers"].append(manager)
    srv: JupyterServer = started[key]
    try:
        yield srv
    finally:
        srv.shutdown_kernels()


@pytest.fixture(scope="session")
def browser(_requirements: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, server: JupyterServer) -> Iterator[Any]:
    """A fresh page (clipboard readable by the test) on ``server``."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()
