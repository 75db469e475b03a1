"""The ``%glm`` sub-commands: key, reset, history, models, config, cost.

Each ``cmd_NAME(magics, args)`` takes the loaded :class:`~glm_magic.ipython.magics.GlmMagics`
and the words after the sub-command. They print or display their result and
raise IPython's ``UsageError`` (one line) on bad input.
"""

from __future__ import annotations

import sys
from typing import Any

from IPython.core.error import UsageError

from ..errors import ConfigError, GlmError
from ..markdown import escape_text

#: The loaded :class:`~glm_magic.ipython.magics.GlmMagics` (duck-typed: it imports this module).
GlmMagics = Any

__all__ = [
    "COMMANDS",
    "cmd_config",
    "cmd_cost",
    "cmd_history",
    "cmd_key",
    "cmd_models",
    "cmd_reset",
]

#: Sub-command names and their one-line help, in the order ``%glm help`` shows them.
COMMANDS: dict[str, str] = {
    "key": "enter the API key with a hidden prompt (kept for this kernel only)",
    "reset": "forget the conversation",
    "history": "show the conversation so far",
    "models": "the endpoint's models with context window, thinking and prices",
    "config": "the effective settings (the key is never shown)",
    "cost": "spend in this kernel by model, the spending limit, and what replays saved",
    "explain": "[N] explain the last failure (or In [N]'s): root cause first",
    "fix": "[N] [--replace] diagnose the last failure; insert the fix below (or show a diff)",
    "insert": "[--file PATH] [--after CELL_ID] write the last reply's code into a notebook file",
    "panel": "[-m MODEL] [--context SPEC] show a chat panel (widgets) in this cell's output",
    "buttons": "on|off: Explain / Fix buttons under failing cells",
    "bridge": "whether the notebook bridge (JupyterLab 4 / Notebook 7 extension) is on",
    "agent": "[--yes] [--max-steps N] [--budget USD] TASK: work through a task with tools",
}


def handler(name: str) -> Any:
    """The function behind ``%glm NAME``, or ``None`` for an unknown name."""
    if name not in COMMANDS:
        return None
    # Sub-commands of other modules are imported only when used (the widgets are heavy).
    if name in ("explain", "fix", "insert"):
        from . import assist_commands

        return getattr(assist_commands, f"cmd_{name}")
    if name in ("panel", "buttons"):
        from . import widget_commands

        return getattr(widget_commands, f"cmd_{name}")
    if name == "bridge":
        from . import bridge_ops

        return bridge_ops.cmd_bridge
    if name == "agent":
        from . import agent_commands

        return agent_commands.cmd_agent
    return globals().get(f"cmd_{name}")


def _no_args(name: str, args: list[str]) -> None:
    if args:
        raise UsageError(
            f"%glm {name} takes no arguments (got {' '.join(args)!r}); usage: %glm {name}"
        )


def cmd_key(magics: GlmMagics, args: list[str]) -> None:
    """Ask for the key with a hidden prompt; never take it from the line."""
    if args:
        # A key typed on the line would be saved in the notebook: refuse it.
        raise UsageError(
            "%glm key takes no arguments: run it alone and paste the key at the hidden "
            "prompt; usage: %glm key"
        )
    import getpass

    from ..config import set_session_key

    try:
        where = magics.settings().shown_base_url
    except UsageError:  # a bad base URL must not stop the key from being entered
        where = "the endpoint"
    value = getpass.getpass(f"API key for {where} (hidden, kept for this kernel): ")
    try:
        set_session_key(value)
    except ConfigError as exc:
        raise UsageError(exc.one_line()) from None
    print("Key stored for this kernel session only; it is not saved anywhere.")


def cmd_reset(magics: GlmMagics, args: list[str]) -> None:
    """Forget the conversation."""
    _no_args("reset", args)
    n = len(magics.conversation.turns)
    magics.conversation.reset()
    print(f"Conversation reset ({n} turn{'s' if n != 1 else ''} forgotten).")


