"""Tests for the bundled test endpoint (glm_magic.testing), over real HTTP only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from glm_magic.testing import EndpointServer, bearer_digest, serve
from glm_magic.testing.__main__ import main
from glm_magic.testing.scripts import filler_text, reply_for, split_tokens

ROOT = Path(__file__).resolve().parents[1]
USER = [{"role": "user", "content": "Hello, what can you do?"}]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[EndpointServer]:
    with serve() as srv:
        yield srv


@pytest.fixture
def client(endpoint: EndpointServer) -> Iterator[httpx.Client]:
    endpoint.reset()  # each test reads the log from index 0
    with httpx.Client(base_url=endpoint.base_url, timeout=10) as c:
        yield c


def chat(
    client: httpx.Client,
    model: str = "glm-4.7",
    messages: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> httpx.Response:
    body = {"model": model, "messages": messages or USER, **extra}
    return client.post("/chat/completions", json=body, headers=headers)


def stream_text(client: httpx.Client, model: str = "glm-4.7", **extra: Any) -> str:
    response = chat(client, model, stream=True, **extra)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    return response.text


def payloads(text: str) -> list[str]:
    """SSE data payloads, re-split on 'data: ' as spec quirk 4 advises."""
    out: list[str] = []
    for line in text.split("\n"):
        if line.startswith("data: "):
            out += [part for part in line.split("data: ") if part]
    return out


def events(text: str) -> list[dict[str, Any]]:
    return [json.loads(p) for p in payloads(text) if p != "[DONE]"]


def content(chunks: list[dict[str, Any]], field: str = "content") -> str:
    return "".join(c["choices"][0]["delta"].get(field, "") for c in chunks if c.get("choices"))


def python_block(text: str) -> str:
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match, text
    return match.group(1)


# -- routes and reply shapes -------------------------------------------------


def test_models_lists_glm_ids(client: httpx.Client) -> None:
    body = client.get("/models").json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert ids == [
        "glm-5.1",
        "glm-5",
        "glm-5-turbo",
        "glm-4.7",
        "glm-4.6",
        "glm-4.5",
        "glm-4.5-air",
    ]
    assert all(m["object"] == "model" and m["owned_by"] == "z-ai" for m in body["data"])


def test_non_stream_reply_shape(client: httpx.Client, endpoint: EndpointServer) -> None:
    response = chat(client, "glm-4.6+tokens=7")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "glm-4.6"  # directives are not echoed
    assert body["id"] == body["request_id"] == response.headers["x-request-id"]
    assert re.fullmatch(r"req-\d+-[0-9a-f]+", body["id"])
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert "reasoning_content" not in choice["message"]
    assert len(choice["message"]["content"]) == 28
    usage = body["usage"]
    assert usage["completion_tokens"] == 7
    assert usage["total_tokens"] == usage["prompt_tokens"] + 7
    assert usage["prompt_tokens"] == len(USER[0]["content"]) // 4
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0}
    assert endpoint.wait_for_outcome(0, 5) == "completed"
    assert endpoint.requests[0].request_id == body["id"]


def test_request_id_is_echoed(client: httpx.Client) -> None:
    response = chat(client, request_id="client-chosen-id-42")
    assert response.headers["x-request-id"] == "client-chosen-id-42"
    assert response.json()["request_id"] == "client-chosen-id-42"


def test_stream_matches_non_stream_with_trailing_usage(client: httpx.Client) -> None:
    full = chat(client).json()["choices"][0]["message"]["content"]
    response = chat(client, stream=True)
    assert response.headers["transfer-encoding"] == "chunked"
    text = response.text
    assert text.endswith("data: [DONE]\n\n")
    chunks = events(text)
    assert content(chunks) == full
    rid = response.headers["x-request-id"]
    for chunk in chunks:
        assert chunk["id"] == rid
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "glm-4.7"
        assert isinstance(chunk["created"], int)
    *tokens, finish, trailing = chunks
    for chunk in tokens:
        assert "finish_reason" not in chunk["choices"][0]
        assert chunk["choices"][0]["delta"]["role"] == "assistant"
        assert "usage" not in chunk
    assert finish["choices"] == [
        {"index": 0, "finish_reason": "stop", "delta": {"role": "assistant", "content": ""}}
    ]
    assert "usage" not in finish
    assert trailing["choices"] == []
    assert trailing["usage"]["completion_tokens"] == len(tokens)


@pytest.mark.parametrize("how", ["model", "header"])
def test_usage_on_finish_chunk(client: httpx.Client, how: str) -> None:
    if how == "model":
        text = stream_text(client, "glm-4.7+usage=finish+tokens=3")
    else:
        response = chat(client, "glm-4.7+tokens=3", headers={"X-Test-Usage": "finish"}, stream=True)
        text = response.text
    chunks = events(text)
    assert len(chunks) == 4
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens"] == 3
    assert payloads(text)[-1] == "[DONE]"


def test_reasoning_deltas_come_first_when_thinking(client: httpx.Client) -> None:
    chunks = events(stream_text(client, thinking={"type": "enabled"}))
    kinds = [next(iter(set(c["choices"][0]["delta"]) - {"role"})) for c in chunks[:-2]]
    first_content = kinds.index("content")
    assert kinds[:first_content] == ["reasoning_content"] * first_content
    assert set(kinds[first_content:]) == {"content"}
    reasoning = content(chunks, "reasoning_content")
    assert reasoning.startswith("The user wrote")
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == first_content
    body = chat(client, thinking={"type": "enabled"}).json()
    assert body["choices"][0]["message"]["reasoning_content"] == reasoning
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == first_content


def test_thinking_off_when_disabled_absent_or_directive(client: httpx.Client) -> None:
    for extra in ({}, {"thinking": {"type": "disabled"}}):
        assert "reasoning_content" not in chat(client, **extra).json()["choices"][0]["message"]
    forced = chat(client, "glm-5+think=1").json()["choices"][0]["message"]
    assert forced["reasoning_content"]


def test_tokens_directive_and_server_default(client: httpx.Client) -> None:
    chunks = events(stream_text(client, "glm-4.7+tokens=40"))[:-2]
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks]
    assert len(pieces) == 40
    assert all(len(p) == 4 for p in pieces)
    with serve(tokens=3) as small, httpx.Client(base_url=small.base_url) as c:
        assert chat(c).json()["usage"]["completion_tokens"] == 3


def test_max_tokens_caps_reply_with_length(client: httpx.Client) -> None:
    body = chat(client, "glm-4.7+tokens=10", max_tokens=4).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 4


def test_server_max_output_applies_only_without_max_tokens() -> None:
    with serve(tokens=10, max_output=6) as small, httpx.Client(base_url=small.base_url) as c:
        body = chat(c).json()
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] == 6
        asked = chat(c, max_tokens=8).json()  # the request's own cap wins
        assert asked["usage"]["completion_tokens"] == 8
    with pytest.raises(ValueError, match="max_output"):
        serve(max_output=0)


def test_length_in_code_ends_inside_an_open_python_block(client: httpx.Client) -> None:
    ask = {"messages": [{"role": "user", "content": "write a function"}]}
    text = stream_text(client, "glm-4.7+fault=length_in_code", **ask)
    chunks = events(text)
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    answer = content(chunks)
    assert answer.startswith(reply_for(ask["messages"]).rstrip())
    assert answer.count("```") == 3  # the scripted block, then one left open
    assert answer.rstrip().endswith("totals.append(")
    body = chat(client, "glm-4.7+fault=length_in_code", **ask).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"] == answer


def test_comments_and_first_byte_delay(client: httpx.Client) -> None:
    text = stream_text(client, "glm-4.7+comments=1+first_byte_delay=0.01+tokens=3")
    assert ": keep-alive\n\n" in text
    assert content(events(text)) == filler_text(3)


def test_concurrent_streams(client: httpx.Client, endpoint: EndpointServer) -> None:
    results: list[str] = []

    def one() -> None:
        with httpx.Client(base_url=endpoint.base_url, timeout=10) as c:
            results.append(content(events(stream_text(c, "glm-4.7+tokens=20+delay=0.001"))))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [filler_text(20)] * 4


# -- validation, auth, test routes ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"model": "glm-4.7"},
        {"model": "glm-4.7", "messages": []},
        {"model": "glm-4.7", "messages": [{"role": "system", "content": "x"}]},
        {"model": "glm-4.7", "messages": ["hi"]},
        {"messages": USER},
    ],
)
def test_invalid_bodies_get_1214(client: httpx.Client, body: dict[str, Any]) -> None:
    response = client.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "1214"


def test_non_json_body_gets_1214(client: httpx.Client) -> None:
    response = client.post("/chat/completions", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "1214"


def test_unknown_directive_is_rejected(client: httpx.Client) -> None:
    for response in (chat(client, "glm-4.7+colour=red"), chat(client, "glm-4.7+fault=nope")):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "1210"


def test_chat_path_without_v1_and_unknown_paths(client: httpx.Client) -> None:
    root = client.base_url.copy_with(path="/")
    assert httpx.post(
        root.join("chat/completions"), json={"model": "m", "messages": USER}
    ).is_success
    missing = client.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Not Found"
    head = client.head("/models")
    assert head.status_code == 404
    assert head.content == b""


def test_keys_are_optional_and_masked_in_log(
    client: httpx.Client, endpoint: EndpointServer
) -> None:
    key = "localproxy-Key-7f3a9c2e"
    assert chat(client, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert chat(client).status_code == 200
    first, anonymous = endpoint.requests
    assert first.headers["authorization"] == "Bearer ***"
    # The exact key can be checked through its digest, which never shows the key.
    assert first.auth_digest == bearer_digest(key)
    assert first.auth_digest != bearer_digest(key[:-1])
    assert anonymous.auth_digest is None
    endpoint.wait_for_outcome(0)  # recorded after the last write
    remote = client.get(client.base_url.copy_with(path="/_test/requests")).json()
    assert remote[0]["headers"]["authorization"] == "Bearer ***"
    assert remote[0]["auth_digest"] == bearer_digest(key)
    assert remote[0]["outcome"] == "completed"
    assert key not in json.dumps(remote) and key[:12] not in json.dumps(remote)
    assert client.post(client.base_url.copy_with(path="/_test/reset")).json() == {"ok": True}
    assert endpoint.requests == []


def test_require_key() -> None:
    with serve(require_key="sk-test") as srv, httpx.Client(base_url=srv.base_url) as c:
        missing = chat(c)
        assert missing.status_code == 401
        assert missing.json()["error"] == {"code": "1001", "message": "Authorization Token Missing"}
        wrong = chat(c, headers={"Authorization": "Bearer sk-wrong"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "1000"
        assert chat(c, headers={"Authorization": "Bearer sk-test"}).status_code == 200
        assert c.get("/models", headers={"Authorization": "Bearer sk-test"}).status_code == 200
        assert "sk-test" not in json.dumps([r.to_dict() for r in srv.requests])
        assert "sk-test" not in repr(srv)


# -- HTTP error faults ---------------------------------------------------------

ERRORS = [
    ("401", 401, "1000"),
    ("403", 403, None),
    ("402", 402, "insufficient_credits"),
    ("400-1211", 400, "1211"),
    ("400-1261", 400, "1261"),
    ("400-1214", 400, "1214"),
    ("400-1301", 400, "1301"),
    ("404", 404, None),
    ("429", 429, "1302"),
    ("429-1302", 429, "1302"),
    ("429-1305", 429, "1305"),
    ("429-1113", 429, "1113"),
    ("429-1304", 429, "1304"),
    ("500", 500, "500"),
]


@pytest.mark.parametrize(("fault", "status", "code"), ERRORS)
@pytest.mark.parametrize("stream", [False, True])
def test_json_error_faults(
    client: httpx.Client,
    endpoint: EndpointServer,
    fault: str,
    status: int,
    code: str | None,
    stream: bool,
) -> None:
    response = chat(client, f"glm-4.7+fault={fault}", stream=stream)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"]
    error = response.json()["error"]
    assert set(error) == ({"code", "message"} if code else {"message"})
    assert error.get("code") == code
    assert error["message"]
    assert "retry-after" not in response.headers
    assert endpoint.wait_for_outcome(0, 5) == "fault"
    assert endpoint.requests[0].status == status


def test_error_messages_follow_zai() -> None:
    with serve() as srv, httpx.Client(base_url=srv.base_url) as c:
        message = chat(c, "glm-4.7+fault=429-1304").json()["error"]["message"]
        assert "next_flush_time" in message
        message = chat(c, "glm-4.7+fault=400-1211").json()["error"]["message"]
        assert message == "Unknown Model, please check the model code."


def test_non_json_error_faults(client: httpx.Client) -> None:
    plain = chat(client, "glm-4.7+fault=503")
    assert plain.status_code == 503
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.text == "Service Unavailable"
    html = chat(client, "glm-4.7+fault=502-html")
    assert html.status_code == 502
    assert html.headers["content-type"].startswith("text/html")
    assert "<h1>502 Bad Gateway</h1>" in html.text


def test_retry_after_and_header_directives(client: httpx.Client) -> None:
    response = chat(client, "glm-4.7+fault=429+retry_after=1")
    assert response.headers["retry-after"] == "1"
    # Headers win over the model suffix.
    response = chat(client, "glm-4.7+fault=500", headers={"X-Test-Fault": "429-1305"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "1305"


def test_fail_times(client: httpx.Client, endpoint: EndpointServer) -> None:
    model = "glm-4.7+fault=500+fail_times=2"
    assert [chat(client, model).status_code for _ in range(3)] == [500, 500, 200]
    # A different directive string has its own counter.
    assert chat(client, model, headers={"X-Test-Cut-After": "3"}).status_code == 500
    outcomes = [endpoint.wait_for_outcome(i) for i in range(4)]  # recorded after the last write
    assert outcomes == ["fault", "fault", "completed", "fault"]
    endpoint.reset()
    assert chat(client, model).status_code == 500


def test_fail_times_for_stream_fault(client: httpx.Client) -> None:
    model = "glm-4.7+fault=truncate+fail_times=1+tokens=8"
    assert payloads(stream_text(client, model))[-1] != "[DONE]"
    assert payloads(stream_text(client, model))[-1] == "[DONE]"


# -- stream faults -------------------------------------------------------------


def test_cut_closes_without_terminator(client: httpx.Client, endpoint: EndpointServer) -> None:
    request = {"model": "glm-4.7+fault=cut+cut_after=3", "messages": USER, "stream": True}
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", "/chat/completions", json=request) as response,
    ):
        response.read()
    assert endpoint.wait_for_outcome(0, 5) == "fault"
    assert endpoint.requests[0].chunks_sent == 3


def test_truncate_ends_cleanly_without_finish(client: httpx.Client) -> None:
    text = stream_text(client, "glm-4.7+fault=truncate")
    chunks = events(text)
    assert len(chunks) == 5
    assert all("finish_reason" not in c["choices"][0] for c in chunks)
    assert "[DONE]" not in text


def test_malformed_frame_then_normal(client: httpx.Client) -> None:
    full = chat(client).json()["choices"][0]["message"]["content"]
    parts = payloads(stream_text(client, "glm-4.7+fault=malformed+cut_after=2"))
    bad = []
    good = []
    for part in parts[:-1]:
        try:
            good.append(json.loads(part))
        except ValueError:
            bad.append(part)
    assert bad == ['{"id": "x", "choices": [ {"delta": ']
    assert parts[-1] == "[DONE]"
    assert content(good) == full


def test_glued_frames_resplit(client: httpx.Client) -> None:
    full = chat(client).json()["choices"][0]["message"]["content"]
    text = stream_text(client, "glm-4.7+fault=glued")
    assert "}data: {" in text
    assert text.endswith("}data: [DONE]\n\n"), text[-200:]  # [DONE] glued on too
    assert content(events(text)) == full
    assert payloads(text)[-1] == "[DONE]"


@pytest.mark.parametrize("reason", ["sensitive", "network_error", "length"])
def test_finish_reason_faults(client: httpx.Client, reason: str) -> None:
    text = stream_text(client, f"glm-4.7+fault={reason}+usage=finish")
    chunks = events(text)
    assert chunks[-1]["choices"][0]["finish_reason"] == reason
    assert chunks[-1]["usage"]["completion_tokens"] == 5
    assert payloads(text)[-1] == "[DONE]"
    body = chat(client, f"glm-4.7+fault={reason}").json()
    assert body["choices"][0]["finish_reason"] == reason
    assert body["usage"]["completion_tokens"] == 5


def test_tool_index_quirk(client: httpx.Client) -> None:
    text = stream_text(client, "glm-4.7+fault=tool_index")
    chunks = events(text)
    tool = next(c for c in chunks if c["choices"] and "tool_calls" in c["choices"][0]["delta"])
    assert tool["choices"][0]["finish_reason"] == "tool_calls"
    call = tool["choices"][0]["delta"]["tool_calls"][0]
    assert call["index"] == -1
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    finishes = [c for c in chunks if c["choices"] and "finish_reason" in c["choices"][0]]
    assert len(finishes) == 2
    assert payloads(text)[-1] == "[DONE]"


def test_error_event(client: httpx.Client) -> None:
    text = stream_text(client, "glm-4.7+fault=error_event")
    last = events(text)[-1]
    assert last == {"error": {"code": "500", "message": "Internal error during streaming"}}
    assert "[DONE]" not in text


def test_no_done(client: httpx.Client) -> None:
    text = stream_text(client, "glm-4.7+fault=no_done")
    chunks = events(text)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]
    assert "[DONE]" not in text


def test_stall_until_client_gives_up(client: httpx.Client, endpoint: EndpointServer) -> None:
    timeout = httpx.Timeout(10, read=0.2)
    with httpx.Client(base_url=endpoint.base_url, timeout=timeout) as c:
        with pytest.raises(httpx.ReadTimeout):
            chat(c, "glm-4.7+fault=stall+cut_after=2", stream=True)
        with pytest.raises(httpx.ReadTimeout):
            chat(c, "glm-4.7+fault=stall")
    assert endpoint.wait_for_outcome(0, 10) == "client_closed"
    assert endpoint.requests[0].chunks_sent == 2
    assert endpoint.wait_for_outcome(1, 10) == "client_closed"


def test_non_stream_cut_and_malformed(client: httpx.Client) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        chat(client, "glm-4.7+fault=cut")
    response = chat(client, "glm-4.7+fault=malformed")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_client_close_mid_stream(client: httpx.Client, endpoint: EndpointServer) -> None:
    request = {"model": "glm-4.7+tokens=400+delay=0.005", "messages": USER, "stream": True}
    with client.stream("POST", "/chat/completions", json=request) as response:
        lines = response.iter_lines()
        for _ in range(3):
            next(line for line in lines if line.startswith("data: "))
    assert endpoint.wait_for_outcome(0, 10) == "client_closed"
    assert 3 <= endpoint.requests[0].chunks_sent < 400


def test_close_ends_stalled_reply() -> None:
    srv = serve()
    errors: list[Exception] = []

    def stalled() -> None:
        with httpx.Client(base_url=srv.base_url, timeout=30) as c:
            try:
                chat(c, "glm-4.7+fault=stall", stream=True)
            except httpx.HTTPError as exc:
                errors.append(exc)

    thread = threading.Thread(target=stalled)
    thread.start()
    while not srv.requests:
        threading.Event().wait(0.01)
    srv.close()
    thread.join(10)
    assert srv.wait_for_outcome(0, 10) == "error"
    assert len(errors) == 1


# -- scripted replies ----------------------------------------------------------


@pytest.mark.parametrize(
    "question", ["Write a function that adds numbers", "plot a sine wave", "show me a snippet"]
)
def test_code_reply_compiles(client: httpx.Client, question: str) -> None:
    reply = chat(client, messages=[{"role": "user", "content": question}]).json()
    code = python_block(reply["choices"][0]["message"]["content"])
    compile(code, "<x>", "exec")


TRACEBACK = """Traceback (most recent call last):
  File "<cell>", line 2, in <module>
    print(totl)
