"""Our client and the magic against LiteLLM's proxy: same text, usage, errors and stops as ours.

The proxy (see :mod:`.litellm_proxy`) serves mock models, so every reply and failure is known in
advance. Where the proxy behaves differently from the bundled endpoint, the test states what the
client must make of it; the comments below list the differences the client absorbs.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest

from glm_magic import errors
from glm_magic.client.chat import ChatClient, ReplyStream
from glm_magic.config import Secret, Settings
from glm_magic.events import Finish, TextDelta, Usage

from ..helpers import no_retries
from ..kernel.harness import Kernel
from .litellm_proxy import (
    HUNG_UP,
    LONG_REPLY,
    MODELS,
    REPLY,
    REPLY_CODE,
    SLOW_DELAY,
    UPSTREAM_PREFIX,
    Proxy,
)

pytestmark = pytest.mark.peer

MESSAGES = [{"role": "user", "content": "Say hello to the notebook"}]

# Differences from the bundled endpoint that the client absorbs, each checked below:
# - LiteLLM (like OpenAI) puts usage in a stream only when asked: the client sends
#   stream_options.include_usage to hosts other than Z.ai, BigModel and RunAPI.
# - LiteLLM answers an upstream timeout with HTTP 408: the client maps 408/504 to TimeoutError.
# - LiteLLM sends no header before the first chunk: the client records the socket as it connects,
#   so a stop during a slow first byte still closes the connection at once.


def settings(proxy: Proxy, model: str = "peer-ok", **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": proxy.base_url,
        "model": model,
        "api_key": Secret(proxy.master_key),
        "retry_max_wait": 0.05,
        "read_timeout": 10.0,
        "max_retries": 0,
    }
    values.update(kw)
    return Settings(**values)


def stream_events(s: Settings) -> tuple[list[object], ReplyStream]:
    with ChatClient(s) as client:
        stream = client.stream(MESSAGES)
        return list(stream), stream


def new_requests(proxy: Proxy, before: int, expected: int) -> list[int]:
    """Statuses of the chat requests the call that just returned made (logged after ``before``).

    A probe request follows it: every request of the finished call was answered before the
    call returned, so once the probe is in the log they all are, and one too many would show.
    """
    with ChatClient(settings(proxy)) as client:
        assert client.complete(MESSAGES).text == REPLY
    statuses = proxy.wait_for_chat_count(before + expected + 1, timeout=30)
    assert statuses[-1] == 200, statuses
    return statuses[before:-1]


# -- streams, usage, text -------------------------------------------------------------------------


def test_stream_equals_complete_equals_the_configured_text(fresh_proxy: Proxy) -> None:
    events, stream = stream_events(settings(fresh_proxy))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 10, "really streamed in pieces (LiteLLM sends 3 characters a chunk)"
    streamed = "".join(d.text for d in deltas)
    assert streamed == REPLY  # multi-byte characters cut across chunks come out whole
    assert events.count(Finish("stop")) == 1
    reply = stream.reply
    assert reply.text == REPLY and reply.complete and reply.finish_reason == "stop"
    assert reply.request_id and reply.request_id.startswith("chatcmpl-")
    assert reply.code == REPLY_CODE

    with ChatClient(settings(fresh_proxy)) as client:
        whole = client.complete(MESSAGES)
    assert whole.text == streamed == REPLY
    assert whole.finish_reason == "stop" and whole.complete
    assert whole.request_id and whole.request_id.startswith("chatcmpl-")
    # LiteLLM's mock usage: 10 prompt and 20 completion tokens.
    assert whole.usage is not None
    assert (whole.usage.prompt_tokens, whole.usage.completion_tokens) == (10, 20)
    assert whole.usage.total_tokens == 30


def test_stream_reports_usage(fresh_proxy: Proxy) -> None:
    events, stream = stream_events(settings(fresh_proxy))
    usages = [e for e in events if isinstance(e, Usage)]
    # Asked for, LiteLLM counts the mock's tokens itself (not the 10/20 of a whole reply).
    assert len(usages) == 1
    assert usages[0].prompt_tokens > 0 and usages[0].completion_tokens > 0
    assert stream.reply.usage == usages[0] and stream.reply.text == REPLY


def test_models_are_listed(fresh_proxy: Proxy) -> None:
    with ChatClient(settings(fresh_proxy)) as client:
        listed = client.list_models()
    assert set(MODELS) <= set(listed)
    # The glm/* wildcard route is listed as every OpenAI model LiteLLM knows, under glm/.
    assert all(m in MODELS or m.startswith(UPSTREAM_PREFIX) for m in listed)


def test_slow_first_byte_within_the_read_timeout(fresh_proxy: Proxy) -> None:
    started = time.monotonic()
    _, stream = stream_events(settings(fresh_proxy, "peer-slow", read_timeout=SLOW_DELAY + 5))
    assert time.monotonic() - started >= SLOW_DELAY
    assert stream.reply.text == REPLY and stream.reply.complete


# -- errors: kind, one line, the server's words, no key -------------------------------------------

ERRORS = [
    ("peer-429", errors.RateLimitError, 429, "this is a mock rate limit error"),
    ("peer-500", errors.ServerError, 500, "this is a mock internal server error"),
    ("peer-context", errors.ContextTooLongError, 400, "mock context window exceeded error"),
    ("peer-529", errors.ServerError, 529, "This is a mock error raised mid-stream"),
]


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "complete"])
@pytest.mark.parametrize(("model", "kind", "status", "words"), ERRORS)
def test_http_errors_map_to_the_same_kinds(
    fresh_proxy: Proxy, model: str, kind: type, status: int, words: str, streaming: bool
) -> None:
    before = len(fresh_proxy.chat_statuses())
    with ChatClient(settings(fresh_proxy, model)) as client, pytest.raises(kind) as info:
        if streaming:
            list(client.stream(MESSAGES))
        else:
            client.complete(MESSAGES)
    err = info.value
    assert type(err) is kind
    line = err.one_line()
    assert "\n" not in line and line.startswith(f"{err.label}: ")
    assert words in err.server_message and words in line  # the server's own words are kept
    assert err.status == status
    assert fresh_proxy.master_key not in line + err.message + err.server_message
    assert err.partial is not None and err.partial.text == "" and not err.partial.complete
    assert new_requests(fresh_proxy, before, 1) == [status]  # max_retries=0: one request


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "complete"])
def test_proxy_side_timeout_is_a_timeout(fresh_proxy: Proxy, streaming: bool) -> None:
    with (
        ChatClient(settings(fresh_proxy, "peer-timeout")) as client,
        pytest.raises(errors.GlmError) as info,
    ):
        if streaming:
            list(client.stream(MESSAGES))
        else:
            client.complete(MESSAGES)
    err = info.value
    assert err.retryable and "\n" not in err.one_line()
    assert "mock timeout error" in err.one_line()
    assert isinstance(err, errors.TimeoutError), err.one_line()


def test_slow_first_byte_beyond_the_read_timeout_is_a_timeout(fresh_proxy: Proxy) -> None:
    hung_up = fresh_proxy.log().count(HUNG_UP)
    with pytest.raises(errors.TimeoutError) as info:
        stream_events(settings(fresh_proxy, "peer-slow", read_timeout=0.5))
    line = info.value.one_line()
    assert "\n" not in line and "read_timeout" in line
    # The proxy saw the client leave before its first chunk (so the client gave up before the
    # slow first byte, without timing it here) and cancelled the upstream call (the mock
    # notices when its delay is over).
    assert fresh_proxy.wait_for_log(HUNG_UP, hung_up + 1, SLOW_DELAY + 3) == hung_up + 1


def test_unknown_model_is_a_bad_request_naming_it(fresh_proxy: Proxy) -> None:
    # With a wildcard route configured LiteLLM says "There are no healthy deployments for this
    # model" (without one: "Invalid model name passed in model=..."); neither names the model as
    # unknown in words the client could trust, so it stays a plain bad request.
    with (
        ChatClient(settings(fresh_proxy, "no-such-model")) as client,
        pytest.raises(errors.BadRequestError) as info,
    ):
        client.complete(MESSAGES)
    line = info.value.one_line()
    assert info.value.status == 400 and "no-such-model" in line and "\n" not in line


def test_a_wrong_key_is_refused_and_never_shown(fresh_proxy: Proxy) -> None:
    wrong = "sk-wrong-" + "5" * 24
    s = settings(fresh_proxy, api_key=Secret(wrong))
    with ChatClient(s) as client, pytest.raises(errors.APIError) as info:
        client.complete(MESSAGES)
    err = info.value
    # Without a database LiteLLM cannot look a non-master key up: 400 "No connected db."
    # (with one it is a 401). Either way: refused, one line, no key.
    assert err.status in (400, 401)
    assert "\n" not in err.one_line()
    for secret in (wrong, fresh_proxy.master_key):
        assert secret not in err.one_line() + err.message + err.server_message


# -- retries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "kind", "status"),
    [("peer-429", errors.RateLimitError, 429), ("peer-500", errors.ServerError, 500)],
)
@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "complete"])
def test_retryable_errors_are_retried_a_bounded_number_of_times(
    fresh_proxy: Proxy, model: str, kind: type, status: int, streaming: bool
) -> None:
    before = len(fresh_proxy.chat_statuses())
    s = settings(fresh_proxy, model, max_retries=2)
    with ChatClient(s) as client, pytest.raises(kind):
        if streaming:
            stream = client.stream(MESSAGES)
            try:
                list(stream)
            finally:
                assert stream.attempts == 3
        else:
            client.complete(MESSAGES)
    # The proxy's own access log: 1 try + 2 retries, and not one more.
    assert new_requests(fresh_proxy, before, 3) == [status] * 3


def test_context_errors_are_not_retried(fresh_proxy: Proxy) -> None:
    before = len(fresh_proxy.chat_statuses())
    s = settings(fresh_proxy, "peer-context", max_retries=3)
    with ChatClient(s) as client, pytest.raises(errors.ContextTooLongError):
        list(client.stream(MESSAGES))
    assert new_requests(fresh_proxy, before, 1) == [400]


# -- stopping -----------------------------------------------------------------------------------


def _read_in_thread(stream: ReplyStream, pause_after_first: threading.Event | None = None) -> Any:
    """Iterate ``stream`` in a thread; return (thread, first-text event, result dict)."""
    first = threading.Event()
    result: dict[str, Any] = {}

    def read() -> None:
        try:
            for ev in stream:
                if isinstance(ev, TextDelta) and not first.is_set():
                    first.set()
                    if pause_after_first is not None:
                        pause_after_first.wait(10)
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, first, result


def test_close_mid_stream_ends_with_stopped_and_keeps_the_text(fresh_proxy: Proxy) -> None:
    client = ChatClient(settings(fresh_proxy, "peer-long"))
    try:
        stream = client.stream(MESSAGES)
        closed = threading.Event()
        # The reader holds after the first delta until close() has run: the stop is mid-stream
        # however fast the proxy is.
        thread, first, result = _read_in_thread(stream, pause_after_first=closed)
        assert first.wait(30), result
        stream.close()
        closed.set()
        thread.join(10)
        assert not thread.is_alive()
        error = result.get("error")
        assert isinstance(error, errors.StoppedError), error
        partial = error.partial
        assert partial is not None and not partial.complete
        assert partial.text and LONG_REPLY.startswith(partial.text)
        assert len(partial.text) < len(LONG_REPLY)
        assert stream.reply.text == partial.text
    finally:
        client.close()
    # The proxy took the hang-up in its stride.
    _, again = stream_events(settings(fresh_proxy))
    assert again.reply.text == REPLY


def test_close_during_a_slow_first_byte_is_immediate(fresh_proxy: Proxy) -> None:
    hung_up = fresh_proxy.log().count(HUNG_UP)
    with ChatClient(settings(fresh_proxy, "peer-slow")) as client:
        stream = client.stream(MESSAGES)
        thread, first, result = _read_in_thread(stream)
        time.sleep(0.3)  # let the request reach the proxy (not a measurement)
        stream.close()
        thread.join(SLOW_DELAY + 5)
    assert isinstance(result.get("error"), errors.StoppedError), result
    # Ended at once, not when the first byte came: no text was read, and the proxy saw the
    # hang-up before it sent anything (so it cancelled the upstream call); a close that waited
    # for the first byte would have let the proxy send it, and it would log no hang-up.
    assert not first.is_set() and result["error"].partial.text == ""
    assert fresh_proxy.wait_for_log(HUNG_UP, hung_up + 1, SLOW_DELAY + 3) == hung_up + 1


# -- the magic in a real kernel -------------------------------------------------------------------


@pytest.fixture
def kernel(peer_kernel: Kernel, fresh_proxy: Proxy) -> Kernel:
    """The module's kernel, with the proxy checked to be alive."""
    return peer_kernel


