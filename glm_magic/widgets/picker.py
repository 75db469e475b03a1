"""What the panel's pickers offer and what a choice costs: models and notebook context.

Pure functions (no widgets), so they are tested without a frontend:

- :func:`model_choices` joins the endpoint's ``GET /models`` with the catalog;
- :func:`context_spec` turns the context picker's fields into a spec for
  :func:`glm_magic.context.parse_spec` (``none``, ``error``, ``last:N``,
  ``notebook``, ``vars:a,b``);
- :func:`preview_context` builds that context the way a send would and says
  what it costs (:class:`ContextPreview`), so the user sees it before sending.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..masking_names import SecretText
from ..models import CATALOG, ModelInfo, estimate_cost, estimate_tokens, format_cost

if TYPE_CHECKING:
    from ..reply import Reply

__all__ = [
    "CONTEXT_CHOICES",
    "ContextPreview",
    "add_to_totals",
    "context_budget",
    "context_spec",
    "model_choices",
    "model_facts",
    "new_totals",
    "preview_context",
    "spec_to_choice",
    "totals_line",
]

#: The context picker: (label, key).
CONTEXT_CHOICES: tuple[tuple[str, str], ...] = (
    ("no context", "none"),
    ("last error", "error"),
    ("last N cells", "last"),
    ("whole notebook", "notebook"),
    ("variables", "vars"),
)


def model_choices(served: Sequence[str] | None, current: str) -> list[str]:
    """Model ids for the picker: what the endpoint serves, else the catalog; ``current`` first.

    The endpoint's list wins when there is one (a catalog model it does not
    serve would only fail); catalog facts are shown beside the chosen id.
    """
    ids = list(served) if served else list(CATALOG)
    ordered = [current] if current else []
    ordered += [m for m in ids if m != current]
    return ordered


def _price(value: float | None) -> str:
    if value is None:
        return "?"
    return "free" if value == 0 else f"${value:.2f}"


def model_facts(info: ModelInfo) -> str:
    """One line of catalog facts: window, thinking, prices."""
    if not info.known:
        return f"{info.id}: not in the catalog (assuming a {info.context_window // 1024}K window)"
    return (
        f"{info.id}: {info.context_window // 1000}K window, thinking {info.thinking}, "
        f"{_price(info.price_input)} in / {_price(info.price_output)} out per 1M tokens"
    )


def context_spec(choice: str, last_n: int = 3, names: str = "") -> str:
    """The context spec for the picker's fields (``ValueError`` on bad variable names)."""
    if choice == "error":
        return "error"
    if choice == "last":
        return f"last:{max(1, int(last_n))}"
    if choice == "notebook":
        return "notebook"
    if choice == "vars":
        wanted = [n for n in re.split(r"[\s,]+", names) if n]
        bad = [n for n in wanted if not n.isidentifier()]
        if bad:
            raise ValueError(f"not a variable name: {bad[0]!r}")
        return "vars:" + ",".join(wanted) if wanted else "none"
    return "none"


def spec_to_choice(spec: str) -> tuple[str, int, str]:
    """The picker's fields for a simple spec (``ValueError`` for one it cannot show)."""
    words = spec.strip().split()
    if not words or words == ["none"]:
        return "none", 3, ""
    if len(words) == 1:
        word = words[0]
        key, _, value = word.partition(":")
        if word in ("error", "notebook"):
            return word, 3, ""
        if key == "last" and (value.isdigit() or not value):
            return "last", int(value or 1), ""
        if key in ("vars", "var", "variables") and value:
            return "vars", 3, value.replace(",", ", ")
    raise ValueError(
        f"the panel's context picker shows one of none, error, last:N, notebook, vars:a,b; "
        f"not {spec!r}"
    )


def context_budget(info: ModelInfo, max_tokens: int | None, system: str, prompt: str) -> int:
    """Tokens the context may use: the session's one rule (the preview is what is sent)."""
    from ..core.session import context_budget as budget

    return budget(info, max_tokens, estimate_tokens(system + prompt))


@dataclass
class ContextPreview:
    """A built context and what it costs, for the line under the picker."""

    spec: str
    text: str = ""
    tokens: int = 0
    cost: float | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""

    def line(self) -> str:
        """``Context: last error · ~312 tokens · ~$0.0002`` (or why it failed)."""
        if self.error:
            return f"Context: {self.error}"
        if self.spec == "none":
            return "Context: none (only this chat's turns are sent)"
        cost = "cost unknown" if self.cost is None else format_cost(self.cost)
        line = f"Context: {self.spec} · ~{self.tokens:,} tokens · {cost}"
        if self.notes:
            line += " · " + "; ".join(self.notes)
        return line


def preview_context(
    shell: Any,
    spec: str,
    info: ModelInfo,
    *,
    max_tokens: int | None,
    system: str,
    prompt: str = "",
    mask: bool = True,
    secrets: Iterable[SecretText] = (),
) -> ContextPreview:
    """Build the context ``spec`` selects, as a send would, priced at ``info``'s input rate."""
    preview = ContextPreview(spec)
    if spec == "none":
        return preview
    from ..context import build_context, parse_spec
    from ..errors import GlmError

    try:
        block = build_context(
            shell,
            parse_spec(spec),
            budget_tokens=context_budget(info, max_tokens, system, prompt),
            mask=mask,
            secrets=list(secrets),
        )
    except GlmError as exc:
        preview.error = exc.one_line()
        return preview
    preview.text = block.text
    preview.tokens = block.tokens
    preview.notes = list(block.notes)
    preview.cost = estimate_cost(info, block.tokens, 0)
    return preview


def new_totals() -> dict[str, Any]:
    """Running totals for a session of replies (see :func:`add_to_totals`)."""
    return {"replies": 0, "prompt": 0, "completion": 0, "cost": 0.0, "priced": 0, "unmetered": 0}


def add_to_totals(totals: dict[str, Any], reply: Reply) -> None:
    """Count one reply: its tokens and cost when the server reported usage."""
    totals["replies"] += 1
    if reply.usage is None:
        # Stopped or cut before the usage chunk: billed, but we cannot say how much.
        totals["unmetered"] += 1
        return
    totals["prompt"] += reply.usage.prompt_tokens
    totals["completion"] += reply.usage.completion_tokens
    cost = reply.cost
    if cost is not None:
        totals["cost"] += cost
        totals["priced"] += 1


def totals_line(totals: dict[str, Any]) -> str:
    """``Session: 3 replies · 1,234 in / 567 out tokens · ~$0.0012``."""
    n = totals["replies"]
    if not n:
        return "Session: no replies yet"
    metered = n - totals["unmetered"]
    if not totals["priced"]:
        cost = "cost unknown"
    else:
        cost = format_cost(totals["cost"])
        if totals["priced"] < metered:
            cost += f" ({metered - totals['priced']} without a known price)"
    line = (
        f"Session: {n} repl{'ies' if n != 1 else 'y'} · "
        f"{totals['prompt']:,} in / {totals['completion']:,} out tokens · {cost}"
    )
    if totals["unmetered"]:
        u = totals["unmetered"]
        line += f" · {u} stopped or cut repl{'ies' if u != 1 else 'y'} without usage"
    return line