def _short(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def cmd_history(magics: GlmMagics, args: list[str]) -> None:
    """Print the conversation, one short line per message."""
    _no_args("history", args)
    turns = magics.conversation.turns
    if not turns:
        print("The conversation is empty.")
        return
    for i, turn in enumerate(turns, 1):
        print(f"[{i}] you: {_short(turn.user)}")
        print(f"[{i}] {turn.model or 'model'}: {_short(turn.assistant)}")


def _price(value: float | None) -> str:
    if value is None:
        return "?"
    return "free" if value == 0 else f"${value:.2f}"


def models_table(served: list[str] | None) -> list[list[str]]:
    """Rows for ``%glm models``: served ids (or the catalog) joined with catalog facts."""
    from ..models import CATALOG, model_info

    ids = served if served is not None else list(CATALOG)
    rows = []
    for model_id in ids:
        info = model_info(model_id)
        rows.append(
            [
                model_id,
                f"{info.context_window // 1000}K" if info.known else "?",
                f"{info.max_output // 1024}K" if info.known else "?",
                info.thinking if info.known else "?",
                "yes" if info.vision else ("no" if info.known else "?"),
                f"{_price(info.price_input)} / {_price(info.price_output)}",
            ]
        )
    return rows


def cmd_models(magics: GlmMagics, args: list[str]) -> Any:
    """Show ``GET /models`` joined with the catalog, as a Markdown table."""
    _no_args("models", args)
    settings = magics.settings()
    note = ""
    from ..safety import key_warnings

    for warning in key_warnings(settings):
        print(f"⚠ {warning}", file=sys.stderr)
    try:
        served: list[str] | None = magics.client(settings).list_models()
    except ConfigError as exc:
        raise UsageError(exc.one_line()) from None
    except GlmError as exc:
        served, note = (
            None,
            f"Could not list the endpoint's models ({exc.one_line()}); catalog shown.",
        )
    header = ["model", "context", "max out", "thinking", "vision", "$ in / out per 1M"]
    rows = models_table(served)
    # Model ids come from the server and prices hold "$": every cell is escaped
    # (glm_magic.markdown.escape_text), so nothing becomes HTML, markup or math.
    md = "| " + " | ".join(map(escape_text, header)) + " |\n|" + "---|" * len(header) + "\n"
    md += "\n".join("| " + " | ".join(map(escape_text, r)) + " |" for r in rows)
    plain = "\n".join("  ".join(f"{c:<14}" for c in r) for r in [header, *rows])
    if note:
        md, plain = f"{escape_text(note)}\n\n{md}", f"{note}\n{plain}"
    from IPython.display import display

    display({"text/markdown": md, "text/plain": plain}, raw=True)
    return None


def cmd_config(magics: GlmMagics, args: list[str]) -> None:
    """Print the effective settings; the key only as set / not set."""
    _no_args("config", args)
    s = magics.settings()
    key = (
        "set" if s.api_key is not None else ("not needed (local)" if not s.needs_key else "NOT SET")
    )
    lines = [
        f"base_url        {s.shown_base_url}",
        f"model           {s.model}",
        f"api key         {key}",
        f"timeouts        connect {s.connect_timeout:g} s, read {s.read_timeout:g} s",
        f"retries         {s.max_retries}",
        f"in flight       at most {s.max_concurrent or 'any number'} per endpoint",
        f"temperature     {s.temperature if s.temperature is not None else 'server default'}",
        f"max_tokens      {s.max_tokens if s.max_tokens is not None else 'server default'}",
        f"thinking        {s.thinking if s.thinking is not None else 'model default'}",
        f"conversation    {len(magics.conversation.turns)} turns",
        f"cache           {_cache_line(magics)}",
        f"budget          {_budget_line(magics)}",
    ]
    print("\n".join(lines))


def _cache_line(magics: GlmMagics) -> str:
    try:
        mode = magics.session.cache_mode()
    except ConfigError as exc:
        return exc.one_line()
    from ..core.store import cache_dir

    return f"{mode} (store in {cache_dir()})"


def _budget_line(magics: GlmMagics) -> str:
    limit = magics.session.policy.budget_usd
    spent = magics.session.totals.cost
    return f"none (~${spent:.4f} spent)" if limit is None else f"${limit:.4f} (~${spent:.4f} spent)"


def cmd_cost(magics: GlmMagics, args: list[str]) -> None:
    """Print what this kernel's requests cost by model, the limit, and what replays saved."""
    _no_args("cost", args)
    totals = magics.session.totals
    lines = [f"spent ~${totals.cost:.4f} on {totals.replies} request(s) in this kernel"]
    for model, cost in sorted(totals.by_model.items(), key=lambda item: -item[1]):
        lines.append(f"  {model}: ~${cost:.4f}")
    if totals.unpriced:
        lines.append(f"  {totals.unpriced} reply(ies) of unknown cost not counted")
    limit = magics.session.policy.budget_usd
    lines.append(
        "limit: none (%config GlmMagics.budget_usd = N sets one)"
        if limit is None
        else f"limit: ${limit:.4f} (${max(limit - totals.cost, 0.0):.4f} left)"
    )
    lines.append(
        f"replayed {totals.replayed} answer(s) with no request, saving ~${totals.saved:.4f}"
    )
    print("\n".join(lines))
