"""The ``--dry-run`` report: exactly what a request would send, and what it would cost.

:func:`dry_run_report` prints every message verbatim under a role header, then
the estimated prompt tokens (the same per-message allowance the conversation
trimming uses), the reply budget and the estimated cost from catalog prices;
an unknown model says "cost unknown" rather than guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..models import MESSAGE_TOKENS, ModelInfo, estimate_cost, estimate_tokens, format_cost

__all__ = ["dry_run_report", "message_text"]

#: Tokens per message for role markers, as in ``conversation.py``.


def message_text(content: object) -> str:
    """A message's content as text; multimodal parts other than text become placeholders."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, Mapping):
                parts.append(f"[{part.get('type', 'unknown')} part]")
            else:
                parts.append(str(part))
        return "\n".join(parts)
    return str(content)


def _money(value: float) -> str:
    return format_cost(value, approx=False)


def dry_run_report(
    messages: Sequence[Mapping[str, Any]], info: ModelInfo, *, max_output: int | None
) -> str:
    """The messages that would be sent (role headers, content verbatim), tokens and cost.

    ``max_output`` is the reply cap the request would carry; ``None`` means the
    room the conversation trimming keeps (the model's default output budget,
    at most a quarter of the window).
    """
    lines = [f"Dry run: nothing was sent. {len(messages)} message(s) for {info.id}:", ""]
    prompt_tokens = 0
    for message in messages:
        text = message_text(message.get("content"))
        tokens = estimate_tokens(text) + MESSAGE_TOKENS
        prompt_tokens += tokens
        lines.append(f"----- {message.get('role', '?')} (~{tokens:,} tokens) -----")
        lines.append(text)
        lines.append("")
    reply = info.reply_reserve(max_output)
    lines.append("-----")
    lines.append(
        f"Estimated prompt: ~{prompt_tokens:,} tokens of a {info.context_window:,}-token window"
        + ("" if info.known else " (unknown model: default limits)")
        + f"; reply up to {reply:,} tokens."
    )
    if prompt_tokens + reply > info.context_window:
        lines.append("Warning: the prompt and the reply may not fit the model's window.")
    prompt_cost = estimate_cost(info, prompt_tokens, 0)
    full_cost = estimate_cost(info, prompt_tokens, reply)
    if prompt_cost is None or full_cost is None:
        lines.append(f"Estimated cost: cost unknown (no catalog prices for {info.id!r}).")
    else:
        lines.append(
            f"Estimated cost: {_money(prompt_cost)} for the prompt, up to {_money(full_cost)}"
            f" with a {reply:,}-token reply (catalog prices, USD)."
        )
    return "\n".join(lines)
