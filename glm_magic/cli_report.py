r"""Terminal output for ``glm-magic``: progress on stderr, results on stdout, totals.

Results (failing cells, replies with ``--show``, verification, the file
written) go to stdout so they can be piped; progress, per-reply token and
cost lines, totals and errors go to stderr. On a terminal the line of a
streaming reply is rewritten in place with ``\r`` at most four times a
second; anywhere else (a log file, CI) only its final line is printed, so
logs do not fill up with partial counts.

Everything printed is masked first, as context is (:func:`~glm_magic.masking.mask_secrets`
with the key variables' values): a cell's error, a reply or a failed fix can
hold the key, since the notebook's kernel inherits the environment.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .client import ChatClient
from .config import Secret
from .events import ReasoningDelta, TextDelta
from .reply import Reply

__all__ = ["Console", "Totals", "stream_reply"]

#: Seconds between two rewrites of a status line (about 4 a second).
STATUS_INTERVAL = 0.25


class Console:
    """Where the command line writes: results to ``out``, progress to ``err``."""

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        tty: bool | None = None,
        secrets: Iterable[Secret] = (),
    ) -> None:
        self._secrets = list(secrets)
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.err, "isatty", None)
            tty = bool(isatty()) if callable(isatty) else False
        self.tty = tty
        self._status = False
        self._last = 0.0

    def __repr__(self) -> str:
        return f"<Console tty={self.tty}>"

    def add_secrets(self, secrets: Iterable[Secret]) -> None:
        """Mask these values too in everything printed from now on."""
        self._secrets += list(secrets)

    def clean(self, text: str) -> str:
        """``text`` as it may be printed: secrets and the key masked."""
        from .masking import mask_secrets

        return mask_secrets(text, self._secrets).text

    def result(self, text: str) -> None:
        """Print a result line (stdout), masked."""
        self.clear_status()
        print(self.clean(text), file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Print a progress or summary line (stderr), masked."""
        self.clear_status()
        print(self.clean(text), file=self.err, flush=True)

    def status(self, text: str, *, force: bool = False) -> None:
        """Rewrite the status line on a terminal (throttled); do nothing elsewhere."""
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last < STATUS_INTERVAL:
            return
        self._last = now
        # \x1b[K erases what a longer previous status left on the line.
        self.err.write(f"\r{self.clean(text)}\x1b[K")
        self.err.flush()
        self._status = True

    def clear_status(self) -> None:
        """Erase the status line, if one is showing."""
        if self._status:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self._status = False


@dataclass
class Totals:
    """Token and cost totals over the replies of one command."""

    replies: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    #: False once a reply's cost is unknown (a model the catalog has no prices for).
    cost_known: bool = True

    def add(self, reply: Reply) -> None:
        """Count one reply (complete or partial)."""
        self.replies += 1
        if reply.usage is not None:
            self.prompt_tokens += reply.usage.prompt_tokens
            self.completion_tokens += reply.usage.completion_tokens
        cost = reply.cost
        if cost is None:
            self.cost_known = False
        else:
            self.cost += cost

    def line(self) -> str:
        """``total: 2 replies · 1,200 in / 300 out tokens · ~$0.0030``."""
        plural = "y" if self.replies == 1 else "ies"
        parts = [
            f"total: {self.replies} repl{plural}",
            f"{self.prompt_tokens:,} in / {self.completion_tokens:,} out tokens",
        ]
        if self.cost_known:
            parts.append(f"~${self.cost:.4f}")
        else:
            parts.append("cost unknown (model not in the price list)")
        return " · ".join(parts)


def stream_reply(
    client: ChatClient, messages: Sequence[Mapping[str, Any]], label: str, console: Console
) -> Reply:
    """Stream one reply, showing a running count on ``console``; return the reply.

    Raises the client's :class:`~glm_magic.errors.GlmError` (with ``partial``)
    on failure; the connection is closed in every case, including Ctrl-C.
    """
    stream = client.stream(messages)
    tokens = thinking = 0
    console.status(f"{label}: waiting for the first token...", force=True)
    try:
        for event in stream:
            if isinstance(event, TextDelta):
                tokens += 1
            elif isinstance(event, ReasoningDelta):
                thinking += 1
            else:
                continue
            think = f" ({thinking:,} thinking)" if thinking else ""
            console.status(
                f"{label}: {tokens + thinking:,} tokens{think}, {stream.builder.chars:,} chars"
            )
    finally:
        stream.close()
        console.clear_status()
    return stream.reply
