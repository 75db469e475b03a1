r"""A pure Server-Sent Events decoder and the GLM chunk parser.

No I/O here: :class:`SSEDecoder` takes bytes in any chunking and returns the
``data`` payloads of complete events; :func:`parse_chunk` turns one decoded
JSON chunk into typed events. Both handle the quirks in section 3 of the spec
sheet:

- comment lines (``: keep-alive``) and unknown fields are ignored;
- ``\\r\\n``, ``\\r`` and ``\\n`` line endings all work, split anywhere;
- two frames glued on one line (``data: {...}data: {...}``) are re-split;
- ``role`` repeated on every delta, ``finish_reason`` omitted on
  intermediate chunks, usage on the finish chunk *or* in a trailing chunk
  with ``"choices": []``, a tool chunk with ``index: -1``;
- ``[DONE]`` is reported so a caller can tell a finished stream from a cut one.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..events import Event, Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage

__all__ = ["DONE", "Frame", "MalformedChunk", "SSEDecoder", "parse_chunk", "parse_usage"]

#: The payload that ends an OpenAI-style stream.
DONE = "[DONE]"

# Where a glued frame starts: "data:" followed by a JSON object or [DONE]. Only
# used on payloads that failed to parse whole, so "data: {" inside a valid
# JSON string is never split.
_GLUE = re.compile(r"data:\s*(?=\{|\[DONE\])")


@dataclass(frozen=True)
class Frame:
    """One decoded SSE event: its ``event`` name (``""`` when absent) and ``data``."""

    data: str
    event: str = ""


class MalformedChunk(ValueError):
    """A ``data`` payload that is not valid JSON even after re-splitting glued frames."""


class SSEDecoder:
    """Incremental SSE decoder: :meth:`feed` bytes, get complete frames back."""

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""  # text not yet ending in a line break
        self._data: list[str] = []
        self._event = ""
        self._last_cr = False

    def feed(self, chunk: bytes) -> list[Frame]:
        """Decode ``chunk`` and return the frames it completes."""
        return self._feed_text(self._utf8.decode(chunk))

    def flush(self) -> list[Frame]:
        """End of input: return a last frame that lacked its blank line, if any."""
        frames = self._feed_text(self._utf8.decode(b"", final=True))
        if self._pending:
            self._line(self._pending, frames)
            self._pending = ""
        if self._data:
            frames.append(Frame("\n".join(self._data), self._event))
            self._data, self._event = [], ""
        return frames

    def _feed_text(self, text: str) -> list[Frame]:
        frames: list[Frame] = []
        if not text:
            return frames
        if self._last_cr and text.startswith("\n"):
            # The "\n" of a "\r\n" split across two chunks: already handled.
            text = text[1:]
        self._last_cr = text.endswith("\r")
        text = self._pending + text
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line, frames)
        return frames

    def _line(self, line: str, frames: list[Frame]) -> None:
        if not line:
            if self._data:
                frames.append(Frame("\n".join(self._data), self._event))
            self._data, self._event = [], ""
            return
        if line.startswith(":"):
            return
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value


def split_payload(data: str) -> Iterator[Any]:
    """Yield the JSON objects in one ``data`` payload, or ``DONE``.

    A payload is normally one JSON document. GLM-4.7/5.1 sometimes glue the
    next frame onto the line (``{...}data: {...}``); then each piece is parsed
    on its own. Raises :class:`MalformedChunk` when a piece is not JSON.
    """
    data = data.strip()
    if data == DONE:
        yield DONE
        return
    try:
        yield json.loads(data)
        return
    except ValueError:
        pass
    pieces = [p.strip() for p in _GLUE.split(data)]
    parsed: list[Any] = []
    bad = 0
    for piece in pieces:
        if not piece:
            continue
        if piece == DONE:
            parsed.append(DONE)
            continue
        try:
            parsed.append(json.loads(piece))
        except ValueError:
            bad += 1
    if bad or not parsed:
        raise MalformedChunk(f"malformed stream chunk: {data[:80]!r}")
    yield from parsed


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def parse_usage(raw: Any) -> Usage | None:
    """Turn a ``usage`` object into :class:`Usage` (``None`` when absent or empty)."""
    if not isinstance(raw, dict) or not raw:
        return None
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
    reasoning = (
        completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else None
    )
    prompt, completion = _int(raw.get("prompt_tokens")), _int(raw.get("completion_tokens"))
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=_int(raw.get("total_tokens")) or prompt + completion,
        cached_tokens=cached if isinstance(cached, int) else None,
        reasoning_tokens=reasoning if isinstance(reasoning, int) else None,
    )


def _tool_deltas(raw: Any) -> Iterator[ToolCallDelta]:
    if not isinstance(raw, list):
        return
    for position, call in enumerate(raw):
        if not isinstance(call, dict):
            continue
        index = call.get("index")
        # glm-4.5-flash sends index -1 (quirk 3): fall back to the list position.
        if not isinstance(index, int) or index < 0:
            index = position
        raw_function = call.get("function")
        function: dict[str, Any] = raw_function if isinstance(raw_function, dict) else {}
        arguments = function.get("arguments")
        yield ToolCallDelta(
            index=index,
            id=call.get("id") if isinstance(call.get("id"), str) else None,
            name=function.get("name") if isinstance(function.get("name"), str) else None,
            arguments=arguments if isinstance(arguments, str) else "",
        )


def parse_chunk(chunk: Any) -> list[Event]:
    """Turn one decoded chunk (streamed ``delta`` or whole ``message``) into events.

    Usage comes last so a consumer sees the finish reason and then the counts,
    whichever chunk carried them.
    """
    events: list[Event] = []
    if not isinstance(chunk, dict):
        return events
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            message = choice.get("message")
            delta = message if isinstance(message, dict) else {}
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            events.append(ReasoningDelta(reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            events.append(TextDelta(content))
        events.extend(_tool_deltas(delta.get("tool_calls")))
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            events.append(Finish(reason))
    usage = parse_usage(chunk.get("usage"))
    if usage is not None:
        events.append(usage)
    return events
