"""The bundled endpoint's vocabulary: models, faults, per-request directives, the reply plan.

Separate from :mod:`glm_magic.testing` (the server object) and
:mod:`glm_magic.testing.server` (the HTTP handler) so both can use it
without importing each other.

A plan is a list of *deltas*, one per streamed chunk: reasoning pieces, then
answer pieces, then tool calls. A request with a non-empty ``tools`` list is
answered as an agent (:mod:`.agent_scripts`): each call is one whole delta by
default (spec 3.B), or with ``tool_stream`` (the body's ``"tool_stream": true``
or the ``tool_stream=1`` directive) a delta with ``id``/``name`` and empty
``arguments`` followed by the arguments in 4-character fragments (spec 3.C),
calls numbered by ``index`` 0, 1, ...; ids are ``call_<request id>_<index>``;
the finish reason is ``tool_calls``. Usage counts one token per text piece and,
per call, the 4-character pieces of its name and arguments (the same in every
form). A ``max_tokens`` cap applies to the text; a reply it cuts has no calls.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from . import agent_scripts, scripts

__all__ = [
    "MODELS",
    "STREAM_FAULTS",
    "Directives",
    "PlannedCall",
    "RecordedRequest",
    "ReplyPlan",
    "bearer_digest",
    "delta_tokens",
    "invalid_request",
]

#: The :class:`~glm_magic.testing.EndpointServer` a plan is built for (duck-typed:
#: that module imports this one).
EndpointServer = Any

MODELS = ("glm-5.1", "glm-5", "glm-5-turbo", "glm-4.7", "glm-4.6", "glm-4.5", "glm-4.5-air")
#: Faults that shape a 200 reply instead of replacing it with an error status.
STREAM_FAULTS = frozenset(
    {"cut", "truncate", "malformed", "glued", "sensitive", "network_error", "length"}
    | {"length_in_code", "tool_index", "error_event", "no_done", "stall"}
)
_INTS = ("tokens", "fail_times", "cut_after")
_FLOATS = ("delay", "first_byte_delay", "retry_after")
_BOOLS = ("think", "comments", "tool_stream")


@dataclass(frozen=True)
class Directives:
    """Per-request knobs parsed from the model suffix and ``X-Test-*`` headers."""

    tokens: int | None = None
    delay: float | None = None
    think: bool | None = None
    usage: str = "trailing"
    first_byte_delay: float = 0.0
    comments: bool = False
    fault: str | None = None
    fail_times: int | None = None
    retry_after: str | None = None
    cut_after: int = 5
    tool_stream: bool | None = None

    @classmethod
    def parse(cls, pairs: list[tuple[str, str]]) -> Directives:
        """Build from ``(key, value)`` pairs (later ones win); ``ValueError`` on a bad one."""
        values: dict[str, Any] = {}
        for key, raw in pairs:
            try:
                if key in _INTS or key in _FLOATS:
                    number = int(raw) if key in _INTS else float(raw)
                    if not number >= 0:  # also rejects NaN
                        raise ValueError
                    values[key] = raw if key == "retry_after" else number
                elif key in ("think", "comments", "tool_stream") and raw in (
                    "0",
                    "1",
                    "true",
                    "false",
                ):
                    values[key] = raw in ("1", "true")
                elif (key == "usage" and raw in ("finish", "trailing")) or (
                    key == "fault" and (raw in STREAM_FAULTS or scripts.error_fault(raw))
                ):
                    values[key] = raw
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f"Unknown test directive {key}={raw!r}") from None
        return cls(**values)


def invalid_request(raw: bytes, body: Any) -> str | None:
    """Return a Z.ai-style message if *body* is not a usable chat request, else ``None``."""
    if not isinstance(body, dict):
        return "The request body is not valid JSON." if raw else "The request body is empty."
    if not isinstance(body.get("model"), str) or not body["model"].split("+")[0]:
        return "The model parameter is illegal."
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
        or not any(m["role"] == "user" for m in messages)
    ):
        return "The messages parameter is illegal."
    return None


@dataclass(frozen=True)
class PlannedCall:
    """One tool call of an agent reply: its id, function name and arguments string."""

    id: str
    name: str
    arguments: str

    def whole(self, index: int) -> dict[str, Any]:
        """The call as one streamed ``tool_calls`` entry (spec 3.B)."""
        function = {"name": self.name, "arguments": self.arguments}
        return {"index": index, "id": self.id, "type": "function", "function": function}


def delta_tokens(delta: dict[str, Any]) -> tuple[int, int]:
    """``(completion tokens, reasoning tokens)`` one planned delta counts for."""
    if "reasoning_content" in delta:
        return 1, 1
    if "content" in delta:
        return 1, 0
    n = 0
    for call in delta.get("tool_calls", []):
        function = call.get("function", {})
        n += len(scripts.split_tokens(function.get("name") or ""))
        n += len(scripts.split_tokens(function.get("arguments") or ""))
    return n, 0


def _tool_deltas(calls: list[PlannedCall], fragments: bool) -> list[dict[str, Any]]:
    if not fragments:
        return [{"tool_calls": [call.whole(i)]} for i, call in enumerate(calls)]
    deltas: list[dict[str, Any]] = []
    for i, call in enumerate(calls):
        head = call.whole(i)
        head["function"] = {"name": call.name, "arguments": ""}
        deltas.append({"tool_calls": [head]})
        for part in scripts.split_tokens(call.arguments):
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
    return deltas


@dataclass
class ReplyPlan:
    """What one valid chat request produces: the deltas to stream and the chunk envelope."""

    request_id: str
    model: str
    created: int
    deltas: list[dict[str, Any]]  # one per chunk: reasoning, content, then tool calls
    prompt_tokens: int
    finish_reason: str
    thinking: bool
    delay: float
    fault: str | None  # None once fail_times is used up
    directives: Directives
    calls: list[PlannedCall]

    @classmethod
    def build(
        cls,
        owner: EndpointServer,
        body: dict[str, Any],
        model: str,
        rid: str,
        d: Directives,
        fault: str | None,
    ) -> ReplyPlan:
        """Plan the reply to *body* with the server's defaults and the directives.

        Raises :class:`~glm_magic.testing.agent_scripts.ScriptError` (a ``ValueError``)
        for a malformed ``agent-script:`` line.
        """
        messages = body["messages"]
        requested = body.get("thinking")
        # Absent means off: deterministic, whatever the real model's default is.
        thinking = isinstance(requested, dict) and requested.get("type") == "enabled"
        thinking = thinking if d.think is None else d.think
        tools = body.get("tools")
        turn = agent_scripts.agent_turn(messages) if isinstance(tools, list) and tools else None
        n = d.tokens if d.tokens is not None else owner.tokens
        if n is not None:
            text = scripts.filler_text(n)
        else:
            text = turn.text if turn is not None else scripts.reply_for(messages)
        if fault == "length_in_code":
            text = scripts.cut_in_code(text)
        pieces = [("content", p) for p in scripts.split_tokens(text)]
        if thinking:
            why = turn.reasoning if turn is not None else scripts.reasoning_for(messages)
            pieces = [("reasoning_content", p) for p in scripts.split_tokens(why)] + pieces
        finish = "length" if fault == "length_in_code" else "stop"
        cap = body.get("max_tokens")  # reasoning counts against it, as on GLM
        if cap is None:
            cap = owner.max_output  # a real server stops at the model's own maximum
        if type(cap) is int and 0 < cap < len(pieces):
            pieces, finish = pieces[:cap], "length"
        calls: list[PlannedCall] = []
        if turn is not None and finish == "stop" and turn.calls:
            calls = [
                PlannedCall(f"call_{rid}_{i}", c.name, c.arguments)
                for i, c in enumerate(turn.calls)
            ]
            finish = "tool_calls"
        deltas: list[dict[str, Any]] = [{kind: text} for kind, text in pieces]
        if fault != "tool_index":  # that fault sends the calls in its own quirky chunk
            fragments = d.tool_stream if d.tool_stream is not None else body.get("tool_stream")
            deltas += _tool_deltas(calls, fragments is True and body.get("stream") is True)
        delay = d.delay if d.delay is not None else owner.token_delay
        prompt = scripts.estimate_prompt_tokens(messages)
        return cls(
            rid, model, int(time.time()), deltas, prompt, finish, thinking, delay, fault, d, calls
        )

    def envelope(self) -> dict[str, Any]:
        """Return the fields every ``chat.completion.chunk`` repeats."""
        return {
            "id": self.request_id,
            "created": self.created,
            "object": "chat.completion.chunk",
            "model": self.model,
        }

    def usage(self, sent: list[dict[str, Any]]) -> dict[str, Any]:
        """Return the usage object for the deltas actually *sent*."""
        counts = [delta_tokens(delta) for delta in sent]
        completion = sum(c for c, _ in counts)
        reasoning = sum(r for _, r in counts)
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }


def bearer_digest(key: str) -> str:
    """The SHA-256 (hex) of ``Bearer <key>``: what :attr:`RecordedRequest.auth_digest` holds.

    Lets a test assert the exact key was sent without the key ever being logged.
    """
    return hashlib.sha256(f"Bearer {key}".encode()).hexdigest()


@dataclass
class RecordedRequest:
    """One request as the endpoint saw it, with credentials masked.

    ``headers`` has lowercase names; ``authorization`` reads ``"Bearer ***"``, and
    ``auth_digest`` is the SHA-256 (hex) of the header's exact value (``None``
    without one): compare it with :func:`bearer_digest`.
    ``outcome`` is ``"pending"`` while the reply is being written, then
    ``"completed"``, ``"client_closed"`` (the client left first), ``"fault"``
    (an injected fault fired) or ``"error"`` (a bug, or the server was closed
    mid-reply). ``chunks_sent`` counts the SSE ``data:`` frames written.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    outcome: str = "pending"
    chunks_sent: int = 0
    status: int | None = None
    request_id: str | None = None
    auth_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return asdict(self)
