"""The ``glm-magic`` command line: run notebooks on disk, explain or fix their failing cells.

::

    glm-magic run NB.ipynb
    glm-magic explain NB.ipynb [-o OUT.ipynb | --in-place]
    glm-magic fix NB.ipynb [-o OUT.ipynb | --in-place] [--verify]

Every command runs the notebook in a fresh kernel with nbclient (in the
notebook's folder, every cell even after one fails; :mod:`.cli_exec`). ``explain``
and ``fix`` then ask the model about each failing cell with the prompts of
``%glm explain`` / ``%glm fix`` (:mod:`.assist`) and insert the answer directly
below the cell. The notebook written is the *executed* one, outputs kept, plus
the inserted cells. The input file is only rewritten with ``--in-place``, and
then through the conflict-checked write of :mod:`.notebook`, so a change made
to the file while it ran is never lost.

Exit status: 0 when every failing cell was handled (``run``: no cell failed),
1 when some cell failed (``run``), a request failed or was skipped, or a
verified fix still fails, 2 for usage, configuration, notebook or API errors
that stop the whole command. This module wires the pieces: the options are
in :mod:`.cli_args`, the inserted cells in :mod:`.cli_cells`, terminal output in
:mod:`.cli_report`. Nothing here imports IPython.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import Settings, resolve_settings
from ..core.conversation import Conversation
from ..core.session import Fixed, Session, Totals
from ..defaults import DEFAULT_KEY_ENV, FALLBACK_KEY_ENV
from ..errors import (
    AuthenticationError,
    BudgetError,
    ConfigError,
    ConnectError,
    GlmError,
    MissingKeyError,
    ModelNotFoundError,
    NotebookChangedError,
    PermissionDeniedError,
    QuotaError,
    StoppedError,
)
from ..notebook import LoadedNotebook, NewCell, read_notebook, same_file, write_notebook
from ..reply import CUT_BLOCK_LEFT_OUT
from .args import build_parser
from .cells import cells_for, insert_planned, mask_outputs
from .exec import CellFailure, Executed, ExecutionFailed, execute_notebook, notebook_env
from .report import Console, ConsoleRenderer, Heartbeat

__all__ = ["CliError", "build_parser", "main"]

OK, FAILED, ERROR, INTERRUPTED = 0, 1, 2, 130

#: Errors that every further request would repeat: stop asking at the first one.
_FATAL = (
    ConfigError,
    AuthenticationError,
    PermissionDeniedError,
    ModelNotFoundError,
    QuotaError,
    ConnectError,
    BudgetError,
)

#: Per failing cell to handle, the cells to insert below it.
Planned = list[tuple[CellFailure, list[NewCell]]]


class CliError(Exception):
    """A usage problem found before any work: one line, exit status 2."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # -h, --version and usage errors: report, do not exit
        return exc.code if isinstance(exc.code, int) else (ERROR if exc.code else OK)
    # Everything printed is masked, the key variables' values included: a cell's error,
    # a reply or a failing fix may hold the key (the notebook's kernel inherits it).
    key_env = getattr(args, "key_env", None) or DEFAULT_KEY_ENV
    console = Console(secrets=Settings(api_key_env=key_env).keys_to_mask())
    if args.command is None:
        parser.print_help(sys.stderr)
        return ERROR
    if args.command == "provenance":
        from .provenance import cmd_provenance

        return cmd_provenance(args, console)
    try:
        status = _cmd_run(args, console) if args.command == "run" else _assist(args, console)
    except GlmError as exc:
        console.note(f"glm-magic: {exc.one_line()}")
        return ERROR
    except (CliError, ExecutionFailed) as exc:
        console.note(f"glm-magic: {exc}")
        return ERROR
    except KeyboardInterrupt:
        console.note("glm-magic: interrupted")
        return INTERRUPTED
    return status


# --------------------------------------------------------------------------- commands


def _cmd_run(args: argparse.Namespace, console: Console) -> int:
    loaded = read_notebook(args.notebook)
    executed = _execute(copy.deepcopy(loaded.nb), loaded.path, args, console)
    _report_failures(executed, console)
    return FAILED if executed.failures else OK


