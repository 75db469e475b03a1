"""Property tests: tool calls assemble exactly, however the stream is chunked.

Tool calls are generated (names, JSON argument strings with unicode and
escapes, and arbitrary non-JSON strings), their arguments split into arbitrary
fragments, the fragments of several calls interleaved the way SSE chunks can
carry them (several indexes in one chunk too), the frames encoded as SSE bytes
and cut at arbitrary byte boundaries (inside UTF-8 sequences and ``\\r\\n``
included), then decoded by the client's real parser (:mod:`glm_magic.client.sse`)
and folded by :class:`glm_magic.reply.ReplyBuilder`. The assembled
``Reply.tool_calls`` must equal the originals. The spec's ``index: -1`` quirk
(a chunk whose calls carry ``index: -1`` and already ``finish_reason``, then a
second finish chunk) is covered too.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from glm_magic.client.sse import DONE, SSEDecoder, parse_chunk, split_payload
from glm_magic.reply import Reply, ReplyBuilder

#: What st.composite and st.data() both hand out: draw a value from a strategy.
Draw = Callable[[st.SearchStrategy[Any]], Any]
USAGE = {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29}
# No lone surrogates: they cannot be sent as UTF-8 at all.
TEXT = st.characters(codec="utf-8")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(TEXT, max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(TEXT, max_size=6), inner),
    max_leaves=8,
)


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    arguments: str


@st.composite
def arguments(draw: st.DrawFn) -> str:
    """A JSON document (escaped or raw unicode) or any string at all (a model may err)."""
    if draw(st.booleans()):
        return draw(st.text(TEXT, max_size=40))
    value = {"code": draw(st.text(TEXT, max_size=30)), "extra": draw(JSON_VALUES)}
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


@st.composite
def calls(draw: st.DrawFn, max_size: int = 4) -> list[Call]:
    n = draw(st.integers(min_value=1, max_value=max_size))
    ids = draw(st.lists(st.from_regex(r"call_[A-Za-z0-9]{1,12}", fullmatch=True), min_size=n,
                        max_size=n, unique=True))  # fmt: skip
    names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True) | st.text(
        TEXT, min_size=1, max_size=10
    )
    return [Call(ids[i], draw(names), draw(arguments())) for i in range(n)]


def split(draw: Draw, text: str) -> list[str]:
    """*text* cut at arbitrary character positions (empty fragments allowed)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=6)))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def entries_of(draw: Draw, index: int, call: Call) -> list[dict[str, Any]]:
    """The ``tool_calls`` entries of one call: whole (3.B) or head plus fragments (3.C)."""
    head: dict[str, Any] = {"index": index, "id": call.id, "type": "function"}
    if draw(st.booleans()):
        return [{**head, "function": {"name": call.name, "arguments": call.arguments}}]
    parts = split(draw, call.arguments)
    # The head usually carries "" (spec 3.C); some servers put the first fragment there.
    first = parts.pop(0) if draw(st.booleans()) else ""
    entries = [{**head, "function": {"name": call.name, "arguments": first}}]
    entries += [{"index": index, "function": {"arguments": part}} for part in parts]
    return entries


