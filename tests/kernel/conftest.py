"""Fixtures for real-kernel tests: one kernel per module pointed at the bundled endpoint."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from glm_magic.testing import EndpointServer

from ..conftest import FAKE_KEY
from ..helpers import loaded_kernel
from .harness import Kernel


@pytest.fixture(scope="module")
def kernel(endpoint: EndpointServer) -> Iterator[Kernel]:
    """A kernel with the extension loaded, GLM_BASE_URL on the endpoint and a fake key."""
    with loaded_kernel(endpoint.base_url, FAKE_KEY) as k:
        yield k
