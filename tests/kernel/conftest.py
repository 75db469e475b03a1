"""Fixtures for real-kernel tests: one kernel per module pointed at the bundled endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from glm_magic.testing import EndpointServer

from ..conftest import FAKE_KEY
from .harness import Kernel, kernel_env


@pytest.fixture(scope="module")
def kernel(endpoint: EndpointServer) -> Iterator[Kernel]:
    """A kernel with the extension loaded, GLM_BASE_URL on the endpoint and a fake key."""
    k = Kernel(kernel_env(endpoint.base_url, RUNAPI_KEY=FAKE_KEY))
    try:
        ex = k.run("%load_ext glm_magic")
        assert ex.status == "ok", ex.messages
        yield k
    finally:
        k.shutdown()
