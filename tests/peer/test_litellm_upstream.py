"""GLM behind LiteLLM: the bundled endpoint as LiteLLM's upstream, compared with it direct.

``glm/<model>`` on the proxy goes to the bundled endpoint (``openai/*`` wildcard route), so every
fault the endpoint can script is seen twice: direct, and after LiteLLM has passed it on. Each
case says whether the two must match; where LiteLLM loses information no client could get back,
the case states what comes out instead (so a LiteLLM upgrade that changes it is noticed).

This compares our client with itself through two paths, so a bug common to both passes here:
it is not coverage of the client's behaviour. The absolute checks live in ``tests/test_client.py``
(and ``scripts/mutate.py`` checks that they catch planted bugs).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest

from glm_magic import errors
from glm_magic.client.chat import ChatClient
from glm_magic.config import Secret, Settings
from glm_magic.events import TextDelta
from glm_magic.testing import EndpointServer

from .litellm_proxy import UPSTREAM_PREFIX, Proxy

pytestmark = pytest.mark.peer

MESSAGES = [{"role": "user", "content": "Say hello to the notebook"}]
MODEL = "glm-4.7"

# Differences the client absorbs (each is a case below):
# - LiteLLM replaces Z.ai's codes with the HTTP status ('429', '400'): quota (1113, 1304),
#   unknown model (1211) and content filter (1301) are recognised from the server's words.
# - LiteLLM renames finish_reason 'sensitive' to OpenAI's 'content_filter': both mean filtered.
# - An upstream 404 ('... Not Found ... model group ...') and LiteLLM's refusal of the thinking
#   field ('... does not support parameters ... for model=...') are not unknown-model errors.


@dataclass(frozen=True)
class Outcome:
    """What a request came to: ``ok`` or the error class, and the reply (or partial) it left."""

    kind: str
    text: str
    reasoning: str
    finish_reason: str | None
    tool_calls: int


#: The OpenAI name LiteLLM gives a GLM finish reason -> GLM's name.
FINISH_ALIASES = {"content_filter": "sensitive"}


def outcome(s: Settings, streaming: bool) -> Outcome:
    failure: errors.GlmError | None = None
    with ChatClient(s) as client:
        try:
            if streaming:
                stream = client.stream(MESSAGES)
                list(stream)
                reply = stream.reply
            else:
                reply = client.complete(MESSAGES)
        except errors.GlmError as err:
            failure = err
    if failure is None:
        kind = "ok"
    else:
        assert "\n" not in failure.one_line()
        assert failure.partial is not None
        kind, reply = type(failure).__name__, failure.partial
    finish = FINISH_ALIASES.get(reply.finish_reason or "", reply.finish_reason)
    return Outcome(kind, reply.text, reply.reasoning, finish, len(reply.tool_calls))


def direct(endpoint: EndpointServer, model: str, **kw: Any) -> Settings:
    return Settings(base_url=endpoint.base_url, model=model, max_retries=0, **kw)


def via(proxy: Proxy, model: str, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": proxy.base_url,
        "model": UPSTREAM_PREFIX + model,
        "api_key": Secret(proxy.master_key),
        "max_retries": 0,
        "read_timeout": 20.0,
    }
    values.update(kw)
    return Settings(**values)


def case(directive: str, mode: str, via_kind: str | None = None, marks: Any = ()) -> Any:
    """One parameter set: the directive, streaming or not, the outcome expected via the proxy."""
    return pytest.param(
        directive, mode == "stream", via_kind, id=f"{directive or 'plain'}-{mode}", marks=marks
    )


def both(directive: str, via_kind: str | None = None, marks: Any = ()) -> list[Any]:
    return [case(directive, mode, via_kind, marks) for mode in ("stream", "complete")]


#: (directive on the model id, streaming, what comes out via the proxy: None = the same as direct)
CASES = [
    # The same text, thinking, finish reason, tool calls and error kinds.
    *both(""),
    *both("+think=1"),
    *both("+comments=1"),
    *both("+fault=no_done"),
    *both("+fault=tool_index"),
    *both("+fault=length"),
    *both("+fault=429"),
    *both("+fault=429-1302"),
    *both("+fault=429-1305"),
    *both("+fault=402"),
    *both("+fault=403"),
    *both("+fault=401"),
    *both("+fault=400-1214"),
    *both("+fault=400-1261"),
    *both("+fault=500"),
    *both("+fault=503"),
    *both("+fault=502-html"),
    *both("+fault=error_event"),
    case("+fault=cut", "stream"),
    # Differences the client can and should absorb.
    *both("+fault=429-1113"),
    *both("+fault=429-1304"),
    *both("+fault=400-1211"),
    *both("+fault=400-1301"),
    *both("+fault=sensitive"),
    *both("+fault=404"),
    # What LiteLLM loses on the way; no client can get it back.
    # GLM's finish_reason "network_error" becomes "stop": a failed generation looks complete.
    *both("+fault=network_error", via_kind="ok"),
    # A stream that ends without finish_reason or [DONE] is closed with "stop" and [DONE].
    case("+fault=truncate", "stream", via_kind="ok"),
    # The proxy answers a broken upstream body with a 500 of its own.
    case("+fault=truncate", "complete", via_kind="ServerError"),
    case("+fault=cut", "complete", via_kind="ServerError"),
    case("+fault=malformed", "complete", via_kind="ServerError"),
    # LiteLLM's parser gives up at the first broken frame (direct: skipped, the rest kept).
    case("+fault=malformed", "stream", via_kind="StreamBrokenError"),
    # Glued frames (spec quirk 4) are not re-split: the proxy fails before its first chunk.
    case("+fault=glued", "stream", via_kind="ServerError"),
    case("+fault=glued", "complete"),
]


@pytest.mark.parametrize(("directive", "streaming", "via_kind"), CASES)
def test_glm_behind_litellm_comes_out_as_direct(
    fresh_proxy: Proxy,
    fresh_endpoint: EndpointServer,
    directive: str,
    streaming: bool,
    via_kind: str | None,
) -> None:
    model = MODEL + directive
    expected = outcome(direct(fresh_endpoint, model), streaming)
    got = outcome(via(fresh_proxy, model), streaming)
    if via_kind is None:
        assert got == expected
    else:
        # A documented loss: this is what comes out instead (and it does differ).
        assert got.kind == via_kind, got
        assert got != expected


def test_streamed_usage_is_passed_on(fresh_proxy: Proxy, fresh_endpoint: EndpointServer) -> None:
    with ChatClient(direct(fresh_endpoint, MODEL)) as client:
        stream = client.stream(MESSAGES)
        list(stream)
        expected = stream.reply.usage
    with ChatClient(via(fresh_proxy, MODEL)) as client:
        stream = client.stream(MESSAGES)
        list(stream)
    assert expected is not None
    assert stream.reply.usage is not None
    assert stream.reply.usage.completion_tokens == expected.completion_tokens


def test_retry_after_is_not_passed_on(fresh_proxy: Proxy, fresh_endpoint: EndpointServer) -> None:
    # The endpoint's Retry-After never reaches the client through LiteLLM, so the client falls
    # back to its own backoff (documented; nothing to fix on our side).
    model = MODEL + "+fault=429-1302+retry_after=2"
    with (
        ChatClient(direct(fresh_endpoint, model)) as client,
        pytest.raises(errors.RateLimitError) as first,
    ):
        client.complete(MESSAGES)
    with (
        ChatClient(via(fresh_proxy, model)) as client,
        pytest.raises(errors.RateLimitError) as second,
    ):
        client.complete(MESSAGES)
    assert first.value.retry_after == 2
    assert second.value.retry_after is None


def test_thinking_param_refused_by_the_openai_route_is_a_bad_request(fresh_proxy: Proxy) -> None:
    # LiteLLM's openai/ route rejects GLM's `thinking` field unless the proxy sets drop_params.
    with (
        ChatClient(via(fresh_proxy, MODEL, thinking=True)) as client,
        pytest.raises(errors.BadRequestError) as info,
    ):
        client.complete(MESSAGES)
    line = info.value.one_line()
    assert "thinking" in line and "\n" not in line
    assert type(info.value) is errors.BadRequestError, line


def test_stop_mid_stream_reaches_the_upstream(
    fresh_proxy: Proxy, fresh_endpoint: EndpointServer
) -> None:
    s = via(fresh_proxy, MODEL + "+tokens=3000+delay=0.01")
    with ChatClient(s) as client:
        stream = client.stream(MESSAGES)
        got: list[str] = []
        result: dict[str, BaseException] = {}

        def read() -> None:
            try:
                for ev in stream:
                    if isinstance(ev, TextDelta):
                        got.append(ev.text)
            except BaseException as exc:
                result["error"] = exc

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = 30.0
        while len(got) < 5 and deadline > 0 and reader.is_alive():
            reader.join(0.05)
            deadline -= 0.05
        stream.close()
        reader.join(10)
    assert isinstance(result.get("error"), errors.StoppedError), result
    # The proxy hung up on the endpoint in turn: it stopped generating.
    assert fresh_endpoint.wait_for_outcome(0, timeout=10) == "client_closed"
    assert fresh_endpoint.requests[0].chunks_sent < 3000
