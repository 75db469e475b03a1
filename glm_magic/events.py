"""Typed events produced by a chat completion, streamed or not.

The client turns every SSE chunk (or a whole non-streamed body) into these
small immutable values; everything downstream - the reply builder, renderers,
the panel - consumes only these, never raw JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = [
    "Event",
    "Finish",
    "ReasoningDelta",
    "RequestId",
    "TextDelta",
    "ToolCallDelta",
    "Usage",
    "Waiting",
]


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer text."""

    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    """A piece of the model's thinking (``reasoning_content``), kept apart from the answer."""

    text: str


@dataclass(frozen=True)
class ToolCallDelta:
    """A piece of a tool call; ``arguments`` pieces concatenate by ``index``."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the server."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


@dataclass(frozen=True)
class Finish:
    """The server said why the reply ended (``stop``, ``length``, ``sensitive``...)."""

    reason: str


@dataclass(frozen=True)
class RequestId:
    """The server's id for this request (a response header or the first chunk's ``id``)."""

    request_id: str


@dataclass(frozen=True)
class Waiting:
    """The request waits for another reply to the same endpoint to finish (or stopped waiting).

    Sent by the client, not the server: every surface shows it in its placeholder.
    """

    waiting: bool


Event = Union[TextDelta, ReasoningDelta, ToolCallDelta, Usage, Finish, RequestId, Waiting]  # noqa: UP007 - a runtime alias on 3.10
