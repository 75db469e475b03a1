"""The one stream driver (:mod:`glm_magic.core.runner`) without a kernel.

Streams are real: ChatClient over loopback to the bundled endpoint. The
renderer is a recorder of the calls the driver makes (the renderers
themselves are tested in test_render.py).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest

from glm_magic.client.chat import ChatClient
from glm_magic.config import Settings
from glm_magic.core.runner import BackgroundRun, run_foreground
from glm_magic.errors import GlmError, StoppedError
from glm_magic.reply import Reply, ReplyBuilder
from glm_magic.testing import EndpointServer

MESSAGES = [{"role": "user", "content": "hello"}]


class Recorder:
    """A renderer that keeps every call; a ^C (KeyboardInterrupt) after ``stop_after`` texts."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.calls: list[str] = []
        self.texts: list[str] = []
        self.final: Reply | None = None
        self.stop_after = stop_after

    def start(self) -> None:
        self.calls.append("start")

    def progress(self, builder: ReplyBuilder) -> None:
        self.calls.append("progress")
        self.texts.append(builder.text)
        if self.stop_after is not None and sum(map(bool, self.texts)) >= self.stop_after:
            raise KeyboardInterrupt

    def tick(self) -> None:
        self.calls.append("tick")

    def finish(self, reply: Reply) -> None:
        self.calls.append("finish")
        self.final = reply


@pytest.fixture
def client(fresh_endpoint: EndpointServer) -> Any:
    settings = Settings(base_url=fresh_endpoint.base_url, retry_max_wait=0.05, max_retries=0)
    c = ChatClient(settings)
    yield c
    c.close()


def stream(client: ChatClient, model: str) -> Any:
    return client.stream(MESSAGES, client.settings.with_changes(model=model))


def test_foreground_start_progress_then_one_finish_with_the_whole_reply(client: Any) -> None:
    rec = Recorder()
    reply = run_foreground(stream(client, "glm-4.7+tokens=40+delay=0.002"), rec, "glm-4.7")
    assert rec.calls[0] == "start" and rec.calls.count("finish") == 1 and rec.calls[-1] == "finish"
    assert rec.texts[-1] and all(b.startswith(a) for a, b in itertools.pairwise(rec.texts))
    assert rec.final is reply and reply.complete and reply.text.startswith(rec.texts[-1])
    assert reply.usage is not None and reply.request_id


def test_foreground_ticks_while_no_event_arrives(client: Any) -> None:
    rec = Recorder()
    run_foreground(stream(client, "glm-4.7+tokens=5+first_byte_delay=0.5"), rec, "glm-4.7")
    assert "tick" in rec.calls[: rec.calls.index("progress")]


def test_foreground_failure_shows_then_raises_the_partial(
    client: Any, fresh_endpoint: EndpointServer
) -> None:
    rec = Recorder()
    with pytest.raises(GlmError) as caught:
        run_foreground(stream(client, "glm-4.7+tokens=40+fault=cut"), rec, "glm-4.7")
    partial = caught.value.partial
    assert partial is not None and partial is rec.final and rec.calls.count("finish") == 1
    assert partial.text and partial.error and not partial.complete


def test_an_interrupt_closes_the_connection_and_keeps_the_partial(
    client: Any, fresh_endpoint: EndpointServer
) -> None:
    rec = Recorder(stop_after=2)
    with pytest.raises(StoppedError) as caught:
        run_foreground(stream(client, "glm-4.7+tokens=2000+delay=0.01"), rec, "glm-4.7")
    partial = caught.value.partial
    assert partial is not None and partial is rec.final
    assert partial.text.startswith(rec.texts[-1]) and partial.text and not partial.complete
    assert fresh_endpoint.wait_for_outcome(0, 10) == "client_closed"


class Done:
    """``on_update``/``on_done`` callbacks that record the thread and wait for the end."""

    def __init__(self) -> None:
        self.updates: list[tuple[str, str]] = []
        self.done: list[tuple[Reply, Exception | None, str]] = []
        self.event = threading.Event()

    def on_update(self, builder: ReplyBuilder) -> None:
        self.updates.append((builder.text, threading.current_thread().name))

    def on_done(self, reply: Reply, error: Exception | None) -> None:
        self.done.append((reply, error, threading.current_thread().name))
        self.event.set()


def test_background_updates_are_coalesced_and_done_comes_once(client: Any) -> None:
    rec = Done()
    run = BackgroundRun(
        stream(client, "glm-4.7+tokens=60+delay=0.002"),
        "glm-4.7",
        rec.on_update,
        rec.on_done,
        interval=600,  # far longer than the reply: only the first event is shown before done
    ).start()
    assert rec.event.wait(30)
    run.thread.join(10)
    assert not run.running
    assert len(rec.updates) == 1 and len(rec.done) == 1
    reply, error, thread = rec.done[0]
    assert error is None and reply.complete and reply is run.reply
    assert thread == run.thread.name == rec.updates[0][1] != threading.current_thread().name


def test_background_stop_closes_the_connection_and_keeps_the_partial(
    client: Any, fresh_endpoint: EndpointServer
) -> None:
    rec = Done()
    first = threading.Event()
    run = BackgroundRun(
        stream(client, "glm-4.7+tokens=2000+delay=0.01"),
        "glm-4.7",
        lambda b: (rec.on_update(b), b.text and first.set()),  # type: ignore[func-returns-value]
        rec.on_done,
        interval=0.05,
    ).start()
    assert first.wait(30)
    run.stop()
    assert rec.event.wait(30)
    reply, error, _ = rec.done[0]
    assert isinstance(error, StoppedError) and error.partial is reply
    assert reply.text and not reply.complete and reply.error.startswith("Stopped")
    assert fresh_endpoint.wait_for_outcome(0, 10) == "client_closed"