def _assist(args: argparse.Namespace, console: Console) -> int:
    kind: str = args.command
    # Everything that can be refused without running anything is checked first:
    # settings and key (no network), then where the result would go.
    settings = _settings(args)
    console.add_secrets(settings.keys_to_mask())
    source = Path(args.notebook)
    target = _target(args, source, "explained" if kind == "explain" else "fixed")
    loaded = read_notebook(source)
    executed = _execute(copy.deepcopy(loaded.nb), source, args, console)
    _report_failures(executed, console)
    if not executed.failures:
        console.note(f"no cell failed: nothing to {kind}; nothing written")
        return OK
    if target is None:
        _ensure_unchanged(loaded)  # before paying for replies that could not be written

    from ..safety import key_warnings

    for warning in key_warnings(settings):
        console.note(f"glm-magic: warning: {warning}")
    planned, problems, fatal = _ask_all(kind, executed, settings, args, console)
    if not planned:
        if fatal is not None:
            raise fatal
        console.note("nothing written")
        return FAILED

    loaded.nb = executed.nb  # keep the outputs; same LoadedNotebook, so in-place stays checked
    masked = mask_outputs(loaded.nb, settings.keys_to_mask())
    if masked:
        console.note(f"masked the API key in {masked} place{'s' if masked > 1 else ''} of outputs")
    fixed = insert_planned(loaded, planned, settings.model)
    if target is not None:
        _refuse_symlink(target)  # checked again: a link may have appeared while it ran
    written = write_notebook(loaded, target, overwrite=args.force)
    count = sum(len(cells) for _, cells in planned)
    console.result(f"wrote {written} ({count} cell{'s' if count > 1 else ''} inserted)")
    if fatal is not None:
        console.note(f"glm-magic: {fatal.one_line()}")
        return ERROR
    status = FAILED if problems else OK
    if kind == "fix" and args.verify and fixed and not _verify(written, fixed, args, console):
        status = FAILED
    return status


# --------------------------------------------------------------------------- steps


def _ask_all(
    kind: str,
    executed: Executed,
    settings: Settings,
    args: argparse.Namespace,
    console: Console,
) -> tuple[Planned, int, GlmError | None]:
    """Ask about each failing cell: the cells to insert, how many went wrong, a fatal error.

    A request that fails for one cell (a cut stream, a filter) is reported and
    the others go on; an error every request would repeat (a refused key, an
    unknown model) stops the loop and is returned.
    """
    from ..core.spend import env_budget

    chosen = _choose(executed.failures, args.max_fixes)
    limit = args.budget_usd if args.budget_usd is not None else env_budget()
    totals = Totals()
    planned: Planned = []
    problems = 0
    fatal: GlmError | None = None
    # The notebook's spending limit holds the command's own requests too.
    session = Session(Fixed(settings, budget_usd=limit, budget_hint="--budget-usd N"))
    try:
        for item in executed.failures:
            label = f"{item.failure.label} {kind}"
            if item.index not in chosen:
                console.note(f"{item.failure.label}: skipped (--max-fixes {args.max_fixes})")
                problems += 1
                continue
            prepared = session.prepare_assist(kind, item.failure, settings, cells=executed.cells)
            console.note(f"{label}: asking {settings.model} about {prepared.about}")
            if prepared.notes[1:]:  # secrets masked, cells left out to fit the window
                console.note(f"{label}: " + "; ".join(prepared.notes[1:]))
            try:
                # Each cell's exchange stands alone: a conversation of its own, not kept.
                reply = session.run(
                    prepared, ConsoleRenderer(console, label), conversation=Conversation()
                )
            except StoppedError:
                raise KeyboardInterrupt from None  # only Ctrl-C stops a CLI stream
            except GlmError as exc:
                if exc.partial is not None and exc.partial.usage is not None:
                    totals.add(exc.partial)
                if isinstance(exc, _FATAL):
                    fatal = exc
                    break
                console.note(f"glm-magic: {label}: {exc.one_line()} (nothing inserted for it)")
                problems += 1
                continue
            totals.add(reply)
            console.note(f"{label}: {reply.footer()}")
            if reply.note:  # cut at the token limit: kept and written, with this line
                console.note(f"{label}: warning: {reply.note}")
            if args.show:
                console.result(f"--- {item.failure.label} ---\n{reply.text.rstrip()}\n")
            cells = cells_for(
                kind,
                item,
                reply.text,
                reply.code,
                reply.footer(),
                settings,
                note=reply.note,
                cut_code=bool(reply.cut_code),
            )
            if kind == "fix" and reply.cut_code:
                console.note(f"{label}: {CUT_BLOCK_LEFT_OUT}")
            if kind == "fix" and cells[-1].cell_type != "code":
                if not reply.cut_code:
                    console.note(f"{label}: the reply had no code block; diagnosis only")
                problems += 1
            planned.append((item, cells))
    finally:
        session.close()
    if totals.replies:
        console.note(totals.line())
    return planned, problems, fatal


def _settings(args: argparse.Namespace) -> Settings:
    settings = resolve_settings(
        base_url=args.base_url,
        model=args.model,
        api_key_env=args.key_env,
        max_tokens=args.max_tokens,
    )
    if settings.needs_key and settings.api_key is None:
        env = settings.api_key_env
        raise MissingKeyError(
            f"no API key: set the {env} environment variable (or GLM_API_KEY), or use "
            "--key-env NAME; a local endpoint such as --base-url http://127.0.0.1:8000/v1 "
            "needs none."
        )
    return settings


