"""The arguments of the ``glm-magic`` command line: sub-commands, options, help.

Kept apart from :mod:`.cli`, which runs the commands, so the help text and
the options can be read in one place. ``args.command`` names the sub-command
(``None`` when none was given).
"""

from __future__ import annotations

import argparse

from ..config import DEFAULT_BASE_URL, DEFAULT_KEY_ENV, DEFAULT_MODEL
from ..version import __version__

__all__ = ["build_parser"]

_EPILOG = f"""\
examples:
  glm-magic run analysis.ipynb                 # which cells fail? (exit 1 if any)
  glm-magic explain analysis.ipynb             # writes analysis.explained.ipynb
  glm-magic fix analysis.ipynb --verify        # writes analysis.fixed.ipynb, re-runs it
  glm-magic fix analysis.ipynb --in-place --max-fixes 3
  GLM_BASE_URL=http://127.0.0.1:8000/v1 glm-magic explain nb.ipynb --show

The key is read from ${DEFAULT_KEY_ENV} (or the variable named by --key-env), then
$GLM_API_KEY; a loopback endpoint needs none. $GLM_MODEL and $GLM_BASE_URL set
the defaults of --model and --base-url.

security: the key is sent only to the base URL. Prompts, printed lines and the
written notebook's outputs have the key and other secrets masked. `fix --verify`
RUNS CODE THE MODEL WROTE, UNSANDBOXED, with your user's rights (files, network);
its kernel gets no key variables and no GLM_* settings, nothing more. Read the
fixed cells first, or run --verify only in a throwaway container.

exit status: 0 all failing cells handled (run: none failed); 1 some cell failed
(run), a request failed or was skipped, or a verified fix still fails; 2 usage,
configuration, notebook or API error.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``glm-magic`` (sub-commands run, explain, fix)."""
    parser = argparse.ArgumentParser(
        prog="glm-magic",
        description="Run Jupyter notebooks on disk and explain or fix their failing cells "
        "with GLM (or any OpenAI-compatible model).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"glm-magic {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run_opts = argparse.ArgumentParser(add_help=False)
    run_opts.add_argument("notebook", metavar="NB.ipynb", help="the notebook to run")
    run_opts.add_argument(
        "--timeout",
        type=_positive_int,
        default=600,
        metavar="S",
        help="seconds a cell may run before it is interrupted (default 600)",
    )
    run_opts.add_argument(
        "--kernel", default="python3", metavar="NAME", help="kernel to run (default python3)"
    )
    run_opts.add_argument(
        "--budget-usd",
        type=float,
        dest="budget_usd",
        metavar="USD",
        help="spending limit for the notebook's %%glm cells (default $GLM_MAGIC_BUDGET_USD)",
    )

    model_opts = argparse.ArgumentParser(add_help=False)
    model_opts.add_argument(
        "-m", "--model", help=f"model id (default $GLM_MODEL, else {DEFAULT_MODEL})"
    )
    model_opts.add_argument(
        "--base-url",
        metavar="URL",
        help=f"endpoint (default $GLM_BASE_URL, else {DEFAULT_BASE_URL})",
    )
    model_opts.add_argument(
        "--key-env",
        metavar="NAME",
        help=f"environment variable holding the API key (default {DEFAULT_KEY_ENV}; "
        "GLM_API_KEY is tried next)",
    )
    model_opts.add_argument(
        "--max-fixes",
        type=_positive_int,
        default=10,
        metavar="N",
        help="ask about at most N failing cells (default 10); cells that fail only "
        "because an earlier one did come last",
    )
    model_opts.add_argument(
        "--max-tokens",
        type=_positive_int,
        metavar="N",
        help="cap on each reply's tokens (default: the server's); a reply cut there is "
        "written with a note saying so",
    )
    model_opts.add_argument("--show", action="store_true", help="print each reply to stdout")
    where = model_opts.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", metavar="OUT.ipynb", help="write the result here")
    where.add_argument(
        "--in-place", action="store_true", help="rewrite the input notebook (conflict-checked)"
    )
    model_opts.add_argument("--force", action="store_true", help="replace an existing output file")

    commands.add_parser(
        "run",
        parents=[run_opts],
        help="run a notebook and list its failing cells",
        description="Run every cell and list the failing ones. Writes nothing.",
    )
    commands.add_parser(
        "explain",
        parents=[run_opts, model_opts],
        help="run a notebook and insert an explanation below each failing cell",
        description="Run the notebook, then insert a Markdown explanation from the model "
        "below each failing cell. Writes NB.explained.ipynb unless -o or --in-place.",
    )
    fix = commands.add_parser(
        "fix",
        parents=[run_opts, model_opts],
        help="run a notebook and insert a diagnosis and a fixed cell below each failing cell",
        description="Run the notebook, then insert the model's diagnosis (Markdown) and a "
        "corrected code cell below each failing cell. Writes NB.fixed.ipynb unless -o or "
        "--in-place.",
    )
    fix.add_argument(
        "--verify",
        action="store_true",
        help="run the written notebook again and report which fixed cells now run. "
        "This executes code the model wrote, unsandboxed, with your rights (files, "
        "network); only the key variables and GLM_* settings are withheld from it",
    )
    provenance = commands.add_parser(
        "provenance",
        help="list a notebook's GLM outputs and inserted cells (model, time, cost, edited)",
        description="List every GLM reply output and every inserted cell of a saved "
        "notebook: model, time, cost, and whether an inserted cell was edited since. Runs "
        "nothing. Exit status 1 when an entry is malformed.",
    )
    provenance.add_argument("notebook", metavar="NB.ipynb", help="the notebook to read")
    return parser
