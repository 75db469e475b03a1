"""The SSE decoder and chunk parser, on the stream shapes of the spec sheet."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glm_magic.client.sse import DONE, MalformedChunk, SSEDecoder, parse_chunk, split_payload
from glm_magic.events import Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage


def chunk(delta: dict[str, object] | None = None, **extra: object) -> dict[str, object]:
    choice: dict[str, object] = {"index": 0, "delta": {"role": "assistant", **(delta or {})}}
    choice.update({k: v for k, v in extra.items() if k == "finish_reason"})
    body: dict[str, object] = {"id": "r1", "object": "chat.completion.chunk", "choices": [choice]}
    if "usage" in extra:
        body["usage"] = extra["usage"]
    return body


USAGE = {
    "prompt_tokens": 9,
    "completion_tokens": 3,
    "total_tokens": 12,
    "prompt_tokens_details": {"cached_tokens": 7},
}

# Capture A of the spec: reasoning, content, finish, trailing usage with empty choices.
STREAM_A = [
    chunk({"reasoning_content": "\n"}),
    chunk({"reasoning_content": "Analyzing"}),
    chunk({"content": "Hello"}),
    chunk({"content": " world"}),
    chunk({"content": ""}, finish_reason="stop"),
    {"id": "r1", "choices": [], "usage": USAGE},
]


def encode(frames: list[object], *, sep: str = "\n") -> bytes:
    out = []
    for f in frames:
        payload = f if isinstance(f, str) else json.dumps(f)
        out.append(f"data: {payload}{sep}{sep}")
    return "".join(out).encode()


def decode_all(data: bytes, cuts: list[int] | None = None) -> list[object]:
    dec = SSEDecoder()
    frames = []
    pos = 0
    for cut in sorted(cuts or []):
        frames += dec.feed(data[pos:cut])
        pos = cut
    frames += dec.feed(data[pos:])
    frames += dec.flush()
    objs: list[object] = []
    for fr in frames:
        objs.extend(split_payload(fr.data))
    return objs


def events_of(objs: list[object]) -> list[object]:
    evs: list[object] = []
    for o in objs:
        if o != DONE:
            evs.extend(parse_chunk(o))
    return evs


def test_capture_a_events() -> None:
    objs = decode_all(encode([*STREAM_A, DONE]))
    assert objs[-1] == DONE
    evs = events_of(objs)
    assert evs == [
        ReasoningDelta("\n"),
        ReasoningDelta("Analyzing"),
        TextDelta("Hello"),
        TextDelta(" world"),
        Finish("stop"),
        Usage(9, 3, 12, cached_tokens=7, reasoning_tokens=None),
    ]


def test_usage_on_finish_chunk_and_tool_call() -> None:
    frames = [
        chunk(
            {
                "tool_calls": [
                    {
                        "id": "call_1",
                        "index": 0,
                        "type": "function",
                        "function": {"name": "bash", "arguments": '{"c":1}'},
                    }
                ]
            }
        ),
        chunk({"content": ""}, finish_reason="tool_calls", usage=USAGE),
        DONE,
    ]
    evs = events_of(decode_all(encode(frames)))
    assert evs[0] == ToolCallDelta(0, "call_1", "bash", '{"c":1}')
    assert Finish("tool_calls") in evs
    assert isinstance(evs[-1], Usage)


def test_tool_index_minus_one_falls_back_to_position() -> None:
    c = chunk(
        {"tool_calls": [{"index": -1, "function": {"name": "f", "arguments": "{}"}}]},
        finish_reason="tool_calls",
    )
    evs = parse_chunk(c)
    assert evs[0] == ToolCallDelta(0, None, "f", "{}")
    assert evs[1] == Finish("tool_calls")


def test_comments_crlf_and_event_field() -> None:
    raw = (
        b": keep-alive\r\n\r\nevent: message\r\n"
        b'data: {"choices":[]}\r\n\r\n: x\r\ndata: [DONE]\r\n\r\n'
    )
    dec = SSEDecoder()
    frames = dec.feed(raw) + dec.flush()
    assert [f.data for f in frames] == ['{"choices":[]}', "[DONE]"]
    assert frames[0].event == "message"


def test_glued_frames_are_resplit() -> None:
    a, b = json.dumps(chunk({"content": "A"})), json.dumps(chunk({"content": "B"}))
    raw = f"data: {a}data: {b}\n\ndata: [DONE]\n\n".encode()
    evs = events_of(decode_all(raw))
    assert [e for e in evs if isinstance(e, TextDelta)] == [TextDelta("A"), TextDelta("B")]


def test_done_glued_to_the_last_frame_is_resplit() -> None:
    usage = json.dumps({"choices": [], "usage": USAGE})
    assert list(split_payload(f"{usage}data: [DONE]")) == [json.loads(usage), DONE]
    assert list(split_payload(f"{usage}data:[DONE]")) == [json.loads(usage), DONE]


def test_data_colon_inside_valid_json_is_not_split() -> None:
    c = chunk({"content": 'the line was data: {"x": 1}'})
    objs = decode_all(encode([c, DONE]))
    assert events_of(objs) == [TextDelta('the line was data: {"x": 1}')]


def test_truncated_glued_frame_is_malformed() -> None:
    good = json.dumps(chunk({"content": "B"}))
    with pytest.raises(MalformedChunk):
        list(split_payload('{"id": "x", "choices": [{"delta": ' + "data: " + good))


def test_last_frame_without_blank_line_is_flushed() -> None:
    dec = SSEDecoder()
    frames = dec.feed(b'data: {"a": 1}') + dec.flush()
    assert [f.data for f in frames] == ['{"a": 1}']


def test_multibyte_utf8_split_across_chunks() -> None:
    raw = encode([chunk({"content": "héllo ✓ 你好"}), DONE])
    for cut in range(1, len(raw)):
        evs = events_of(decode_all(raw, [cut]))
        assert evs == [TextDelta("héllo ✓ 你好")]


def test_non_streamed_message_body() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "Hi", "reasoning_content": "think"},
            }
        ],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": 2,
            "total_tokens": 3,
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
    }
    assert parse_chunk(body) == [
        ReasoningDelta("think"),
        TextDelta("Hi"),
        Finish("stop"),
        Usage(1, 2, 3, None, 1),
    ]


def test_garbage_shapes_are_ignored() -> None:
    assert parse_chunk([1, 2]) == []
    assert parse_chunk({"choices": [None]}) == []
    assert parse_chunk({"choices": [{"delta": None, "finish_reason": None}]}) == []
    assert parse_chunk({"usage": {}}) == []


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=20),
    crlf=st.booleans(),
)
def test_any_chunking_gives_the_same_events(texts: list[str], cuts: list[int], crlf: bool) -> None:
    frames: list[object] = [chunk({"content": t}) for t in texts]
    frames += [chunk({"content": ""}, finish_reason="stop"), {"choices": [], "usage": USAGE}, DONE]
    raw = encode(frames, sep="\r\n" if crlf else "\n")
    whole = events_of(decode_all(raw))
    pieces = events_of(decode_all(raw, [c % (len(raw) + 1) for c in cuts]))
    assert pieces == whole
    assert "".join(e.text for e in whole if isinstance(e, TextDelta)) == "".join(texts)
