"""Fixtures for the peer tests: one LiteLLM proxy per session, one kernel per module.

The proxy comes from ``.peer-venv`` (``scripts/peer-setup.sh`` makes it, and is run here when it
is missing). When it cannot be installed or started the peer tests are skipped with the reason,
except under CI (``CI=true``), where that is a failure: CI must not pass by skipping them.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import httpx
import pytest

from glm_magic.testing import EndpointServer, serve

from ..helpers import loaded_kernel
from ..kernel.harness import Kernel
from . import litellm_proxy
from .litellm_proxy import Proxy


@pytest.fixture(scope="session")
def endpoint() -> Iterator[EndpointServer]:
    """A bundled endpoint of the peer tests' own, as LiteLLM's upstream.

    Not the suite's shared one: the proxy can still be talking to its upstream after a test
    (a mock it could not stop), and other tests read the shared endpoint's request log.
    """
    server = serve(port=0)
    try:
        yield server
    finally:
        server.close()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"peer tests need the LiteLLM proxy under CI: {reason}", pytrace=False)
    pytest.skip(f"LiteLLM proxy unavailable ({reason}); run: bash scripts/peer-setup.sh")


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory, endpoint: EndpointServer) -> Iterator[Proxy]:
    """LiteLLM's proxy on 127.0.0.1: the mock models, and ``glm/*`` sent to the bundled endpoint."""
    litellm = litellm_proxy.installed_litellm()
    if litellm is None:
        try:
            litellm = litellm_proxy.install_litellm()
        except Exception as exc:
            _unavailable(f"scripts/peer-setup.sh: {exc}")
    workdir: Path = tmp_path_factory.mktemp("litellm-proxy")
    try:
        server = litellm_proxy.start(litellm, workdir, upstream=endpoint.base_url)
    except Exception as exc:
        _unavailable(str(exc))
    _RUNNING.append(server)
    try:
        yield server
    finally:
        _RUNNING.remove(server)
        server.stop()


#: The session's proxy once started (read by the hooks below without starting it).
_RUNNING: list[Proxy] = []


@pytest.fixture(autouse=True)
def _revive_a_crashed_proxy() -> None:
    """Start the proxy again if it crashed under an earlier test, so one crash costs one test."""
    for server in _RUNNING:
        if not server.alive():
            server.restart()


#: Crash skips allowed in one run; past this the failures stand and the run fails.
MAX_CRASH_SKIPS = 3
_CRASH_SIGNALS = (signal.SIGSEGV, signal.SIGBUS)
_crash_skips: list[str] = []


def _connection_error_to(server: Proxy, error: BaseException | None) -> bool:
    """Whether ``error`` (or one it was raised from) is a failed connection to ``server``."""
    from glm_magic import errors

    address = f"127.0.0.1:{server.port}"
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, httpx.TransportError):
            try:
                port = error.request.url.port
            except RuntimeError:  # no request attached
                port = None
            if port == server.port:
                return True
        dropped = isinstance(error, errors.StreamBrokenError) and "dropped" in str(error)
        if (isinstance(error, errors.ConnectError) or dropped) and address in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Report a test as skipped only when LiteLLM's proxy segfaulted under it, saying so.

    The proxy is third-party code; it segfaulted (signal 11) once in many suite runs here. That
    says nothing about our client, so such a test is reported as skipped with the reason,
    loudly, and the next test gets a restarted proxy. All three must hold:

    - the proxy died of SIGSEGV or SIGBUS (a SIGTERM, a SIGKILL or a plain exit still fails);
    - the test failed with a connection error to the proxy's own address (our
      ``ConnectError``/dropped ``StreamBrokenError`` naming it, or an httpx transport error to
      its port): any other failure, an assertion included, stands;
    - fewer than ``MAX_CRASH_SKIPS`` such skips happened in this run: past the cap the failure
      stands and the run fails, since a proxy that keeps crashing hides real failures.
    """
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    error = call.excinfo.value if call.excinfo is not None else None
    for server in _RUNNING:
        code = server.process.poll()
        if code is None or -code not in _CRASH_SIGNALS:
            continue
        if not _connection_error_to(server, error):
            continue
        name = signal.Signals(-code).name
        if len(_crash_skips) >= MAX_CRASH_SKIPS:
            report.longrepr = (
                f"{report.longrepr}\n\nLiteLLM's proxy crashed ({name}) again: more than "
                f"{MAX_CRASH_SKIPS} crashes this run ({', '.join(_crash_skips)}), so this failure "
                "is not skipped"
            )
            return
        _crash_skips.append(item.name)
        report.outcome = "skipped"
        report.longrepr = (
            str(item.path),
            item.location[1] or 0,
            f"LiteLLM's proxy crashed ({name}) during this test, which failed connecting to it: "
            "a third-party crash, not a client failure; the proxy is restarted for the next test "
            f"(crash skip {len(_crash_skips)} of at most {MAX_CRASH_SKIPS})",
        )
        return


@pytest.fixture
def fresh_proxy(proxy: Proxy) -> Proxy:
    """The session proxy, checked to be still running (a dead proxy fails every later test)."""
    assert proxy.alive(), f"the LiteLLM proxy died:\n{proxy.log()[-3000:]}"
    return proxy


@pytest.fixture(scope="module")
def peer_kernel(proxy: Proxy) -> Iterator[Kernel]:
    """A kernel with the extension loaded, pointed at the proxy with its master key."""
    with loaded_kernel(proxy.base_url, proxy.master_key) as k:
        yield k
