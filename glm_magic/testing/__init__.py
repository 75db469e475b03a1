"""A bundled OpenAI-compatible GLM endpoint on loopback, for tests, benchmarks and demos.

A real HTTP server (stdlib only) that answers the way Z.ai / RunAPI do, with
scripted replies (:mod:`.scripts`) and per-request fault injection; the HTTP
transport is :mod:`.server`. This module owns the public surface (:func:`serve`,
:class:`EndpointServer`, the thread-safe request log) and what a request means::

    with serve(token_delay=0.01) as srv:
        client = httpx.Client(base_url=srv.base_url)
        client.post("/chat/completions", json={
            "model": "glm-4.7+fault=429+fail_times=1",
            "messages": [{"role": "user", "content": "hi"}],
        })
        assert srv.wait_for_outcome(0) == "fault"  # recorded after the last write

Routes: ``GET /v1/models``; ``POST /v1/chat/completions`` (also without ``/v1``);
``GET /_test/requests`` (the log as JSON) and ``POST /_test/reset``, so a server in
another process (``python -m glm_magic.testing``) can be inspected too.

``serve(ssl_context=...)`` serves HTTPS (tests use a ``trustme`` certificate);
``serve(max_in_flight=N)`` answers 429 with code 1302 to a chat request arriving
while N are in flight; :attr:`EndpointServer.accepted` counts connections, so
tests can see keep-alive reuse.

Directives ride on the model id after ``+`` (``glm-4.7+fault=429+retry_after=1``)
or on ``X-Test-<Key>: value`` headers (``X-Test-Cut-After: 3``), which win. An
unknown key or value gets a 400 (code ``1210``), so a typo never passes silently:

``tokens=N``           the reply is exactly N pieces of 4 characters
``delay=S``            seconds between token pieces (default: the server's)
``think=1|0``          reasoning on/off (default: request ``thinking``; absent = off)
``usage=finish|trailing``  where streamed usage goes (default ``trailing``)
``first_byte_delay=S`` wait before the status line
``comments=1``         ``: keep-alive`` lines between SSE events
``cut_after=N``        token pieces sent before a stream fault fires (default 5)
``retry_after=S``      a ``Retry-After`` header on an error response
``fail_times=N``       only the first N requests with the same directives fault
``fault=NAME``         an HTTP error or a stream fault, below
``tool_stream=1|0``    tool calls in fragments (default: the body's ``tool_stream``)

HTTP error faults (Z.ai bodies, string ``code``): ``401 402 403 404 400-1211
400-1214 400-1261 400-1301 429 429-1302 429-1305 429-1113 429-1304 500``, plus
``503`` (plain text) and ``502-html``. Stream faults fire after ``cut_after``
pieces: ``cut`` (hang up mid-body), ``truncate`` (clean end, no finish, no
``[DONE]``), ``malformed`` (one broken frame, then normal), ``glued`` (frame
pairs on one line), ``sensitive``/``network_error``/``length`` (that finish
reason), ``length_in_code`` (the whole scripted reply, then a second
``python`` block cut mid-line, finish ``length``: a reply cut inside a code
block), ``tool_index`` (spec quirk 3), ``error_event``, ``no_done``, ``stall``
(silence for 60 s). Without ``stream``, the finish faults set
``finish_reason``; ``cut``/``truncate`` send half the body and hang up,
``malformed`` sends half the body, ``error_event`` is a 500 and ``stall`` stalls.

Agent replies: a request with a non-empty ``tools`` list gets scripted,
deterministic tool calls (:mod:`.agent_scripts`: an ``agent-script: [...]``
line in the first user message, else the built-in analysis demo). The text
streams first, then the calls: each whole in one chunk, or with
``"tool_stream": true`` (or ``+tool_stream=1``) as ``id``/``name`` with empty
``arguments`` followed by argument fragments joined by ``index``; then the
finish chunk with ``finish_reason`` ``tool_calls``. Without ``stream`` the
calls are in ``message.tool_calls``. Ids are ``call_<request id>_<index>``.
Directives keep working (``think``, ``delay``, ``tokens`` for the text,
``fault=cut`` and friends count call chunks as pieces, ``fault=tool_index``
sends the calls with ``index: -1`` on a chunk that already finishes).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import secrets
import socket
import ssl
import threading
from dataclasses import replace
from types import TracebackType
from typing import Any

from .plan import (
    MODELS,
    STREAM_FAULTS,
    Directives,
    RecordedRequest,
    ReplyPlan,
    bearer_digest,
    invalid_request,
)

__all__ = [
    "MODELS",
    "STREAM_FAULTS",
    "Directives",
    "EndpointServer",
    "RecordedRequest",
    "ReplyPlan",
    "bearer_digest",
    "invalid_request",
    "serve",
]


class _RequestLog:
    """The records, ``fail_times`` counters and request ids, behind one lock."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: list[RecordedRequest] = []
        self._failures: dict[str, int] = {}
        self._ids = itertools.count(1)

    def open(
        self, method: str, path: str, headers: dict[str, str], body: Any, auth: str | None
    ) -> RecordedRequest:
        digest = hashlib.sha256(auth.encode()).hexdigest() if auth is not None else None
        record = RecordedRequest(method, path, headers, body, auth_digest=digest)
        with self._cond:
            self._records.append(record)
        return record

    def close(
        self,
        record: RecordedRequest,
        outcome: str,
        chunks: int,
        status: int | None,
        rid: str | None,
    ) -> None:
        with self._cond:
            record.outcome, record.chunks_sent = outcome, chunks
            record.status, record.request_id = status, rid
            self._cond.notify_all()

    def new_id(self) -> str:
        with self._cond:
            return f"req-{next(self._ids)}-{secrets.token_hex(4)}"

    def should_fail(self, key: str, times: int) -> bool:
        """Count one more request for *key*; true while it is among the first *times*."""
        with self._cond:
            seen = self._failures.get(key, 0)
            self._failures[key] = seen + 1
            return seen < times

    def snapshot(self) -> list[RecordedRequest]:
        # Copies, so callers can read them while handler threads keep writing.
        with self._cond:
            return [
                replace(r, headers=dict(r.headers), body=copy.deepcopy(r.body))
                for r in self._records
            ]

    def wait(self, index: int, timeout: float) -> str:
        def done() -> bool:
            return len(self._records) > index and self._records[index].outcome != "pending"

        with self._cond:
            if not self._cond.wait_for(done, timeout):
                raise TimeoutError(f"request {index} has no final outcome after {timeout} s")
            return self._records[index].outcome

    def reset(self) -> None:
        with self._cond:
            self._records.clear()
            self._failures.clear()


