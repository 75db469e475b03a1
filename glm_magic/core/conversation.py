"""Conversation memory: the messages of consecutive ``%%glm`` cells, trimmed to fit.

One :class:`Conversation` lives per kernel (owned by the magics object). Before
each request :meth:`Conversation.messages_for` picks the system prompt, as many
of the most recent turns as fit the model's context window (leaving room for
the reply), and the new user message. Whole turns are dropped, oldest first,
so the model never sees half an exchange.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..models import MESSAGE_TOKENS, ModelInfo, estimate_tokens

__all__ = ["Conversation", "TrimResult", "Turn"]

#: Tokens per message for role markers and formatting, added to the estimate.


@dataclass
class Turn:
    """One exchange: what the user sent and what the model answered."""

    user: str
    assistant: str
    model: str = ""


@dataclass
class TrimResult:
    """The messages to send and how many earlier turns were left out."""

    messages: list[dict[str, Any]]
    dropped_turns: int
    prompt_tokens: int


def _cost(text: str) -> int:
    return estimate_tokens(text) + MESSAGE_TOKENS


@dataclass
class Conversation:
    """The turns so far and the system prompt (``None`` for none)."""

    system: str | None = None
    turns: list[Turn] = field(default_factory=list)

    def reset(self) -> None:
        """Forget every turn (the system prompt stays)."""
        self.turns.clear()

    def add(self, user: str, assistant: str, model: str = "") -> None:
        """Remember one exchange (an empty answer is not remembered)."""
        if assistant.strip():
            self.turns.append(Turn(user, assistant, model))

    def messages_for(
        self,
        user: str,
        info: ModelInfo,
        *,
        max_output: int | None = None,
        system: str | None = None,
        history: bool = True,
    ) -> TrimResult:
        """Messages for a new ``user`` prompt that fit ``info``'s context window.

        ``max_output`` is the room kept for the reply (default: the model's
        default output budget, at most a quarter of the window). When even the
        new prompt does not fit, it is sent alone and the server decides.
        """
        reserve = info.reply_reserve(max_output)
        budget = info.context_window - reserve
        system_text = system if system is not None else self.system
        head: list[dict[str, Any]] = []
        used = _cost(user)
        if system_text:
            head.append({"role": "system", "content": system_text})
            used += _cost(system_text)
        kept: list[Turn] = []
        if history:
            for turn in reversed(self.turns):
                need = _cost(turn.user) + _cost(turn.assistant)
                if used + need > budget:
                    break
                kept.append(turn)
                used += need
        kept.reverse()
        messages = list(head)
        for turn in kept:
            messages.append({"role": "user", "content": turn.user})
            messages.append({"role": "assistant", "content": turn.assistant})
        messages.append({"role": "user", "content": user})
        dropped = (len(self.turns) - len(kept)) if history else 0
        return TrimResult(messages, dropped, used)