def interleave(draw: Draw, streams: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Merge the per-call entry lists in an arbitrary order that keeps each list's order."""
    queues = [list(s) for s in streams if s]
    merged: list[dict[str, Any]] = []
    while queues:
        i = draw(st.integers(0, len(queues) - 1))
        merged.append(queues[i].pop(0))
        if not queues[i]:
            queues.pop(i)
    return merged


def chunk(delta: dict[str, Any], **extra: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": {"role": "assistant", **delta}}
    if "finish_reason" in extra:
        choice["finish_reason"] = extra["finish_reason"]
    body: dict[str, Any] = {"id": "req-1", "object": "chat.completion.chunk", "choices": [choice]}
    if "usage" in extra:
        body["usage"] = extra["usage"]
    return body


def encode(frames: list[Any], sep: str) -> bytes:
    text = "".join(
        f"data: {f if isinstance(f, str) else json.dumps(f, ensure_ascii=False)}{sep}{sep}"
        for f in frames
    )
    return text.encode()


def assemble(data: bytes, cuts: list[int]) -> Reply:
    """Feed *data* cut at *cuts* through the client's SSE decoder, parser and builder."""
    decoder, builder = SSEDecoder(), ReplyBuilder("glm-4.7")
    frames, pos = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        frames += decoder.feed(data[pos:cut])
        pos = cut
    frames += decoder.feed(data[pos:])
    frames += decoder.flush()
    for frame in frames:
        for obj in split_payload(frame.data):
            if obj != DONE:
                for event in parse_chunk(obj):
                    builder.add(event)
    return builder.snapshot()


def assembled(reply: Reply) -> list[Call]:
    """The reply's calls, after checking they are numbered 0, 1, ... in order."""
    assert [c.index for c in reply.tool_calls] == list(range(len(reply.tool_calls)))
    return [Call(c.id or "", c.name or "", c.arguments) for c in reply.tool_calls]


@settings(max_examples=300, deadline=None)
@given(
    originals=calls(),
    data=st.data(),
    text=st.text(TEXT, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
    crlf=st.booleans(),
    usage_on_finish=st.booleans(),
)
def test_calls_assemble_from_any_chunking(
    originals: list[Call],
    data: st.DataObject,
    text: str,
    cuts: list[int],
    crlf: bool,
    usage_on_finish: bool,
) -> None:
    streams = [entries_of(data.draw, i, call) for i, call in enumerate(originals)]
    entries = interleave(data.draw, streams)
    frames: list[Any] = [chunk({"content": piece}) for piece in split(data.draw, text) if piece]
    while entries:  # one chunk may carry entries of several indexes
        take = data.draw(st.integers(1, len(entries)))
        frames.append(chunk({"tool_calls": entries[:take]}))
        entries = entries[take:]
    finish = {"usage": USAGE} if usage_on_finish else {}
    frames.append(chunk({"content": ""}, finish_reason="tool_calls", **finish))
    if not usage_on_finish:
        frames.append({"id": "req-1", "choices": [], "usage": USAGE})
    frames.append(DONE)

    reply = assemble(encode(frames, "\r\n" if crlf else "\n"), cuts)

    assert assembled(reply) == originals
    assert reply.text == text
    assert reply.finish_reason == "tool_calls"
    assert reply.usage is not None and reply.usage.total_tokens == 29


@settings(max_examples=200, deadline=None)
@given(
    originals=calls(max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
    second_finish=st.sampled_from(["tool_calls", "stop"]),
)
def test_index_minus_one_quirk(originals: list[Call], cuts: list[int], second_finish: str) -> None:
    # Spec quirk 3: the calls arrive whole with index -1 on a chunk that already finishes.
    entries = [
        {"index": -1, "id": c.id, "type": "function",
         "function": {"name": c.name, "arguments": c.arguments}}
        for c in originals
    ]  # fmt: skip
    frames: list[Any] = [
        chunk({"content": "Let me check."}),
        chunk({"tool_calls": entries}, finish_reason="tool_calls"),
        chunk({"content": ""}, finish_reason=second_finish, usage=USAGE),
        DONE,
    ]
    reply = assemble(encode(frames, "\n"), cuts)
    assert assembled(reply) == originals
    assert reply.finish_reason == "tool_calls"  # the first finish wins
    assert reply.complete


@settings(max_examples=200, deadline=None)
@given(
    originals=calls(max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_index_minus_one_in_separate_chunks(originals: list[Call], cuts: list[int]) -> None:
    # The same quirk with each whole call in its own chunk: every call says index -1, so
    # the index cannot tell them apart; their distinct ids must.
    frames: list[Any] = [
        chunk({"tool_calls": [{"index": -1, "id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}}]})
        for c in originals
    ]  # fmt: skip
    frames += [chunk({"content": ""}, finish_reason="tool_calls", usage=USAGE), DONE]
    reply = assemble(encode(frames, "\n"), cuts)
    assert assembled(reply) == originals


@settings(max_examples=200, deadline=None)
@given(
    original=calls(max_size=1),
    data=st.data(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=20),
)
def test_fragments_with_another_id_stay_with_their_call(
    original: list[Call], data: st.DataObject, cuts: list[int]
) -> None:
    # Some servers give a call's fragments an id of their own (not the head's) and no name:
    # they continue that call, they do not start one.
    call = original[0]
    other = data.draw(st.from_regex(r"frag_[a-z0-9]{1,8}", fullmatch=True))
    head = {"index": 0, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""}}  # fmt: skip
    frames: list[Any] = [chunk({"tool_calls": [head]})]
    frames += [
        chunk({"tool_calls": [{"index": 0, "id": other, "function": {"arguments": part}}]})
        for part in split(data.draw, call.arguments)
    ]
    frames += [chunk({"content": ""}, finish_reason="tool_calls", usage=USAGE), DONE]
    assert assembled(assemble(encode(frames, "\n"), cuts)) == original
