"""``%%glm --agent`` and ``%glm agent TASK``: parsing, checks, and the hand-off to the agent.

The options of a task are ``--yes``, ``--max-steps N``, ``--budget USD``, the
model, context and sampling options of ``%%glm``, and ``-o NAME``. Options that
mean nothing for a task (``--insert``, ``--dry-run``, ``--no-stream``,
``--format``) are refused in one line, as are the task options without
``--agent``.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError

#: The loaded :class:`~glm_magic.ipython.magics.GlmMagics` (duck-typed: it imports this module).
GlmMagics = Any

__all__ = ["agent_cell", "cmd_agent", "refuse_agent_options"]

_TASK_ONLY = (("yes", "--yes"), ("max_steps", "--max-steps"), ("budget", "--budget"))
_NOT_FOR_TASKS = (
    ("insert", "--insert"),
    ("dry_run", "--dry-run"),
    ("no_stream", "--no-stream"),
    ("refresh", "--refresh"),
)


def refuse_agent_options(args: Any) -> None:
    """A plain ``%%glm`` given ``--yes`` / ``--max-steps`` / ``--budget``: one line."""
    given = [flag for dest, flag in _TASK_ONLY if getattr(args, dest, None) not in (None, False)]
    if given:
        raise UsageError(f"{', '.join(given)} only work with --agent (%%glm --agent)")


def _check(args: Any) -> None:
    refused = [flag for dest, flag in _NOT_FOR_TASKS if getattr(args, dest, None)]
    if getattr(args, "fmt", "markdown") != "markdown":
        refused.append("--format")
    if refused:
        raise UsageError(f"{', '.join(refused)} cannot be used with --agent")
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError(f"--max-steps must be 1 or more, not {args.max_steps}")
    if args.budget is not None and not args.budget > 0:
        raise UsageError(f"--budget must be a positive amount in USD, not {args.budget}")
    if args.out is not None and not args.out.isidentifier():
        raise UsageError(f"-o needs a Python name, not {args.out!r}")


def agent_cell(magics: GlmMagics, task: str, args: Any) -> None:
    """``%%glm --agent``: the cell's text is the task."""
    _check(args)
    task = magics.interpolated(task, args, "the task")
    from .agent import run_task

    run_task(magics, task, args)


def _parser() -> Any:
    from .options import SubcommandParser, add_sampling

    parser = SubcommandParser("agent")
    parser.add_argument("-m", "--model")
    parser.add_argument("--yes", action="store_true")
    parser.add_argument("--max-steps", type=int, dest="max_steps", metavar="N")
    parser.add_argument("--budget", type=float, metavar="USD")
    parser.add_argument("-c", "--context", action="append", metavar="SPEC")
    parser.add_argument("-o", "--out", metavar="NAME")
    parser.add_argument("--no-interpolate", action="store_true")
    add_sampling(parser)
    parser.add_argument("task", nargs="*", metavar="TASK")
    return parser


def cmd_agent(magics: GlmMagics, words: list[str]) -> None:
    """``%glm agent [options] TASK``: a one-line task (the same options as ``%%glm --agent``)."""
    parser = _parser()
    args = parser.parse(words)
    # The options %%glm has and a task refuses, absent here: set for the shared checks.
    args.insert = args.dry_run = False
    args.fmt = "markdown"
    if not args.task:
        parser.error("the task is missing")
    agent_cell(magics, " ".join(args.task), args)
