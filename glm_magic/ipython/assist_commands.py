"""``%glm explain``, ``%glm fix`` and ``%glm insert``: acting on failures and replies.

``explain`` and ``fix`` stream an answer about the last failure (or cell N's)
captured by :mod:`glm_magic.failures`, sending the failing source, its cleaned
traceback and the earlier cells that define the names it uses
(:mod:`glm_magic.core.assist`). ``fix`` then inserts the corrected code as a new
cell below (:mod:`glm_magic.ipython.cells`). Neither ever runs generated code.
``insert`` writes a reply's code into a notebook file on disk.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from ..errors import GlmError

if TYPE_CHECKING:
    from ..failures import Failure
    from ..reply import Reply

#: The loaded :class:`~glm_magic.ipython.magics.GlmMagics` (duck-typed: it imports this module).
GlmMagics = Any

__all__ = ["cmd_explain", "cmd_fix", "cmd_insert"]


def _failure(magics: GlmMagics, number: int | None, name: str) -> Failure:
    from ..failures import failure_log

    shell: Any = magics.shell
    log = failure_log(shell)
    if number is not None:
        failure = log.get(number)
        if failure is None:
            raise UsageError(f"In [{number}] did not fail (or failed before glm_magic was loaded)")
    else:
        failure = log.last()
        if failure is None:
            raise UsageError(f"no failed cell yet: run the failing cell, then %glm {name}")
    return failure


def _cell_number(text: str) -> int:
    """``12`` or ``[12]``: the execution count of the cell to explain or fix."""
    digits = text.removeprefix("[").removesuffix("]")
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"expected a cell number such as 12, not {text!r}")
    return int(digits)


def _options(name: str, words: list[str]) -> argparse.Namespace:
    """Parse explain/fix's words; a bad one is one ``UsageError`` line, before any state."""
    from .options import SubcommandParser, add_sampling

    parser = SubcommandParser(name)
    parser.add_argument("cell", nargs="?", type=_cell_number, metavar="N")
    parser.add_argument("-m", "--model")
    add_sampling(parser)
    parser.add_argument("-o", "--out", metavar="NAME")
    if name == "fix":
        parser.add_argument("--no-insert", action="store_true")
        parser.add_argument("--replace", action="store_true")
    parser.add_argument("-c", "--context", action="append", metavar="SPEC")
    parser.add_argument("--dry-run", action="store_true", dest="dry_run")
    opts = parser.parse(words)
    if opts.out is not None and not opts.out.isidentifier():
        parser.error(f"-o needs a Python name, not {opts.out!r}")
    return opts


def _assist(magics: GlmMagics, kind: str, args: list[str]) -> Reply | None:
    from ..errors import ConfigError
    from .options import sampling_overrides

    opts = _options(kind, args)
    settings = magics.settings(model=opts.model, **sampling_overrides(opts))
    failure = _failure(magics, opts.cell, kind)
    try:
        prepared = magics.session.prepare_assist(
            kind, failure, settings, context=opts.context, system_extra=opts.system
        )
    except ConfigError as exc:  # a bad --context spec
        raise UsageError(exc.one_line()) from None
    if opts.dry_run:
        from ..config import without_keys
        from ..context import dry_run_report

        print("note: " + "; ".join(prepared.notes))
        messages = without_keys(prepared.messages, settings)
        print(dry_run_report(messages, prepared.info, max_output=settings.max_tokens))
        return None
    replace = kind == "fix" and opts.replace
    reply: Reply = magics.run_prepared(
        prepared,
        stream=not opts.no_stream,
        out=opts.out,
        insert=kind == "fix" and not getattr(opts, "no_insert", False) and not replace,
        refresh=opts.refresh,
    )
    if replace:
        from .bridge import insert_reply, propose_fix
        from .cells import insert_reply_code

        if not propose_fix(magics.shell, failure, reply):
            print(
                "note: --replace needs the notebook bridge (JupyterLab 4 / Notebook 7): inserting"
            )
            if not insert_reply(magics.shell, reply):
                insert_reply_code(magics.shell, reply, opts.out or "_glm")
    return reply


def cmd_explain(magics: GlmMagics, args: list[str]) -> None:
    """Stream an explanation of the last failure (or of cell N's)."""
    _assist(magics, "explain", args)


def cmd_fix(magics: GlmMagics, args: list[str]) -> None:
    """Stream a diagnosis and corrected code, then insert it as a new cell below."""
    _assist(magics, "fix", args)


def cmd_insert(magics: GlmMagics, args: list[str]) -> None:
    """Write the last reply's code (or ``--reply NAME``'s) into a notebook file."""
    from .options import SubcommandParser

    parser = SubcommandParser("insert")
    parser.add_argument("--file", "-f", metavar="PATH")
    parser.add_argument("--after", metavar="CELL_ID")
    parser.add_argument("--reply", "-r", metavar="NAME")
    opts = parser.parse(args)
    from ..reply import CUT_BLOCK_LEFT_OUT, Reply

    shell: Any = magics.shell
    reply = shell.user_ns.get(opts.reply) if opts.reply else magics.last_reply
    if not isinstance(reply, Reply):
        what = f"{opts.reply!r} is not a glm reply" if opts.reply else "no reply yet"
        raise UsageError(f"%glm insert: {what}; use %%glm -o NAME, then --reply NAME")
    if not reply.code.strip():
        if reply.cut_code:
            raise UsageError(f"%glm insert: {CUT_BLOCK_LEFT_OUT}; nothing inserted")
        raise UsageError("%glm insert: the reply has no code block")
    if reply.cut_code:
        print(f"note: {CUT_BLOCK_LEFT_OUT}; the closed blocks are inserted")
    from ..notebook import describe_missing_path, find_notebook_path, insert_code_after

    after = opts.after
    path = opts.file
    if path is None:
        found = find_notebook_path(shell.user_ns)
        if found is None:
            raise UsageError(f"%glm insert: {describe_missing_path()}")
        path = str(found.path)
        if after is None:
            from ..failures import cell_id

            after = cell_id(shell)
    try:
        new_id = insert_code_after(path, reply.code, model=reply.model, after_cell_id=after)
    except GlmError as exc:
        raise UsageError(f"%glm insert: {exc.one_line()}") from None
    where = f"after cell {after}" if after else "at the end"
    print(f"Inserted the code as a new cell {where} of {path} (id {new_id}).")
    print("If the notebook is open, reload it from disk to see the cell.")
