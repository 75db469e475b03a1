r"""Terminal output for ``glm-magic``: progress on stderr, results on stdout, totals.

Results (failing cells, replies with ``--show``, verification, the file
written) go to stdout so they can be piped; progress, per-reply token and
cost lines, totals and errors go to stderr. On a terminal the line of a
streaming reply is rewritten in place with ``\r`` at most four times a
second. Anywhere else (a log file, CI, ``nohup``) a :class:`Heartbeat` prints
one progress line at a slow fixed pace (every :data:`PROGRESS_EVERY` seconds:
which cell, tokens so far, time elapsed), so a long reply or a slow cell does
not look like a hang while logs stay short.

Everything printed is masked first, as context is (:func:`~glm_magic.masking.mask_secrets`
with the key variables' values): a cell's error, a reply or a failed fix can
hold the key, since the notebook's kernel inherits the environment.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from ..config import Secret
from ..reply import WAITING_NOTE, Reply, ReplyBuilder

if TYPE_CHECKING:
    from ..client.chat import ChatClient

__all__ = [
    "PROGRESS_EVERY",
    "Console",
    "ConsoleRenderer",
    "Heartbeat",
    "stream_reply",
]

#: Seconds between two rewrites of a status line (about 4 a second).
STATUS_INTERVAL = 0.25
#: Seconds between two progress lines when stderr is not a terminal.
PROGRESS_EVERY = 10.0


class Console:
    """Where the command line writes: results to ``out``, progress to ``err``."""

    def __init__(
        self,
        out: TextIO | None = None,
        err: TextIO | None = None,
        *,
        tty: bool | None = None,
        secrets: Iterable[Secret] = (),
        progress_every: float | None = None,
    ) -> None:
        self._secrets = list(secrets)
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.err, "isatty", None)
            tty = bool(isatty()) if callable(isatty) else False
        self.tty = tty
        #: Seconds between heartbeat lines off a terminal (tests use a short pace).
        self.progress_every = PROGRESS_EVERY if progress_every is None else progress_every
        self._status = False
        self._last = 0.0
        # A heartbeat writes from its own thread: whole lines only, never interleaved.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Console tty={self.tty}>"

    def add_secrets(self, secrets: Iterable[Secret]) -> None:
        """Mask these values too in everything printed from now on."""
        self._secrets += list(secrets)

    def clean(self, text: str) -> str:
        """``text`` as it may be printed: secrets and the key masked."""
        from ..masking import mask_secrets

        return mask_secrets(text, self._secrets).text

    def result(self, text: str) -> None:
        """Print a result line (stdout), masked."""
        with self._lock:
            self.clear_status()
            print(self.clean(text), file=self.out, flush=True)

    def note(self, text: str) -> None:
        """Print a progress or summary line (stderr), masked."""
        with self._lock:
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


class Heartbeat:
    """Off a terminal, print ``line()`` every ``console.progress_every`` seconds while open.

    Used as a context manager around a long step (a reply, a notebook run).
    On a terminal it does nothing: the status line already moves there.
    """

    def __init__(self, console: Console, line: Callable[[], str]) -> None:
        self.console = console
        self.line = line
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the heartbeat started."""
        return time.monotonic() - self.started

    def __enter__(self) -> Heartbeat:
        self.started = time.monotonic()
        if not self.console.tty and self.console.progress_every > 0:
            self._thread = threading.Thread(target=self._run, daemon=True, name="glm-heartbeat")
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.console.progress_every):
            self.console.note(self.line())


class ConsoleRenderer:
    """The CLI's renderer for the one stream driver: a status line, heartbeats off a terminal."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.beat = Heartbeat(console, self._progress_line)
        self._builder: ReplyBuilder | None = None

    def _tokens(self) -> tuple[int, str]:
        builder = self._builder
        if builder is None:
            return 0, ""
        think = f" ({builder.thinking_pieces:,} thinking)" if builder.thinking_pieces else ""
        return builder.pieces + builder.thinking_pieces, think

    def _progress_line(self) -> str:
        n, think = self._tokens()
        return f"{self.label}: {n:,} tokens so far{think}, {self.beat.elapsed:.0f} s elapsed"

    def start(self) -> None:
        """Say that the request is out; off a terminal, start the heartbeat."""
        self.console.status(f"{self.label}: waiting for the first token...", force=True)
        self.beat.__enter__()

    def progress(self, builder: ReplyBuilder) -> None:
        """Move the status line (the console throttles it)."""
        self._builder = builder
        if builder.waiting:  # another reply to the endpoint holds the last slot
            self.console.status(f"{self.label}: {WAITING_NOTE}")
            return
        n, think = self._tokens()
        self.console.status(f"{self.label}: {n:,} tokens{think}, {builder.chars:,} chars")

    def tick(self) -> None:
        """Nothing held back: the console draws the latest status itself."""

    def finish(self, reply: Reply) -> None:
        """Stop the heartbeat and erase the status line (the caller prints the outcome)."""
        self.beat.__exit__(None, None, None)
        self.console.clear_status()


def stream_reply(
    client: ChatClient, messages: Sequence[Mapping[str, Any]], label: str, console: Console
) -> Reply:
    """Stream one reply through the one stream driver, showing progress on ``console``.

    Raises the client's :class:`~glm_magic.errors.GlmError` (with ``partial``)
    on failure; the connection is closed in every case, and Ctrl-C ends as a
    ``KeyboardInterrupt`` after closing it.
    """
    from ..core.runner import run_foreground
    from ..errors import StoppedError

    stream = client.stream(messages)
    try:
        return run_foreground(stream, ConsoleRenderer(console, label), client.settings.model)
    except StoppedError:
        # Only Ctrl-C stops a CLI stream: the connection is closed; end the command.
        raise KeyboardInterrupt from None
