"""Options shared by the magics: one definition of the sampling options, one parser rule.

``%%glm`` (and so ``%glm QUESTION``), ``%glm explain`` and ``%glm fix`` take
the same sampling options; they are defined once here (:data:`SAMPLING`), so
the magics cannot drift apart. Every sub-command parses its words with a
:class:`SubcommandParser`, which answers bad input with exactly one
``UsageError`` line: what was wrong, then the short usage. argparse's own
behaviour (usage printed to stderr, then ``SystemExit(2)``) never leaks out.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

__all__ = [
    "SAMPLING",
    "SubcommandParser",
    "add_sampling",
    "sampling_arguments",
    "sampling_overrides",
    "split_words",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The sampling options (and ``--refresh``) of ``%%glm``, ``%glm QUESTION``,
#: ``%glm explain`` and ``%glm fix``: ``(flags, argparse keyword arguments)``.
SAMPLING: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("-s", "--system"),
        {"help": "system prompt for this request (explain/fix: added to their own)"},
    ),
    (
        ("--temperature",),
        {"type": float, "metavar": "T", "help": "sampling temperature, 0-1 for GLM"},
    ),
    (
        ("--max-tokens",),
        {"type": int, "dest": "max_tokens", "metavar": "N", "help": "cap on reply tokens"},
    ),
    (
        ("--think",),
        {"action": "store_true", "dest": "think", "default": None, "help": "thinking mode on"},
    ),
    (("--no-think",), {"action": "store_false", "dest": "think", "help": "thinking mode off"}),
    (("--no-stream",), {"action": "store_true", "help": "wait for the whole reply"}),
    (
        ("-r", "--refresh"),
        {"action": "store_true", "help": "ask again even if answered before (new stored answer)"},
    ),
)


def sampling_arguments(func: F) -> F:
    """Add :data:`SAMPLING` to a ``magic_arguments`` magic, in the order written above."""
    for flags, kwargs in reversed(SAMPLING):
        func = argument(*flags, **kwargs)(func)
    return func


def add_sampling(parser: Any) -> None:
    """Add :data:`SAMPLING` to an argparse parser."""
    for flags, kwargs in SAMPLING:
        parser.add_argument(*flags, **kwargs)


def sampling_overrides(args: Any) -> dict[str, Any]:
    """The settings overrides (``GlmMagics.settings``) from parsed sampling options."""
    return {"temperature": args.temperature, "max_tokens": args.max_tokens, "thinking": args.think}


def split_words(line: str) -> list[str]:
    """POSIX-split a magic's line (quotes removed); a bad quote is one ``UsageError`` line."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"bad options {line!r}: {exc}") from None


class SubcommandParser(argparse.ArgumentParser):
    """An argparse parser for ``%glm NAME`` whose errors are one ``UsageError`` line."""

    def __init__(self, name: str) -> None:
        super().__init__(prog=f"%glm {name}", add_help=False)

    def short_usage(self) -> str:
        """``usage: %glm NAME [...]`` on one line."""
        return " ".join(self.format_usage().split())

    def error(self, message: str) -> NoReturn:
        """Raise what was wrong and the short usage as one line, never exit."""
        raise UsageError(f"{self.prog}: {message}; {self.short_usage()}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """Report through :meth:`error` instead of exiting (argparse exits only to report)."""
        self.error((message or f"exit status {status}").strip())

    def parse(self, words: Sequence[str]) -> argparse.Namespace:
        """Parse the words after the sub-command's name."""
        return self.parse_args(list(words))
