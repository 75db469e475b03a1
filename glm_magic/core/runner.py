"""Driving a reply stream: a worker thread reads HTTP, the caller's thread renders.

:func:`run_foreground` is how the magic streams. The HTTP stream is read in
a daemon thread and its events handed over a queue, so the main thread only
waits on ``queue.get`` with a short timeout: a kernel interrupt
(``KeyboardInterrupt``) lands there at once, the stream is closed (the
server stops generating and billing) and the partial reply is kept.

:class:`BackgroundRun` is the same without blocking the caller, for widget
callbacks (the panel, the Explain/Fix buttons), which must return so the
kernel can process the Stop button's click.

Neither imports IPython nor httpx: renderers and streams are passed in.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from ..errors import GlmError, StoppedError
from ..events import Event
from ..reply import Reply, ReplyBuilder

__all__ = [
    "RENDER_SHARE",
    "BackgroundRun",
    "Renderer",
    "Stoppable",
    "paced_interval",
    "run_foreground",
]

#: How long the main thread waits for an event before it flushes a held update.
POLL = 0.04


#: Rendering may take at most this share of a streaming reply's wall time.
RENDER_SHARE = 0.1


def paced_interval(interval: float, render_seconds: float) -> float:
    """Seconds to wait before the next update, given what the last one cost to render.

    A reply that is slow to render (very long, or built to be costly) is
    re-rendered less often, so rendering never takes more than
    :data:`RENDER_SHARE` of the time and the stream is never starved.
    """
    return max(interval, render_seconds * (1 - RENDER_SHARE) / RENDER_SHARE)


class Renderer(Protocol):
    """What the magic and the Python API drive while a reply streams."""

    def start(self) -> None:
        """Show a placeholder at once."""

    def progress(self, builder: ReplyBuilder) -> None:
        """The reply grew; show it if enough time has passed."""

    def tick(self) -> None:
        """Called when no event arrived for a moment: flush a pending update."""

    def finish(self, reply: Reply) -> None:
        """Show the final state (always called, also after errors and stops)."""


class Stoppable(Protocol):
    """A stream of events that can be closed from another thread."""

    def __iter__(self) -> Iterator[Event]:
        """Yield events; raise a GlmError on failure."""
        ...

    def close(self) -> None:
        """Stop at once (closes the connection)."""
        ...

    @property
    def builder(self) -> ReplyBuilder:
        """The stream's own builder (request id, for instance)."""
        ...


_END = object()


def _pump(stream: Iterable[Event], out: queue.SimpleQueue[object]) -> None:
    try:
        for event in stream:
            out.put(event)
        out.put(_END)
    except GlmError as error:
        out.put(error)
    except BaseException as error:
        out.put(GlmError(f"unexpected failure while streaming: {type(error).__name__}: {error}"))


def _finish(stream: Stoppable, error: GlmError | None) -> Reply:
    reply = stream.builder.snapshot(error=error.one_line() if error else "")
    if error is not None:
        error.partial = reply
    return reply


def run_foreground(stream: Stoppable, renderer: Renderer, model: str) -> Reply:
    """Stream into ``renderer`` from the calling thread; return the final reply.

    Raises the :class:`GlmError` that ended the stream (``StoppedError`` on
    interrupt) after the renderer has shown the partial reply; the error's
    ``partial`` is that reply.
    """
    events: queue.SimpleQueue[object] = queue.SimpleQueue()
    # The stream's own builder (folded in the reading thread) is the one the renderer
    # reads; the queue only carries wake-ups, the end and errors.
    builder = stream.builder
    worker = threading.Thread(target=_pump, args=(stream, events), daemon=True, name="glm-stream")
    error: GlmError | None = None
    renderer.start()
    worker.start()
    try:
        while True:
            try:
                item = events.get(timeout=POLL)
            except queue.Empty:
                renderer.tick()
                continue
            if item is _END:
                break
            if isinstance(item, GlmError):
                error = item
                break
            # Drain what is already queued before rendering: one update per batch.
            while True:
                try:
                    more = events.get_nowait()
                except queue.Empty:
                    break
                if more is _END or isinstance(more, GlmError):
                    events.put(more)
                    break
            renderer.progress(builder)
    except KeyboardInterrupt:
        stream.close()
        error = StoppedError("interrupted; the partial reply is kept and the connection was closed")
    reply = _finish(stream, error)
    renderer.finish(reply)
    if error is not None:
        raise error
    return reply


class BackgroundRun:
    """Stream in a background thread, calling ``on_update`` with throttled snapshots.

    ``on_update(builder)`` and ``on_done(reply, error)`` run in the worker
    thread; they must only touch thread-safe targets (widget traits, display
    handles created beforehand). :meth:`stop` closes the stream at once.
    """

    def __init__(
        self,
        stream: Stoppable,
        model: str,
        on_update: Callable[[ReplyBuilder], None],
        on_done: Callable[[Reply, GlmError | None], None],
        *,
        interval: float = 0.12,
    ) -> None:
        self._stream = stream
        self._model = model
        self._on_update = on_update
        self._on_done = on_done
        self._interval = interval
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="glm-background")
        self.reply: Reply | None = None

    def start(self) -> BackgroundRun:
        """Start streaming; returns self."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Close the connection now; the partial reply is kept."""
        self._stop.set()
        self._stream.close()

    @property
    def running(self) -> bool:
        """Whether the reply is still streaming."""
        return self.thread.is_alive()

    def _run(self) -> None:
        import time

        builder = self._stream.builder  # the stream's one builder, folded as it yields
        error: GlmError | None = None
        last = 0.0
        wait = self._interval
        try:
            for _event in self._stream:
                now = time.monotonic()
                if now - last >= wait:
                    self._on_update(builder)
                    last = time.monotonic()
                    wait = paced_interval(self._interval, last - now)
        except GlmError as exc:
            error = exc
        except Exception as exc:
            error = GlmError(f"unexpected failure while streaming: {type(exc).__name__}: {exc}")
        if self._stop.is_set() and not isinstance(error, StoppedError):
            error = StoppedError("stopped; the partial reply is kept and the connection was closed")
        self.reply = _finish(self._stream, error)
        self._on_done(self.reply, error)
