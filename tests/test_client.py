"""The HTTP client over real HTTP against the bundled endpoint: events, errors, retries, cancel."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from glm_magic import errors
from glm_magic.client.chat import ChatClient
from glm_magic.client.errormap import map_http_error
from glm_magic.config import Secret, Settings
from glm_magic.events import Finish, ReasoningDelta, TextDelta, Usage
from glm_magic.testing import EndpointServer, bearer_digest, serve

from .conftest import FAKE_KEY, PLAIN_KEY

MESSAGES = [{"role": "user", "content": "Say hello to the notebook"}]


def settings_for(endpoint: EndpointServer, model: str = "glm-4.7", **kw: object) -> Settings:
    values: dict[str, object] = {
        "base_url": endpoint.base_url,
        "model": model,
        "retry_max_wait": 0.05,
        "read_timeout": 10.0,
    }
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


def stream_all(endpoint: EndpointServer, model: str, **kw: object) -> tuple[list[object], object]:
    client = ChatClient(settings_for(endpoint, model, **kw))
    events: list[object] = []
    stream = client.stream(MESSAGES)
    try:
        for ev in stream:
            events.append(ev)
    finally:
        client.close()
    return events, stream


def test_stream_matches_non_stream(fresh_endpoint: EndpointServer) -> None:
    events, stream = stream_all(fresh_endpoint, "glm-4.7")
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert sum(isinstance(e, TextDelta) for e in events) > 5  # really streamed in pieces
    assert Finish("stop") in events
    assert any(isinstance(e, Usage) and e.completion_tokens > 0 for e in events)
    with ChatClient(settings_for(fresh_endpoint)) as client:
        reply = client.complete(MESSAGES)
    assert reply.text == text
    assert reply.finish_reason == "stop" and reply.complete
    assert reply.usage is not None and reply.usage.prompt_tokens > 0
    assert reply.request_id
    assert stream.reply.request_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("placement", ["finish", "trailing"])
def test_usage_in_either_place(fresh_endpoint: EndpointServer, placement: str) -> None:
    events, _ = stream_all(fresh_endpoint, f"glm-4.7+usage={placement}")
    usages = [e for e in events if isinstance(e, Usage)]
    assert len(usages) == 1 and usages[0].total_tokens > 0


def test_thinking_is_kept_apart(fresh_endpoint: EndpointServer) -> None:
    events, stream = stream_all(fresh_endpoint, "glm-4.7", thinking=True)
    assert any(isinstance(e, ReasoningDelta) for e in events)
    reply = stream.reply  # type: ignore[attr-defined]
    assert reply.reasoning and reply.text
    assert reply.reasoning not in reply.text
    body = fresh_endpoint.requests[-1].body
    assert body["thinking"] == {"type": "enabled"}


def test_fields_not_set_are_not_sent(fresh_endpoint: EndpointServer) -> None:
    stream_all(fresh_endpoint, "glm-4.7", stream_usage=False)
    body = fresh_endpoint.requests[-1].body
    assert set(body) == {"model", "messages", "stream"}
    stream_all(fresh_endpoint, "glm-4.7", temperature=0.0, max_tokens=5000)
    body = fresh_endpoint.requests[-1].body
    assert body["temperature"] == 0.0 and body["max_tokens"] == 5000


@pytest.mark.parametrize(
    "directive", ["comments=1", "fault=glued", "fault=no_done", "fault=tool_index"]
)
def test_quirky_streams_still_succeed(fresh_endpoint: EndpointServer, directive: str) -> None:
    _, stream = stream_all(fresh_endpoint, f"glm-4.7+{directive}")
    reply = stream.reply  # type: ignore[attr-defined]
    if directive == "fault=tool_index":
        assert reply.finish_reason == "tool_calls"
        assert reply.tool_calls and reply.tool_calls[0].index == 0
    else:
        plain, _ = stream_all(fresh_endpoint, "glm-4.7")
        assert reply.text == "".join(e.text for e in plain if isinstance(e, TextDelta))


ERROR_CASES = [
    ("401", errors.AuthenticationError, "RUNAPI_KEY"),
    ("403", errors.PermissionDeniedError, "403"),
    ("402", errors.QuotaError, "credits"),
    ("400-1211", errors.ModelNotFoundError, "%glm models"),
    ("400-1261", errors.ContextTooLongError, "1261"),
    ("400-1214", errors.BadRequestError, "1214"),
    ("400-1301", errors.ContentFilteredError, "1301"),
    ("404", errors.BadRequestError, "404"),
    ("429-1113", errors.QuotaError, "1113"),
    ("429-1304", errors.QuotaError, "1304"),
    ("429-1302", errors.RateLimitError, "1302"),
    ("429-1305", errors.RateLimitError, "overloaded"),
    ("500", errors.ServerError, "500"),
    ("503", errors.ServerError, "Service Unavailable"),
    ("502-html", errors.ServerError, "HTML"),
]


@pytest.mark.parametrize(("fault", "kind", "words"), ERROR_CASES)
@pytest.mark.parametrize("streaming", [True, False])
def test_http_errors_map_to_the_tree(
    fresh_endpoint: EndpointServer, fault: str, kind: type, words: str, streaming: bool
) -> None:
    s = settings_for(fresh_endpoint, f"glm-4.7+fault={fault}", max_retries=0)
    with ChatClient(s) as client, pytest.raises(kind) as info:
        if streaming:
            list(client.stream(MESSAGES))
        else:
            client.complete(MESSAGES)
    err = info.value
    line = err.one_line()
    assert "\n" not in line
    assert words in line
    assert err.partial is not None and err.partial.text == ""


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("cut", errors.StreamBrokenError),
        ("truncate", errors.StreamBrokenError),
        ("malformed", errors.StreamBrokenError),
        ("error_event", errors.StreamBrokenError),
        ("sensitive", errors.ContentFilteredError),
        ("network_error", errors.GenerationFailedError),
    ],
)
def test_stream_faults_keep_the_partial_text(
    fresh_endpoint: EndpointServer, fault: str, kind: type
) -> None:
    s = settings_for(fresh_endpoint, f"glm-4.7+fault={fault}+cut_after=6", max_retries=3)
    got: list[object] = []
    with ChatClient(s) as client, pytest.raises(kind) as info:
        for ev in client.stream(MESSAGES):
            got.append(ev)
    streamed = "".join(e.text for e in got if isinstance(e, TextDelta))
    assert streamed, "some text arrived before the fault"
    partial = info.value.partial
    assert partial is not None
    assert partial.text.startswith(streamed) or streamed.startswith(partial.text)
    assert partial.error and not partial.complete
    # One request. None of these faults is retryable anyway: the promise that a retryable
    # one is not retried after text is test_a_retryable_fault_after_text_is_not_retried's.
    assert len(fresh_endpoint.requests) == 1


@pytest.mark.parametrize("streaming", [True, False])
def test_length_is_a_reply_not_an_error(fresh_endpoint: EndpointServer, streaming: bool) -> None:
    # The request's own cap: the endpoint stops at 12 pieces with finish_reason "length".
    s = settings_for(fresh_endpoint, "glm-4.7", max_tokens=12, max_retries=3)
    with ChatClient(s) as client:
        if streaming:
            stream = client.stream(MESSAGES)
            events = list(stream)  # no exception
            reply = stream.reply
            assert Finish("length") in events
        else:
            reply = client.complete(MESSAGES)
    assert len(reply.text) == 12 * 4 and not reply.error
    assert reply.truncated and not reply.complete and reply.finish_reason == "length"
    assert reply.max_tokens == 12
    assert reply.usage is not None and reply.usage.completion_tokens == 12
    assert reply.note.startswith("Cut at 12 tokens: your max_tokens cap (12)")
    assert "--max-tokens" in reply.note
    assert len(fresh_endpoint.requests) == 1  # a cut reply is never retried


def test_the_servers_own_limit_names_the_catalog_maximum() -> None:
    # No max_tokens sent: the server stops at glm-4.5v's own maximum (16K in the catalog).
    with serve(tokens=16_400, max_output=16_384) as server:
        with ChatClient(settings_for(server, "glm-4.5v")) as client:
            stream = client.stream(MESSAGES)
            list(stream)
        reply = stream.reply
        assert "max_tokens" not in server.requests[0].body
    assert reply.truncated and reply.max_tokens is None
    assert reply.note == (
        "Cut at 16,384 tokens: glm-4.5v's maximum output (16,384 tokens in the catalog) "
        "was reached, no max_tokens was set; ask for a shorter answer, or ask it to continue"
    )


def test_retries_before_first_byte_then_succeed(fresh_endpoint: EndpointServer) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7+fault=503+fail_times=2", max_retries=3)
    with ChatClient(s) as client:
        events = list(client.stream(MESSAGES))
    assert Finish("stop") in events
    # The server records an outcome after its last write: wait for it, do not race it.
    outcomes = [fresh_endpoint.wait_for_outcome(i, timeout=10) for i in range(3)]
    assert outcomes == ["fault", "fault", "completed"]
    assert len(fresh_endpoint.requests) == 3


def test_retries_are_bounded(fresh_endpoint: EndpointServer) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7+fault=500", max_retries=2)
    with ChatClient(s) as client, pytest.raises(errors.ServerError):
        list(client.stream(MESSAGES))
    assert len(fresh_endpoint.requests) == 3


def test_not_retryable_kinds_are_not_retried(fresh_endpoint: EndpointServer) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7+fault=401", max_retries=3)
    with ChatClient(s) as client, pytest.raises(errors.AuthenticationError):
        client.complete(MESSAGES)
    assert len(fresh_endpoint.requests) == 1


def test_a_retryable_fault_after_text_is_not_retried(fresh_endpoint: EndpointServer) -> None:
    # A stall past the read timeout is retryable before the first byte; after text it must
    # not be: a retry would send the request again and repeat the text already shown.
    s = settings_for(
        fresh_endpoint, "glm-4.7+fault=stall+cut_after=3", read_timeout=0.5, max_retries=3
    )
    got: list[object] = []
    with ChatClient(s) as client, pytest.raises(errors.TimeoutError) as info:
        stream = client.stream(MESSAGES)
        for ev in stream:
            got.append(ev)
    deltas = [e.text for e in got if isinstance(e, TextDelta)]
    assert len(deltas) == 3, deltas  # the three pieces before the stall, once
    assert info.value.retryable, "the fault is one that would be retried before any text"
    assert info.value.partial is not None and info.value.partial.text == "".join(deltas)
    assert stream.attempts == 1
    assert len(fresh_endpoint.requests) == 1


@pytest.mark.parametrize("streaming", [True, False])
def test_retry_after_is_honoured(fresh_endpoint: EndpointServer, streaming: bool) -> None:
    # 1.2 s is outside the fallback backoff of a first retry (0.25-0.5 s with this cap), so a
    # client that ignored the header could not wait this long.
    s = settings_for(
        fresh_endpoint, "glm-4.7+fault=429+fail_times=1+retry_after=1.2", retry_max_wait=5.0
    )
    with ChatClient(s) as client:
        started = time.monotonic()
        if streaming:
            stream = client.stream(MESSAGES)
            list(stream)
            assert stream.attempts == 2
        else:
            assert client.complete(MESSAGES).complete
        waited = time.monotonic() - started
    # A lower bound the client guarantees (it sleeps at least that long), not a speed claim.
    assert waited >= 1.2, waited
    assert len(fresh_endpoint.requests) == 2


def test_retry_after_is_capped(fresh_endpoint: EndpointServer) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7", retry_max_wait=0.3)
    client = ChatClient(s)
    err = errors.RateLimitError("x", retry_after=3600)
    assert client._backoff(1, err) == pytest.approx(0.3)
    plain = errors.ServerError("x")
    waits = [client._backoff(n, plain) for n in range(1, 8)]
    assert all(0 < w <= 0.3 for w in waits)
    client.close()


def test_close_from_another_thread_stops_and_closes_the_connection(
    fresh_endpoint: EndpointServer,
) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7+tokens=400+delay=0.02")
    client = ChatClient(s)
    stream = client.stream(MESSAGES)
    got: list[object] = []
    result: dict[str, BaseException] = {}

    def read() -> None:
        try:
            for ev in stream:
                got.append(ev)
        except BaseException as exc:
            result["error"] = exc

    reader = threading.Thread(target=read)
    reader.start()
    deadline = time.monotonic() + 10
    while len(got) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    stream.close()
    reader.join(5)
    assert not reader.is_alive()
    assert isinstance(result.get("error"), errors.StoppedError)
    partial = result["error"].partial  # type: ignore[attr-defined]
    assert partial is not None and partial.text
    outcome = fresh_endpoint.wait_for_outcome(0, timeout=5)
    assert outcome == "client_closed"
    assert fresh_endpoint.requests[0].chunks_sent < 400
    client.close()


def test_close_wakes_a_stalled_read(fresh_endpoint: EndpointServer) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7+fault=stall+cut_after=3", read_timeout=60)
    client = ChatClient(s)
    stream = client.stream(MESSAGES)
    done = threading.Event()
    errs: list[BaseException] = []

    stalled = threading.Event()

    def read() -> None:
        try:
            for ev in stream:
                if isinstance(ev, TextDelta) and len(stream.reply.text) == 3 * 4:
                    stalled.set()  # the last piece before the stall: the next read blocks
        except BaseException as exc:
            errs.append(exc)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert stalled.wait(10), "the three pieces before the stall arrived"
    stream.close()
    assert done.wait(5), "closing must wake a read blocked on a silent server"
    assert isinstance(errs[0], errors.StoppedError)
    assert errs[0].partial is not None and len(errs[0].partial.text) == 3 * 4
    client.close()


def test_close_before_the_response_headers_is_immediate(fresh_endpoint: EndpointServer) -> None:
    # Some proxies send no status line before the first token: close() must then shut the
    # socket itself, as there is no response to close yet.
    s = settings_for(fresh_endpoint, "glm-4.7+first_byte_delay=60", read_timeout=120)
    client = ChatClient(s)
    stream = client.stream(MESSAGES)
    done = threading.Event()
    errs: list[BaseException] = []

    def read() -> None:
        try:
            list(stream)
        except BaseException as exc:
            errs.append(exc)
        done.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 10
    while not fresh_endpoint.requests:  # the request is in: the client waits for the headers
        assert time.monotonic() < deadline, "the request never arrived"
        time.sleep(0.01)
    stream.close()
    # Generous: a close that waited for the headers would take the whole minute.
    assert done.wait(20), "closing must wake a read waiting for the response headers"
    assert isinstance(errs[0], errors.StoppedError)
    assert fresh_endpoint.wait_for_outcome(0, timeout=10) == "client_closed"
    client.close()


def test_read_timeout_keeps_partial(fresh_endpoint: EndpointServer) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7+fault=stall+cut_after=3", read_timeout=0.5)
    with ChatClient(s) as client, pytest.raises(errors.TimeoutError) as info:
        list(client.stream(MESSAGES))
    assert info.value.partial is not None and info.value.partial.text
    assert "read_timeout" in info.value.one_line()


def test_slow_first_byte_within_timeout_is_fine(fresh_endpoint: EndpointServer) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7+first_byte_delay=0.5", read_timeout=5)
    with ChatClient(s) as client:
        assert client.complete(MESSAGES).complete


def test_connect_error_is_one_line() -> None:
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    s = Settings(base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, retry_max_wait=0.05)
    with ChatClient(s) as client, pytest.raises(errors.ConnectError) as info:
        client.complete(MESSAGES)
    assert "\n" not in info.value.one_line()
    assert "127.0.0.1" in info.value.one_line()


@pytest.mark.parametrize("key", [FAKE_KEY, PLAIN_KEY])
def test_key_is_sent_but_never_shown(fresh_endpoint: EndpointServer, key: str) -> None:
    s = settings_for(fresh_endpoint, "glm-4.7+fault=401", api_key=Secret(key), max_retries=0)
    with ChatClient(s) as client, pytest.raises(errors.AuthenticationError) as info:
        client.complete(MESSAGES)
    assert fresh_endpoint.requests[0].headers["authorization"] == "Bearer ***"
    assert fresh_endpoint.requests[0].auth_digest == bearer_digest(key), "the exact key"
    for text in (
        str(info.value),
        repr(info.value),
        info.value.one_line(),
        repr(client),
        repr(s),
        repr(info.value.partial),
    ):
        assert key not in text


@pytest.mark.parametrize("key", [FAKE_KEY, PLAIN_KEY])
def test_server_echoing_the_key_is_redacted(key: str) -> None:
    body = '{"error": {"code": "1000", "message": "bad key ' + key + '"}}'
    err = map_http_error(401, body, {}, model="m", key_env="RUNAPI_KEY", secrets=[key])
    assert key not in err.one_line() and key not in err.server_message
    assert "bad key ***" in err.one_line()
    assert isinstance(err, errors.AuthenticationError)


def test_models_list(fresh_endpoint: EndpointServer) -> None:
    with ChatClient(settings_for(fresh_endpoint)) as client:
        ids = client.list_models()
    assert "glm-4.7" in ids and "glm-5.1" in ids


def test_missing_key_for_remote_endpoint_sends_nothing() -> None:
    transport_calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        transport_calls.append(request)
        return httpx.Response(200)

    s = Settings(base_url="https://runapi.ai/v1")
    client = ChatClient(s, transport=httpx.MockTransport(handler))
    with pytest.raises(errors.MissingKeyError):
        client.complete(MESSAGES)
    assert transport_calls == []


@pytest.mark.parametrize(
    ("base_url", "stream_usage", "asks"),
    [
        ("http://127.0.0.1:4000/v1", None, True),  # LiteLLM, vLLM, Ollama: only when asked
        ("https://api.openai.com/v1", None, True),
        ("https://runapi.ai/v1", None, False),  # GLM hosts send usage unasked
        ("https://api.z.ai/api/paas/v4", None, False),
        ("https://open.bigmodel.cn/api/paas/v4", None, False),
        ("https://runapi.ai/v1", True, True),
        ("http://127.0.0.1:4000/v1", False, False),
    ],
)
def test_stream_usage_is_asked_for_where_needed(
    base_url: str, stream_usage: bool | None, asks: bool
) -> None:
    from glm_magic.client.chat import build_body

    s = Settings(base_url=base_url, stream_usage=stream_usage)
    body = build_body(s, MESSAGES, stream=True)
    assert ("stream_options" in body) is asks
    if asks:
        assert body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in build_body(s, MESSAGES, stream=False)


def _litellm_body(message: str, status: int) -> str:
    import json

    # LiteLLM's proxy replaces the provider's code with the HTTP status and appends its own line.
    return json.dumps(
        {
            "error": {
                "message": f"{message}\n\nLiteLLM: model group 'g' failed with the error above.",
                "type": None,
                "param": None,
                "code": str(status),
            }
        }
    )


@pytest.mark.parametrize(
    ("status", "message", "kind"),
    [
        (
            429,
            "RateLimitError: OpenAIException - Insufficient balance or no resource package. "
            "Please recharge.",
            errors.QuotaError,
        ),
        (
            429,
            "RateLimitError: OpenAIException - The daily call limit for this model has been "
            "reached; next_flush_time: 2099-01-01 00:00:00",
            errors.QuotaError,
        ),
        (
            429,
            "RateLimitError: OpenAIException - Rate limit reached for requests",
            errors.RateLimitError,
        ),
        (
            400,
            "BadRequestError: OpenAIException - Unknown Model, please check the model code.",
            errors.ModelNotFoundError,
        ),
        (
            400,
            "/chat/completions: Invalid model name passed in model=x.",
            errors.ModelNotFoundError,
        ),
        (
            404,
            "The model `gpt-9` does not exist or you do not have access to it.",
            errors.ModelNotFoundError,
        ),
        (404, "NotFoundError: OpenAIException - Not Found", errors.BadRequestError),
        (
            400,
            "litellm.UnsupportedParamsError: openai does not support parameters: ['thinking'], "
            "for model=glm-4.7. To drop these, set `litellm.drop_params=True`",
            errors.BadRequestError,
        ),
        (
            400,
            "BadRequestError: OpenAIException - System detected potentially unsafe or sensitive "
            "content in input or generation.",
            errors.ContentFilteredError,
        ),
        (408, "litellm.Timeout: This is a mock timeout error", errors.TimeoutError),
        (504, "Gateway Timeout", errors.TimeoutError),
    ],
)
def test_proxy_error_bodies_keep_their_kind(status: int, message: str, kind: type) -> None:
    err = map_http_error(status, _litellm_body(message, status), {}, model="m", key_env="K")
    assert type(err) is kind, err.one_line()
    assert "\n" not in err.one_line()


def test_openai_content_filter_finish_is_filtered() -> None:
    from glm_magic.client.errormap import finish_error
    from glm_magic.reply import ReplyBuilder

    partial = ReplyBuilder("m").snapshot()
    assert isinstance(finish_error("content_filter", partial), errors.ContentFilteredError)
