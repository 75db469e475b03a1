"""The bundled endpoint's vocabulary: models, faults, per-request directives, the reply plan.

Separate from :mod:`glm_magic.testing` (the server object) and
:mod:`glm_magic.testing.server` (the HTTP handler) so both can use it
without importing each other.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from . import scripts

__all__ = [
    "MODELS",
    "STREAM_FAULTS",
    "Directives",
    "RecordedRequest",
    "ReplyPlan",
    "bearer_digest",
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
                elif key in ("think", "comments") and raw in ("0", "1", "true", "false"):
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


@dataclass
class ReplyPlan:
    """What one valid chat request produces: token pieces and the chunk envelope."""

    request_id: str
    model: str
    created: int
    pieces: list[tuple[str, str]]  # (delta field, text), reasoning first
    prompt_tokens: int
    finish_reason: str
    thinking: bool
    delay: float
    fault: str | None  # None once fail_times is used up
    directives: Directives

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
        """Plan the reply to *body* with the server's defaults and the directives."""
        messages = body["messages"]
        requested = body.get("thinking")
        # Absent means off: deterministic, whatever the real model's default is.
        thinking = isinstance(requested, dict) and requested.get("type") == "enabled"
        thinking = thinking if d.think is None else d.think
        n = d.tokens if d.tokens is not None else owner.tokens
        text = scripts.filler_text(n) if n is not None else scripts.reply_for(messages)
        if fault == "length_in_code":
            text = scripts.cut_in_code(text)
        pieces = [("content", p) for p in scripts.split_tokens(text)]
        if thinking:
            reasoning = scripts.split_tokens(scripts.reasoning_for(messages))
            pieces = [("reasoning_content", p) for p in reasoning] + pieces
        finish = "length" if fault == "length_in_code" else "stop"
        cap = body.get("max_tokens")  # reasoning counts against it, as on GLM
        if cap is None:
            cap = owner.max_output  # a real server stops at the model's own maximum
        if type(cap) is int and 0 < cap < len(pieces):
            pieces, finish = pieces[:cap], "length"
        delay = d.delay if d.delay is not None else owner.token_delay
        prompt = scripts.estimate_prompt_tokens(messages)
        return cls(rid, model, int(time.time()), pieces, prompt, finish, thinking, delay, fault, d)

    def envelope(self) -> dict[str, Any]:
        """Return the fields every ``chat.completion.chunk`` repeats."""
        return {
            "id": self.request_id,
            "created": self.created,
            "object": "chat.completion.chunk",
            "model": self.model,
        }

    def usage(self, sent: list[tuple[str, str]]) -> dict[str, Any]:
        """Return the usage object for the pieces actually *sent*."""
        reasoning = sum(1 for kind, _ in sent if kind == "reasoning_content")
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": len(sent),
            "total_tokens": self.prompt_tokens + len(sent),
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
