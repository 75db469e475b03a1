"""Kept-alive connections, Stop on a reused connection, and the per-endpoint in-flight limit.

Real HTTP and HTTPS (a throwaway ``trustme`` CA) against the bundled endpoint,
which counts the connections it accepts and can refuse a second request in
flight with Z.ai's 1302.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from glm_magic import errors
from glm_magic.client.chat import ChatClient, ReplyStream
from glm_magic.client.limit import slots_for
from glm_magic.config import Settings
from glm_magic.events import TextDelta, Waiting
from glm_magic.reply import WAITING_NOTE
from glm_magic.testing import EndpointServer, serve

MESSAGES = [{"role": "user", "content": "hello"}]
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@pytest.fixture(params=["plain", "tls"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def srv(
    scheme: str, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> Iterator[tuple[EndpointServer, ssl.SSLContext | None]]:
    server = serve(ssl_context=tls[0] if scheme == "tls" else None)
    try:
        yield server, tls[1] if scheme == "tls" else None
    finally:
        server.close()


def _settings(server: EndpointServer, model: str = "glm-4.7+tokens=8", **kw: object) -> Settings:
    values: dict[str, object] = {
        "base_url": server.base_url,
        "model": model,
        "retry_max_wait": 0.05,
        "read_timeout": 30.0,
    }
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


def _wait(what: str, done: object) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not done():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def _reply(client: ChatClient, settings: Settings) -> str:
    stream = client.stream(MESSAGES, settings)
    for _ in stream:
        pass
    return stream.reply.text


def test_replies_reuse_one_connection(srv: tuple[EndpointServer, ssl.SSLContext | None]) -> None:
    server, ctx = srv
    settings = _settings(server)
    with ChatClient(settings, ssl_context=ctx) as client:
        assert client.pooled
        texts = [_reply(client, settings) for _ in range(4)]
        whole = client.complete(MESSAGES, settings)  # whole replies share the pool
    assert all(texts) and whole.text == texts[0]
    assert len(server.requests) == 5
    assert server.accepted == 1


def _stop_when(stream: ReplyStream, ready: object) -> threading.Thread:
    def stopper() -> None:
        _wait("the moment to stop", ready)
        stream.close()

    thread = threading.Thread(target=stopper, daemon=True)
    thread.start()
    return thread


def _iterate(stream: ReplyStream) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def run() -> None:
        try:
            for _ in stream:
                pass
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, raised


@pytest.mark.parametrize("when", ["before the first byte", "mid-stream"])
def test_stop_on_a_reused_connection_closes_it(
    srv: tuple[EndpointServer, ssl.SSLContext | None], when: str
) -> None:
    server, ctx = srv
    settings = _settings(server, read_timeout=600.0)
    with ChatClient(settings, ssl_context=ctx) as client:
        _reply(client, settings)
        assert server.accepted == 1
        if when == "before the first byte":
            # No status line before the delay (LiteLLM sends no header before the first token).
            slow = settings.with_changes(model="glm-4.7+first_byte_delay=600")
            stream = client.stream(MESSAGES, slow)
            ready = lambda: len(server.requests) == 2  # noqa: E731
        else:
            slow = settings.with_changes(model="glm-4.7+tokens=400+delay=1")
            stream = client.stream(MESSAGES, slow)
            ready = lambda: stream.builder.chars > 0  # noqa: E731
        reader, raised = _iterate(stream)
        _wait("the moment to stop", ready)
        stream.close()
        # The server sees the disconnect at once (its reply would take minutes), on the
        # connection the first reply used.
        assert server.wait_for_outcome(1, TIMEOUT) == "client_closed"
        reader.join(TIMEOUT)
        assert len(raised) == 1 and isinstance(raised[0], errors.StoppedError)
        assert server.accepted == 1
        assert _reply(client, settings)  # the next reply works, on a fresh connection
        assert server.accepted == 2
        # The server records "completed" after its last write, which can be after the client
        # has read [DONE]: wait for it rather than read it at once.
        assert server.wait_for_outcome(2, TIMEOUT) == "completed"


def test_a_stopped_connection_is_never_reused(
    srv: tuple[EndpointServer, ssl.SSLContext | None],
) -> None:
    server, ctx = srv
    settings = _settings(server)
    with ChatClient(settings, ssl_context=ctx) as client:
        stream = client.stream(
            MESSAGES, settings.with_changes(model="glm-4.7+tokens=400+delay=0.05")
        )
        stopper = _stop_when(stream, lambda: stream.builder.chars > 0)
        with pytest.raises(errors.StoppedError):
            for _ in stream:
                pass
        stopper.join(TIMEOUT)
        for _ in range(3):
            assert _reply(client, settings)
    assert server.accepted == 2  # the stopped one, then one kept alive for the next three


def _background(client: ChatClient, settings: Settings) -> tuple[ReplyStream, threading.Thread]:
    stream = client.stream(MESSAGES, settings)

    def drain() -> None:
        try:
            for _ in stream:
                pass
        except errors.GlmError:
            pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    return stream, thread


def test_a_request_over_the_limit_waits_its_turn(
    srv: tuple[EndpointServer, ssl.SSLContext | None],
) -> None:
    server, ctx = srv
    settings = _settings(server, max_concurrent=1)
    slow = settings.with_changes(model="glm-4.7+tokens=40+delay=0.02")
    with ChatClient(settings, ssl_context=ctx) as first, ChatClient(settings, ssl_context=ctx) as b:
        running, thread = _background(first, slow)
        _wait("the first reply to start", lambda: running.builder.chars > 0)
        stream = b.stream(MESSAGES, settings)
        events = iter(stream)
        assert next(events) == Waiting(True)
        assert WAITING_NOTE in stream.builder.status()
        assert len(server.requests) == 1  # nothing sent while waiting
        rest = list(events)
        assert rest[0] == Waiting(False)
        assert any(isinstance(e, TextDelta) for e in rest)
        thread.join(TIMEOUT)
        assert running.reply.complete  # the one it waited for had finished first
        assert server.peak_in_flight == 1
        assert stream.reply.complete and WAITING_NOTE not in stream.builder.status()


def test_stop_while_waiting_sends_nothing(
    srv: tuple[EndpointServer, ssl.SSLContext | None],
) -> None:
    server, ctx = srv
    settings = _settings(server, max_concurrent=1)
    slow = settings.with_changes(model="glm-4.7+tokens=400+delay=0.05")
    with ChatClient(settings, ssl_context=ctx) as client:
        running, thread = _background(client, slow)
        _wait("the first reply to start", lambda: running.builder.chars > 0)
        stream = client.stream(MESSAGES, settings)
        events = iter(stream)
        assert next(events) == Waiting(True)
        stopper = _stop_when(stream, lambda: True)
        with pytest.raises(errors.StoppedError, match="waiting"):
            next(events)
        stopper.join(TIMEOUT)
        running.close()
        thread.join(TIMEOUT)
    assert len(server.requests) == 1
    assert slots_for(settings.base_url).in_flight == 0  # every slot was given back


def test_1302_lowers_the_limit_until_a_reply_succeeds(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    # The endpoint takes one request at a time; the client believes it may send two.
    with serve(max_in_flight=1) as server:
        settings = _settings(server, max_concurrent=2, retry_max_wait=0.2)
        slow = settings.with_changes(model="glm-4.7+tokens=40+delay=0.02")
        with ChatClient(settings) as client:
            running, thread = _background(client, slow)
            _wait("the first reply to start", lambda: running.builder.chars > 0)
            stream = client.stream(MESSAGES, settings)
            events = list(stream)
            thread.join(TIMEOUT)
        slots = slots_for(settings.base_url)
        refused = [r for r in server.requests if r.status == 429]
        assert len(refused) == 1  # one 1302, then the retry waited for the running reply
        assert Waiting(True) in events and stream.reply.complete
        assert stream.attempts == 2
        assert slots.lowered is None  # the success restored the configured limit
        assert server.peak_in_flight == 1


def test_a_background_reply_shows_it_waits_and_stop_cancels_it() -> None:
    # The panel and the buttons run replies through Session.start: the same slots.
    from glm_magic.core.session import Session

    with serve() as server:
        session = Session()
        settings = session.settings(base_url=server.base_url, model="glm-4.7", max_concurrent=1)
        slow = settings.with_changes(model="glm-4.7+tokens=400+delay=0.05")
        statuses: list[str] = []
        finished: list[Exception | None] = []
        first = session.start(session.prepare("first", slow), lambda b: None, lambda r, e: None)
        _wait("the first request to arrive", lambda: len(server.requests) == 1)
        second = session.start(
            session.prepare("second", settings),
            lambda b: statuses.append(b.status()),
            lambda r, e: finished.append(e),
        )
        _wait("the waiting note", lambda: any(WAITING_NOTE in s for s in statuses))
        second.stop()  # the panel's Stop while it waits
        _wait("the second reply to end", lambda: bool(finished))
        assert isinstance(finished[0], errors.StoppedError)
        first.stop()
        first.thread.join(TIMEOUT)
        session.close()
        assert len(server.requests) == 1  # the waiting one was never sent


def test_behind_an_environment_proxy_streams_still_stop_before_the_first_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # httpx routes through $HTTPS_PROXY only with its own transports: glm-magic then uses
    # them, and each stream's socket is found as it connects (a fresh connection each).
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # this endpoint is reached directly
    with serve() as server:
        settings = _settings(server, model="glm-4.7+first_byte_delay=600", read_timeout=600.0)
        with ChatClient(settings) as client:
            assert not client.pooled
            stream = client.stream(MESSAGES, settings)
            reader, raised = _iterate(stream)
            _wait("the request", lambda: len(server.requests) == 1)
            stream.close()
            assert server.wait_for_outcome(0, TIMEOUT) == "client_closed"
            reader.join(TIMEOUT)
            assert len(raised) == 1 and isinstance(raised[0], errors.StoppedError)