def test_magic_streams_the_reply(kernel: Kernel) -> None:
    ex = kernel.run("%%glm --new -o peer_reply -m peer-ok\nSay hello")
    assert ex.status == "ok", ex.messages
    assert len(ex.of("display_data")) == 1, "one display, then updates of it"
    assert ex.updates, "the reply streamed into the display"
    assert ex.answer == REPLY.rstrip()
    assert "def add(a, b):" in ex.answer and 'class="glm-code"' in ex.html
    assert "peer-ok" in ex.footer
    meta = ex.updates[-1]["content"]["metadata"]["glm_magic"]
    assert meta["complete"] is True and meta["finish_reason"] == "stop"
    check = kernel.run(
        f"print(peer_reply.text == {REPLY!r}, peer_reply.code == {REPLY_CODE!r},"
        " peer_reply.complete)"
    )
    assert check.stdout.split() == ["True", "True", "True"]

    whole = kernel.run("%%glm --new --no-stream -m peer-ok\nSay hello")
    assert whole.status == "ok", whole.messages
    assert whole.answer == ex.answer
    assert "10 in / 20 out" in whole.footer


def test_magic_footer_shows_tokens_when_streaming(kernel: Kernel) -> None:
    ex = kernel.run("%%glm --new -m peer-ok\nSay hello")
    assert ex.status == "ok", ex.messages
    assert re.search(r"\d+ in / \d+ out", ex.footer), ex.footer