class EndpointServer:
    """The scripted GLM endpoint: a loopback HTTP server plus its request log.

    Binding happens in the constructor (so :attr:`port` is known at once, even
    for ``port=0``); :meth:`start` serves from a daemon thread. Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        token_delay: float = 0.0,
        tokens: int | None = None,
        *,
        require_key: str | None = None,
        verbose: bool = False,
        models: tuple[str, ...] = MODELS,
        max_output: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        if not token_delay >= 0:
            raise ValueError(f"token_delay must be >= 0, got {token_delay!r}")
        if tokens is not None and tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens!r}")
        if max_output is not None and max_output < 1:
            raise ValueError(f"max_output must be >= 1, got {max_output!r}")
        self.token_delay = token_delay
        self.tokens = tokens
        #: The output limit for requests without ``max_tokens`` (``None``: no limit).
        self.max_output = max_output
        self.require_key = require_key
        self.verbose = verbose
        #: The ids ``GET /models`` lists (a test may serve hostile ones).
        self.models = tuple(models)
        #: Serve HTTPS with this (server-side) context; ``None``: plain HTTP.
        self.ssl_context = ssl_context
        #: Answer 429 with code 1302 ("too many concurrent requests") to a chat request
        #: arriving while this many are already in flight (``None``: no limit), as Z.ai does.
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        #: Connections accepted since the start (keep-alive reuse shows as fewer than requests).
        self.accepted = 0
        #: The most chat requests that were in flight at once.
        self.peak_in_flight = 0
        self._log = _RequestLog()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        from .server import LoopbackHTTPServer  # here: .server imports this package

        self._httpd = LoopbackHTTPServer((host, port), self)

    def __repr__(self) -> str:
        return f"<EndpointServer {self.base_url}>"  # require_key stays out of reprs

    @property
    def host(self) -> str:
        """The address the server is bound to."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with ``port=0``)."""
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log, oldest first (``/_test/*`` calls excluded)."""
        return self._log.snapshot()

    def wait_for_outcome(self, index: int, timeout: float = 5.0) -> str:
        """Wait until request *index* has a final outcome and return it.

        Raises :class:`TimeoutError` if it has none after *timeout* seconds.
        """
        return self._log.wait(index, timeout)

    def reset(self) -> None:
        """Clear the request log, the ``fail_times`` counters and the connection counts."""
        self._log.reset()
        with self._lock:
            self.accepted = 0
            self.peak_in_flight = 0

    def _enter(self) -> bool:
        """One more chat request in flight; False if that is over :attr:`max_in_flight`."""
        with self._lock:
            if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
                return False
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            return True

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def start(self) -> EndpointServer:
        """Serve from a daemon thread (idempotent); return ``self``."""
        with self._lock:
            if self._thread is None:
                # A short poll interval makes close() prompt.
                self._thread = threading.Thread(
                    target=self._httpd.serve_forever,
                    kwargs={"poll_interval": 0.05},
                    name=f"glm-test-endpoint-{self.port}",
                    daemon=True,
                )
                self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, end replies in progress and release the port (idempotent)."""
        if self._closing.is_set():
            return
        self._closing.set()  # stalled and delayed replies see this within ~50 ms
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            # Wakes handler threads blocked reading the next keep-alive request.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()

    def __enter__(self) -> EndpointServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self.accepted += 1
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    token_delay: float = 0.0,
    tokens: int | None = None,
    *,
    require_key: str | None = None,
    verbose: bool = False,
    max_output: int | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_in_flight: int | None = None,
) -> EndpointServer:
    """Start an endpoint in a daemon thread and return it (already serving).

    *token_delay* is the default pause between token pieces; *tokens*, when set,
    makes every reply exactly that many 4-character pieces. With *require_key*,
    requests need ``Authorization: Bearer <require_key>``; by default no key is
    needed, like other loopback endpoints. *verbose* logs request lines to stderr.
    *max_output* is the server's own output limit for requests that send no
    ``max_tokens`` (real servers stop at the model's maximum): a longer reply
    is cut there with ``finish_reason`` ``length``. With *ssl_context* (server
    side) it serves HTTPS; *max_in_flight* makes it refuse (429, code 1302) a chat
    request that arrives while that many are in flight.
    """
    server = EndpointServer(
        host,
        port,
        token_delay,
        tokens,
        require_key=require_key,
        verbose=verbose,
        max_output=max_output,
        ssl_context=ssl_context,
        max_in_flight=max_in_flight,
    )
    return server.start()