NameError: name 'totl' is not defined"""


def test_explain_names_exception_and_line() -> None:
    text = reply_for([{"role": "user", "content": f"Please explain:\n{TRACEBACK}"}])
    assert text.startswith("**Root cause:** `NameError`")
    assert "line 2 (`print(totl)`)" in text


def test_fix_renames_close_match() -> None:
    question = f"Fix this cell:\n```python\ntotal = 3\nprint(totl)\n```\n{TRACEBACK}"
    code = python_block(reply_for([{"role": "user", "content": question}]))
    assert code.startswith("# fixed by the scripted endpoint")
    assert "print(total)" in code
    compile(code, "<x>", "exec")


def test_fix_repairs_key_error() -> None:
    question = (
        "fix it\n```python\nd = {'colour': 1}\nprint(d['color'])\n```\n"
        "Traceback (most recent call last):\nKeyError: 'color'"
    )
    code = python_block(reply_for([{"role": "user", "content": question}]))
    assert "print(d['colour'])" in code


def test_fix_without_known_repair_keeps_source() -> None:
    question = "fix\n```python\nint('x')\n```\nValueError: invalid literal for int()"
    code = python_block(reply_for([{"role": "user", "content": question}]))
    assert code == "# fixed by the scripted endpoint\nint('x')\n"
    guard = python_block(reply_for([{"role": "user", "content": f"fix\n{TRACEBACK}"}]))
    compile(guard, "<x>", "exec")


def test_chat_reply_echoes_question() -> None:
    question = "Tell me about the weather on Mars " * 4
    text = reply_for([{"role": "user", "content": "old"}, {"role": "user", "content": question}])
    assert 400 <= len(text) <= 600
    assert question[:60] in text
    assert "scripted reply" in text
    assert text.startswith("## ")


def test_split_tokens_is_exact() -> None:
    text = "héllo wörld\n```python\nx = 1\n```"
    assert "".join(split_tokens(text)) == text
    assert all(len(p) == 4 for p in split_tokens(text)[:-1])
    for n in (0, 1, 31, 32, 33, 100):
        assert len(filler_text(n)) == 4 * n
        assert len(split_tokens(filler_text(n))) == n


# -- command line --------------------------------------------------------------


@pytest.mark.timeout(60)
def test_cli_prints_url_and_serves() -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "glm_magic.testing", "--port", "0", "--quiet", "--tokens", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"GLM test endpoint listening on (http://127\.0\.0\.1:\d+/v1)\n", line)
        assert match, line
        with httpx.Client(base_url=match.group(1), timeout=10) as c:
            assert c.get("/models").status_code == 200
            assert chat(c).json()["usage"]["completion_tokens"] == 2
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_cli_reports_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "70000", "--quiet"]) == 1
    assert "cannot start" in capsys.readouterr().err
