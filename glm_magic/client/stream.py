"""One streamed reply: :class:`ReplyStream`, made by :meth:`ChatClient.stream`.

Iterating it sends the request (after taking one of the endpoint's slots,
:mod:`.limit`), decodes the SSE stream into typed events, folds them into one
builder and retries before the first byte; :meth:`ReplyStream.close` stops it at
once from any thread by shutting the socket of the connection it runs on
(:mod:`.transport`), before the response headers too.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import httpx

from ..config import Settings
from ..errors import GlmError, StoppedError, StreamBrokenError
from ..events import Event, RequestId, Waiting
from ..reply import Reply, ReplyBuilder
from .errormap import finish_error
from .limit import Slots, slots_for, too_many_in_flight
from .sse import DONE, MalformedChunk, SSEDecoder, parse_chunk, split_payload
from .transport import TrackedStream, owning

__all__ = ["ReplyStream"]

log = logging.getLogger("glm_magic")

#: After ``[DONE]``, the rest of the body (its chunk terminator) is read for at most this
#: long, so the connection can be reused; a server that keeps it open loses the connection.
_TAIL_SECONDS = 1.0


class _Sender(Protocol):
    """What a stream needs of its :class:`~glm_magic.client.chat.ChatClient`."""

    def _send(
        self,
        settings: Settings,
        body: dict[str, Any],
        *,
        stream: bool,
        trace: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> httpx.Response: ...

    def _http_error(self, settings: Settings, response: httpx.Response) -> GlmError: ...

    def _stream_error(self, settings: Settings, data: str) -> GlmError: ...

    def _transport_error(self, exc: Exception, *, streaming: bool) -> GlmError: ...

    def _retry_wait(self, attempt: int, error: GlmError, settings: Settings) -> float | None: ...


class ReplyStream:
    """One streamed reply: iterate for events; :attr:`reply` holds what has arrived.

    Iteration raises a :class:`~glm_magic.errors.GlmError` whose ``partial``
    is the reply so far; closing the stream from another thread makes the
    iteration end with :class:`~glm_magic.errors.StoppedError`.
    """

    def __init__(self, client: _Sender, settings: Settings, body: dict[str, Any]) -> None:
        self._client = client
        self._settings = settings
        self._body = body
        self._builder = ReplyBuilder(settings.model, redact=settings.redactor())
        self._builder.max_tokens = settings.max_tokens
        self._response: httpx.Response | None = None
        self._socket: socket.socket | None = None
        self._conn: TrackedStream | None = None
        self._slots: Slots = slots_for(settings.base_url)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._started = False
        self.attempts = 0

    @property
    def reply(self) -> Reply:
        """Everything received so far, as a :class:`Reply`."""
        return self._builder.snapshot()

    @property
    def builder(self) -> ReplyBuilder:
        """The live builder (for renderers that poll cheaply)."""
        return self._builder

    @property
    def stopped(self) -> bool:
        """True once :meth:`close` was called."""
        return self._stopped.is_set()

    def __enter__(self) -> ReplyStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop now: shut the socket (waking a blocked read) and close the response.

        This works before the response headers too (LiteLLM's proxy sends none
        before the first token): the socket is known from the moment it connects.
        """
        self._stopped.set()
        self._slots.wake()  # a request waiting for a slot gives up without being sent
        with self._lock:
            response, sock, conn = self._response, self._socket, self._conn
            self._conn = None  # shut once; it is never handed back to anyone
        if conn is not None:
            conn.shutdown()
        if sock is not None:
            _shutdown(sock)
        if response is None:
            return
        try:
            response.close()
        except Exception:
            log.debug("closing the response failed", exc_info=True)

    def attach(self, stream: TrackedStream) -> None:
        """The pooled connection this stream's request runs on (called by the transport)."""
        with self._lock:
            self._conn = stream
        if self.stopped:
            stream.shutdown()

    def _on_trace(self, name: str, info: Mapping[str, Any]) -> None:
        # httpcore's trace hook, called in the reading thread as the connection is made
        # (start_tls gives the socket that replaces the plain one). Only for clients that
        # do not pool streams (behind an environment proxy, or a test's own transport).
        if name not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._socket = sock
            if self.stopped:
                _shutdown(sock)

    def _fold(self, event: Event) -> Event:
        # The stream's one builder sees every event before its consumer does.
        self._builder.add(event)
        return event

    def _fail(self, error: GlmError) -> GlmError:
        error.partial = self._builder.snapshot(error=error.one_line())
        return error

    def __iter__(self) -> Iterator[Event]:
        if self._started:
            raise RuntimeError("a ReplyStream can be iterated only once")
        self._started = True
        try:
            while True:
                self.attempts += 1
                if not self._slots.try_acquire(self._settings.max_concurrent):
                    yield self._fold(Waiting(True))
                    if not self._slots.acquire(self._settings.max_concurrent, self._stopped.is_set):
                        raise self._fail(StoppedError("stopped while waiting; nothing was sent"))
                    yield self._fold(Waiting(False))
                try:
                    try:
                        yield from self._attempt()
                    finally:
                        self._slots.release()
                    self._slots.succeeded()
                    return
                except GlmError as error:
                    if too_many_in_flight(error):
                        self._slots.refused()
                    received = self._builder.chars or self._builder.first_token_at is not None
                    # Never retry once the user stopped or any of the reply was received.
                    wait = (
                        None
                        if self.stopped or received
                        else self._client._retry_wait(self.attempts, error, self._settings)
                    )
                    if wait is None:
                        raise self._fail(error) from error.__cause__
                    if self._stopped.wait(wait):
                        raise self._fail(StoppedError("stopped before the reply started")) from None
        finally:
            self._end_attempt()

    def _end_attempt(self) -> None:
        # The reply is over: close the response; a pooled connection whose body was read to
        # the end goes back to the pool, any other is closed by httpcore.
        with self._lock:
            response, self._response, self._conn = self._response, None, None
        if response is not None:
            try:
                response.close()
            except Exception:
                log.debug("closing the response failed", exc_info=True)

    def _attempt(self) -> Iterator[Event]:
        client = self._client
        with self._lock:
            self._socket = self._conn = None
        try:
            with owning(self):
                response = client._send(
                    self._settings, self._body, stream=True, trace=self._on_trace
                )
        except GlmError:
            if self.stopped:
                raise StoppedError("stopped by the user; the connection was closed") from None
            raise
        with self._lock:
            self._response = response
        if self.stopped:
            raise StoppedError("stopped")
        try:
            if response.status_code >= 400:
                response.read()
                raise client._http_error(self._settings, response)
            rid = response.headers.get("x-request-id")
            if rid and self._builder.request_id is None:
                yield self._fold(RequestId(rid))
            yield from self._events(response)
        except httpx.HTTPError as exc:
            if self.stopped:
                raise StoppedError("stopped by the user; the connection was closed") from None
            raise client._transport_error(exc, streaming=True) from exc
        except (OSError, ValueError) as exc:
            if self.stopped:
                raise StoppedError("stopped by the user; the connection was closed") from None
            raise StreamBrokenError(f"the stream failed: {type(exc).__name__}") from exc
        finally:
            response.close()
            with self._lock:
                self._conn = None

    def _events(self, response: httpx.Response) -> Iterator[Event]:
        decoder = SSEDecoder()
        builder = self._builder
        done = False
        malformed = 0
        chunks = response.iter_bytes()
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except httpx.HTTPError:
                if not done or self.stopped:
                    raise
                break  # the tail timed out or broke: that connection is simply not reused
            if done:
                continue  # the tail after [DONE], read only so the connection is reused
            for frame in decoder.feed(chunk):
                if frame.event == "error":
                    raise self._client._stream_error(self._settings, frame.data)
                try:
                    objects = list(split_payload(frame.data))
                except MalformedChunk:
                    malformed += 1
                    log.warning("skipping a malformed stream chunk")
                    continue
                for obj in objects:
                    if obj == DONE:
                        done = True
                        continue
                    if isinstance(obj, dict) and "error" in obj and "choices" not in obj:
                        raise self._client._stream_error(self._settings, frame.data)
                    if isinstance(obj, dict) and builder.request_id is None:
                        rid = obj.get("request_id") or obj.get("id")
                        if isinstance(rid, str) and rid:
                            yield self._fold(RequestId(rid))
                    for event in parse_chunk(obj):
                        yield self._fold(event)
            if done and not self._drain_tail():
                break
        if self.stopped:
            raise StoppedError("stopped by the user; the connection was closed")
        if not done and builder.finish_reason is None:
            raise StreamBrokenError(
                "the stream ended before the reply finished (no finish_reason and no [DONE]); "
                "the text so far is kept"
            )
        if malformed:
            raise StreamBrokenError(
                f"{malformed} malformed chunk{'s' if malformed > 1 else ''} skipped; "
                "the reply may be missing text"
            )
        error = finish_error(builder.finish_reason or "", builder.snapshot())
        if error is not None:
            raise error

    def _drain_tail(self) -> bool:
        # After [DONE]: read the body's end (usually already here) briefly, so the pooled
        # connection goes back to the pool; without a tracked connection, just stop.
        with self._lock:
            conn = self._conn
        if conn is None:
            return False
        conn.tail_timeout = _TAIL_SECONDS
        return True


def _shutdown(sock: socket.socket) -> None:
    # shutdown, unlike close, wakes a recv() blocked in another thread
    # and sends FIN at once, so the server stops generating.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
