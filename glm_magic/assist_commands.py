"""``%glm explain``, ``%glm fix`` and ``%glm insert``: acting on failures and replies.

``explain`` and ``fix`` stream an answer about the last failure (or cell N's)
captured by :mod:`glm_magic.hooks`, sending the failing source, its cleaned
traceback and the earlier cells that define the names it uses
(:mod:`glm_magic.assist`). ``fix`` then inserts the corrected code as a new
cell below (:mod:`glm_magic.cells`). Neither ever runs generated code.
``insert`` writes a reply's code into a notebook file on disk.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .errors import GlmError

if TYPE_CHECKING:
    from .assist import AssistPrompt
    from .config import Settings
    from .hooks import Failure
    from .magics import GlmMagics
    from .reply import Reply

__all__ = ["cmd_explain", "cmd_fix", "cmd_insert", "raw_cells"]


def raw_cells(shell: Any) -> dict[int, str]:
    """Execution count -> raw source of every cell run so far."""
    raw = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None) or []
    return {n: src for n, src in enumerate(raw) if n > 0 and isinstance(src, str) and src.strip()}


def _failure(magics: GlmMagics, args: list[str], name: str) -> tuple[Failure, list[str]]:
    from .hooks import failure_log

    shell: Any = magics.shell
    log = failure_log(shell)
    rest = list(args)
    number: int | None = None
    if rest and rest[0].lstrip("[").rstrip("]").isdigit():
        number = int(rest.pop(0).lstrip("[").rstrip("]"))
    if number is not None:
        failure = log.get(number)
        if failure is None:
            raise UsageError(f"In [{number}] did not fail (or failed before glm_magic was loaded)")
    else:
        failure = log.last()
        if failure is None:
            raise UsageError(f"no failed cell yet: run the failing cell, then %glm {name}")
    return failure, rest


def _options(name: str, rest: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"%glm {name}", add_help=False, exit_on_error=False)
    parser.add_argument("-m", "--model")
    parser.add_argument("-o", "--out")
    parser.add_argument("--no-insert", action="store_true")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run")
    parser.add_argument("-c", "--context", action="append")
    try:
        return parser.parse_args(rest)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise UsageError(
            f"%glm {name}: {exc}; usage: %glm {name} [N] [-m MODEL] [-o NAME] [-c SPEC] [--dry-run]"
        ) from None


def _add_context(
    magics: GlmMagics, prompt: AssistPrompt, spec: list[str], settings: Settings
) -> list[str]:
    """Append the user's ``--context`` to an explain/fix prompt, within the window."""
    from .context import build_context, parse_spec
    from .errors import ConfigError
    from .models import estimate_tokens, model_info

    try:
        parsed = parse_spec(spec)
    except ConfigError as exc:
        raise UsageError(exc.one_line()) from None
    if parsed.empty:
        return []
    info = model_info(settings.model)
    reserve = info.reply_reserve(settings.max_tokens)
    used = estimate_tokens(prompt.system) + estimate_tokens(prompt.user)
    block = build_context(
        magics.shell,
        parsed,
        budget_tokens=max(info.context_window - reserve - used - 64, 0),
        mask=magics.mask_secrets,
        secrets=settings.keys_to_mask(),
        current_count=getattr(magics.shell, "execution_count", None),
    )
    if block.text:
        prompt.user += f"\n\n### More context the user selected\n\n{block.text}"
    return [f"context: ~{block.tokens:,} tokens", *block.notes]


def _assist(magics: GlmMagics, kind: str, args: list[str]) -> Reply | None:
    from .assist import build_assist_prompt, describe
    from .models import model_info

    failure, rest = _failure(magics, args, kind)
    opts = _options(kind, rest)
    if opts.out is not None and not opts.out.isidentifier():
        raise UsageError(f"-o needs a Python name, not {opts.out!r}")
    settings = magics.settings(model=opts.model)
    prompt = build_assist_prompt(
        kind,
        failure,
        raw_cells(magics.shell),
        model_info(settings.model),
        mask=magics.mask_secrets,
        secrets=settings.keys_to_mask(),
        reserve=settings.max_tokens,
    )
    extra: list[str] = []
    if opts.context:
        extra = _add_context(magics, prompt, opts.context, settings)
    if opts.dry_run:
        from .config import without_keys
        from .context import dry_run_report

        messages = without_keys(prompt.messages(), settings)
        print(dry_run_report(messages, model_info(settings.model), max_output=None))
        return None
    notes = [f"{kind}: {describe(prompt, failure)}", *prompt.notes, *extra]
    verb = "Explain" if kind == "explain" else "Fix"
    return magics.run_messages(
        prompt.messages(),
        settings,
        remember_as=f"{verb} the failure in {failure.label}: {prompt.summary}",
        out=opts.out,
        insert=kind == "fix" and not opts.no_insert,
        notes=notes,
    )


def cmd_explain(magics: GlmMagics, args: list[str]) -> None:
    """Stream an explanation of the last failure (or of cell N's)."""
    _assist(magics, "explain", args)


def cmd_fix(magics: GlmMagics, args: list[str]) -> None:
    """Stream a diagnosis and corrected code, then insert it as a new cell below."""
    _assist(magics, "fix", args)


def cmd_insert(magics: GlmMagics, args: list[str]) -> None:
    """Write the last reply's code (or ``--reply NAME``'s) into a notebook file."""
    parser = argparse.ArgumentParser(prog="%glm insert", add_help=False, exit_on_error=False)
    parser.add_argument("--file", "-f")
    parser.add_argument("--after")
    parser.add_argument("--reply", "-r")
    try:
        opts = parser.parse_args(args)
    except (argparse.ArgumentError, SystemExit) as exc:
        raise UsageError(
            f"%glm insert: {exc}; usage: %glm insert [--file PATH] [--after CELL_ID] [--reply NAME]"
        ) from None
    from .reply import Reply

    shell: Any = magics.shell
    reply = shell.user_ns.get(opts.reply) if opts.reply else magics.last_reply
    if not isinstance(reply, Reply):
        what = f"{opts.reply!r} is not a glm reply" if opts.reply else "no reply yet"
        raise UsageError(f"%glm insert: {what}; use %%glm -o NAME, then --reply NAME")
    if not reply.code.strip():
        raise UsageError("%glm insert: the reply has no code block")
    from .notebook import describe_missing_path, find_notebook_path, insert_code_after

    after = opts.after
    path = opts.file
    if path is None:
        found = find_notebook_path(shell.user_ns)
        if found is None:
            raise UsageError(f"%glm insert: {describe_missing_path()}")
        path = str(found.path)
        if after is None:
            from .hooks import _cell_id

            after = _cell_id(shell)
    try:
        new_id = insert_code_after(path, reply.code, model=reply.model, after_cell_id=after)
    except GlmError as exc:
        raise UsageError(f"%glm insert: {exc.one_line()}") from None
    where = f"after cell {after}" if after else "at the end"
    print(f"Inserted the code as a new cell {where} of {path} (id {new_id}).")
    print("If the notebook is open, reload it from disk to see the cell.")
