"""The peer tests' crash hook: which failures it reports as skipped, and its cap.

The hook is driven directly with a real crashed process standing in for the proxy and real
errors from our client, so no LiteLLM is needed.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from glm_magic import errors
from glm_magic.client.chat import ChatClient
from glm_magic.config import Settings

from . import conftest as peer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _died_of(sig: signal.Signals) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    process.send_signal(sig)
    process.wait(10)
    return process


def _connect_error(port: int) -> errors.GlmError:
    s = Settings(base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    with ChatClient(s) as client, pytest.raises(errors.ConnectError) as info:
        client.complete([{"role": "user", "content": "hi"}])
    return info.value


@pytest.fixture
def port(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(peer, "_crash_skips", [])
    monkeypatch.setattr(peer, "_RUNNING", [])
    return _free_port()


def outcome_of(server: Any, error: BaseException) -> str:
    """Run the hook on a failed call of a test while ``server`` is the proxy; the outcome."""
    peer._RUNNING[:] = [server]
    report = pytest.TestReport(
        nodeid="tests/peer/test_x.py::test_x",
        location=("tests/peer/test_x.py", 0, "test_x"),
        keywords={},
        outcome="failed",
        longrepr="the failure",
        when="call",
    )
    item = SimpleNamespace(name="test_x", path="tests/peer/test_x.py", location=("", 0, ""))
    try:
        raise error
    except BaseException:  # as pytest records a failure: with its traceback
        call = SimpleNamespace(excinfo=pytest.ExceptionInfo.from_current())
    wrapper = peer.pytest_runtest_makereport(item, call)  # type: ignore[arg-type]
    try:
        next(wrapper)
        with pytest.raises(StopIteration):
            wrapper.send(SimpleNamespace(get_result=lambda: report))
    finally:
        # The hook also reports this very test: with the crashed stand-in gone, a failure
        # here can never be turned into a skip.
        peer._RUNNING.clear()
    return str(report.outcome)


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGBUS])
def test_a_crash_under_a_connection_error_to_it_is_skipped(port: int, sig: signal.Signals) -> None:
    proxy = SimpleNamespace(process=_died_of(sig), port=port)
    assert outcome_of(proxy, _connect_error(port)) == "skipped"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_other_signals_still_fail(port: int, sig: signal.Signals) -> None:
    proxy = SimpleNamespace(process=_died_of(sig), port=port)
    assert outcome_of(proxy, _connect_error(port)) == "failed"


def test_other_failures_still_fail(port: int) -> None:
    proxy = SimpleNamespace(process=_died_of(signal.SIGSEGV), port=port)
    assert outcome_of(proxy, AssertionError("a genuine failure")) == "failed"
    assert outcome_of(proxy, _connect_error(_free_port())) == "failed", "another address"


def test_past_the_cap_the_run_fails(port: int) -> None:
    proxy = SimpleNamespace(process=_died_of(signal.SIGSEGV), port=port)
    error = _connect_error(port)
    outcomes = [outcome_of(proxy, error) for _ in range(peer.MAX_CRASH_SKIPS + 1)]
    assert outcomes == ["skipped"] * peer.MAX_CRASH_SKIPS + ["failed"]
    assert peer.MAX_CRASH_SKIPS <= 3