def _default_output(source: Path, suffix: str) -> Path:
    name = source.name
    stem = name[: -len(".ipynb")] if name.lower().endswith(".ipynb") else name
    return source.with_name(f"{stem}.{suffix}.ipynb")


def _target(args: argparse.Namespace, source: Path, suffix: str) -> Path | None:
    """Where to write (``None``: in place), refused early when it would clobber a file."""
    if args.in_place:
        return None
    target = Path(args.output) if args.output else _default_output(source, suffix)
    if same_file(target, source):
        raise CliError(f"{target} is the input notebook; pass --in-place to rewrite it")
    _refuse_symlink(target)
    if target.exists() and not args.force:
        raise CliError(f"{target} already exists; pass --force to replace it, or -o OTHER.ipynb")
    if not target.parent.is_dir():
        raise CliError(f"cannot write {target}: folder {target.parent} does not exist")
    return target


def _refuse_symlink(target: Path) -> None:
    """Refuse an output path that is a symlink (even a dangling one): it writes elsewhere."""
    if target.is_symlink():
        raise CliError(
            f"{target} is a symbolic link (to {os.readlink(target)}); refusing to write "
            "through it. Remove it, or pass -o OTHER.ipynb"
        )


def _verify_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment for the verifying kernel: no key variables, no ``GLM_*`` settings.

    The fixed cells are code a model wrote; they run unsandboxed, but at least
    without the API key in reach.
    """
    hidden = {DEFAULT_KEY_ENV, FALLBACK_KEY_ENV, getattr(args, "key_env", None) or ""}
    return {
        name: value
        for name, value in os.environ.items()
        if name not in hidden and not name.startswith("GLM_")
    }


def _execute(
    nb: Any,
    path: Path,
    args: argparse.Namespace,
    console: Console,
    env: dict[str, str] | None = None,
) -> Executed:
    console.note(f"running {path} in a {args.kernel} kernel...")
    where = [0, 0]  # the code cell running now, code cells in all: read by the heartbeat

    def on_cell(current: int, total: int) -> None:
        where[:] = [current, total]
        console.status(f"running cell {current}/{total}")

    def progress() -> str:
        current, total = where
        doing = f"running cell {current}/{total}" if current else "starting the kernel"
        return f"{doing}, {beat.elapsed:.0f} s elapsed"

    with Heartbeat(console, progress) as beat:
        executed = execute_notebook(
            nb,
            folder=path.resolve().parent,
            timeout=args.timeout,
            kernel=args.kernel,
            env=env if env is not None else notebook_env(path, args.budget_usd),
            on_cell=on_cell,
        )
    failed = len(executed.failures)
    console.note(
        f"ran {executed.code_cells} code cell{'s' if executed.code_cells != 1 else ''} "
        f"in {executed.elapsed:.1f} s: " + (f"{failed} failed" if failed else "none failed")
    )
    return executed


def _report_failures(executed: Executed, console: Console) -> None:
    for item in executed.failures:
        console.result(item.describe())
    if len(executed.failures) > 1:
        console.note(
            "note: every cell ran even after a failure, so later failures may only follow "
            "from earlier ones; fixing the first may fix the rest."
        )


def _choose(failures: list[CellFailure], limit: int) -> set[int]:
    """Positions of the failures to ask about: independent ones first, then in order."""
    ranked = sorted(failures, key=lambda f: (f.follows is not None, f.index))
    return {f.index for f in ranked[:limit]}


def _ensure_unchanged(loaded: LoadedNotebook) -> None:
    try:
        data = loaded.path.read_bytes()
    except OSError:
        data = b""
    if hashlib.sha256(data).hexdigest() != loaded.fingerprint.sha256:
        raise NotebookChangedError(
            f"{loaded.path} changed on disk while it ran (a cell or another program wrote "
            "it); nothing was written. Run again, or write elsewhere with -o OUT.ipynb."
        )


def _verify(
    written: Path, fixed: list[tuple[CellFailure, int]], args: argparse.Namespace, console: Console
) -> bool:
    """Run the written notebook again; report per fix whether its cell ran cleanly."""
    loaded = read_notebook(written)
    console.note("verifying the fixes (model-written code, run without the API key):")
    executed = _execute(copy.deepcopy(loaded.nb), written, args, console, env=_verify_env(args))
    all_good = True
    for item, pos in fixed:
        cell = executed.nb.cells[pos]
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if error is None:
            console.result(f"{item.failure.label}: fix works")
        else:
            all_good = False
            value = " ".join(str(error.get("evalue", "")).split())
            console.result(
                f"{item.failure.label}: fix still fails: {error.get('ename', 'Error')}: {value}"
            )
    return all_good


if __name__ == "__main__":
    sys.exit(main())
