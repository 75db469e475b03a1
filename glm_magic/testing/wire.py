"""What the test endpoint puts on the wire: JSON bodies, SSE frames, a masked header log.

Helpers for :mod:`glm_magic.testing.server`, kept apart so the handler stays
about routing and timing: compact JSON, Z.ai error bodies, ``chat.completion``
chunks, the non-streamed ``message`` (tool calls included) assembled from the
planned deltas, and :class:`SseWriter`, which sends each ``data:`` frame as one
flushed HTTP chunk (or glues frame pairs onto one line, spec quirk 4).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .plan import ReplyPlan

__all__ = ["SseWriter", "chunk", "dumps", "error_body", "masked", "message"]


def dumps(obj: Any) -> str:
    """Compact JSON, non-ASCII kept as is (as GLM servers send it)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def error_body(code: str, message: str) -> dict[str, Any]:
    """A Z.ai error body: ``{"error": {"code": <string>, "message": ...}}``."""
    return {"error": {"code": code, "message": message}}


def chunk(gen: ReplyPlan, choice: dict[str, Any], usage: dict[str, Any] | None = None) -> str:
    """One ``chat.completion.chunk`` payload with *choice* (and *usage* when given)."""
    extra = {"usage": usage} if usage else {}
    return dumps({**gen.envelope(), "choices": [choice], **extra})


def message(gen: ReplyPlan, sent: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-streamed ``message`` for the deltas *sent*: text, thinking and tool calls.

    Calls are joined by ``index`` from their deltas (spec section 2 has no
    ``index`` on them); ``content`` is ``null`` when a reply with calls has no text.
    """
    text = "".join(d.get("content", "") for d in sent)
    calls: dict[int, dict[str, Any]] = {}
    for delta in sent:
        for part in delta.get("tool_calls", []):
            call = calls.setdefault(
                part["index"], {"id": "", "type": "function", "function": {"name": ""}}
            )
            call["id"] = part.get("id") or call["id"]
            function = part.get("function", {})
            call["function"]["name"] = function.get("name") or call["function"]["name"]
            arguments = call["function"].get("arguments", "") + function.get("arguments", "")
            call["function"]["arguments"] = arguments
    out: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if gen.thinking:
        out["reasoning_content"] = "".join(d.get("reasoning_content", "") for d in sent)
    if calls:
        out["tool_calls"] = [calls[i] for i in sorted(calls)]
    return out


def masked(headers: dict[str, str]) -> dict[str, str]:
    """Lowercase header names; replace credentials so the log can be shown anywhere."""
    out = {name.lower(): value for name, value in headers.items()}
    if "authorization" in out:
        out["authorization"] = "Bearer ***"
    for name in ("x-api-key", "api-key", "proxy-authorization"):
        if name in out:
            out[name] = "***"
    return out


class SseWriter:
    """Writes ``data:`` frames as HTTP chunks, one flushed write per event.

    *write* sends raw bytes (raising to end the reply when the client left);
    *count* is told how many frames each write carried.
    """

    def __init__(
        self,
        write: Callable[[bytes], None],
        count: Callable[[int], None],
        *,
        glue: bool,
        comments: bool,
    ) -> None:
        self._write, self._count = write, count
        self._glue, self._comments = glue, comments
        self._pending: str | None = None
        self._first = True

    def frame(self, payload: str, *, glue: bool = True) -> None:
        """Send one ``data:`` frame (held back when it is the first of a glued pair)."""
        data = f"data: {payload}"
        if self._glue and glue:
            # Spec quirk 4: the next frame starts right after the previous JSON.
            if self._pending is None:
                self._pending = data
                return
            data, self._pending = self._pending + data, None
            self._send(data + "\n\n", 2)
            return
        self.flush()
        self._send(data + "\n\n", 1)

    def flush(self) -> None:
        """Send a frame held back for gluing, if any."""
        if self._pending is not None:
            data, self._pending = self._pending, None
            self._send(data + "\n\n", 1)

    def end(self) -> None:
        """Send the terminating zero-length HTTP chunk."""
        self._write(b"0\r\n\r\n")

    def _send(self, text: str, frames: int) -> None:
        if self._comments and not self._first:
            text = ": keep-alive\n\n" + text
        self._first = False
        data = text.encode()
        self._write(b"%x\r\n%s\r\n" % (len(data), data))
        self._count(frames)