@pytest.mark.parametrize(
    ("model", "label", "words"),
    [
        ("peer-429", "Rate limited", "this is a mock rate limit error"),
        ("peer-500", "Server error", "this is a mock internal server error"),
        ("peer-context", "Context too long", "mock context window exceeded error"),
    ],
)
def test_magic_errors_are_one_line(
    kernel: Kernel, proxy: Proxy, model: str, label: str, words: str
) -> None:
    with no_retries(kernel):
        ex = kernel.run(f"%%glm --new -o failed -m {model}\nhello")
    assert ex.status == "error"
    assert ex.error is not None
    tb = ex.error["traceback"]
    assert len(tb) == 1 and "\n" not in tb[0], tb
    assert label in tb[0] and words in tb[0]
    assert proxy.master_key not in ex.everything()
    check = kernel.run("print(failed.complete, failed.text == '', bool(failed.error))")
    assert check.stdout.split() == ["False", "True", "True"]


def test_magic_interrupt_keeps_the_partial_reply(kernel: Kernel, proxy: Proxy) -> None:
    msg_id = kernel.start("%%glm --new -o stopped -m peer-long\nlong please")

    def has_text(msg: dict[str, Any]) -> bool:
        return msg["msg_type"] == "update_display_data" and "Line 0000" in str(msg["content"])

    early = kernel.wait_for(msg_id, has_text)
    kernel.km.interrupt_kernel()
    ex = kernel.collect(msg_id)
    ex.messages[:0] = early
    assert ex.status == "error"
    assert ex.error is not None and len(ex.error["traceback"]) == 1
    assert "Stopped" in ex.error["traceback"][0]
    shown = ex.answer
    assert "incomplete" in ex.footer  # the error itself is the cell's one line, not repeated
    assert shown and LONG_REPLY.startswith(shown) and len(shown) < len(LONG_REPLY)
    check = kernel.run(
        f"print(len(stopped.text) > 0, stopped.complete, stopped.text.rstrip() == {shown!r})"
    )
    assert check.stdout.split() == ["True", "False", "True"]
    # The kernel and the proxy both carry on.
    again = kernel.run("%%glm --new -m peer-ok\nstill there?")
    assert again.status == "ok" and again.answer == REPLY.rstrip()


def test_magic_shows_glm_thinking_passed_on_by_the_proxy(kernel: Kernel) -> None:
    # Thinking asked for with the endpoint's directive: LiteLLM's openai/ route refuses the
    # `thinking` field itself (see the next test).
    ex = kernel.run(f"%%glm --new -o thought -m {UPSTREAM_PREFIX}glm-4.7+think=1\nhello")
    assert ex.status == "ok", ex.messages
    assert '<details class="glm-thinking"><summary><em>Thinking (' in ex.html
    check = kernel.run("print(bool(thought.reasoning), thought.reasoning in thought.text)")
    assert check.stdout.split() == ["True", "False"]


def test_magic_think_refused_by_the_proxy_is_one_bad_request_line(kernel: Kernel) -> None:
    with no_retries(kernel):
        ex = kernel.run(f"%%glm --new --think -m {UPSTREAM_PREFIX}glm-4.7\nhello")
    assert ex.status == "error" and ex.error is not None
    tb = ex.error["traceback"]
    assert len(tb) == 1 and "thinking" in tb[0] and "drop_params" in tb[0], tb
    assert "Bad request" in tb[0], tb
