"""What a session has spent, what replays saved, and where the spending limit comes from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..reply import Reply

__all__ = ["BUDGET_ENV", "BUDGET_HINT", "Totals", "env_budget"]

#: The spending limit's environment variable (USD), for CI and the command line.
BUDGET_ENV = "GLM_MAGIC_BUDGET_USD"
#: How the budget refusal says to raise the limit.
BUDGET_HINT = f"%config GlmMagics.budget_usd = N (or ${BUDGET_ENV})"


def env_budget() -> float | None:
    """The limit in ``$GLM_MAGIC_BUDGET_USD`` (``None``: unset or not a number)."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


@dataclass
class Totals:
    """Tokens and cost over a session's replies (complete or partial), and what replays saved."""

    replies: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    #: Replies whose cost is unknown (stopped before usage, or a model without prices).
    unpriced: int = 0
    #: Replayed replies (no request made) and what they cost when first answered.
    replayed: int = 0
    saved: float = 0.0
    #: Spend by model (USD, requests made in this session only).
    by_model: dict[str, float] = field(default_factory=dict)

    def add(self, reply: Reply) -> None:
        """Count one reply (a replayed one costs nothing: it counts as saved)."""
        if reply.replayed:
            self.replayed += 1
            self.saved += reply.cost or 0.0
            return
        self.replies += 1
        if reply.usage is not None:
            self.prompt_tokens += reply.usage.prompt_tokens
            self.completion_tokens += reply.usage.completion_tokens
        cost = reply.cost
        if cost is None:
            self.unpriced += 1
        else:
            self.cost += cost
            self.by_model[reply.model] = self.by_model.get(reply.model, 0.0) + cost

    def line(self) -> str:
        """``total: 2 replies · 1,200 in / 300 out tokens · ~$0.0030`` (and replays, if any)."""
        from ..models import format_cost

        plural = "y" if self.replies == 1 else "ies"
        parts = [
            f"total: {self.replies} repl{plural}",
            f"{self.prompt_tokens:,} in / {self.completion_tokens:,} out tokens",
        ]
        if self.unpriced:
            parts.append("cost unknown (model not in the price list)")
        else:
            parts.append(format_cost(self.cost))
        if self.replayed:
            parts.append(f"{self.replayed} replayed, {format_cost(self.saved)} saved")
        return " · ".join(parts)
