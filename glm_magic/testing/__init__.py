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
        assert srv.requests[0].outcome == "fault"

Routes: ``GET /v1/models``; ``POST /v1/chat/completions`` (also without ``/v1``);
``GET /_test/requests`` (the log as JSON) and ``POST /_test/reset``, so a server in
another process (``python -m glm_magic.testing``) can be inspected too.

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
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass, replace
from types import TracebackType
from typing import Any

from . import scripts

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

MODELS = ("glm-5.1", "glm-5", "glm-5-turbo", "glm-4.7", "glm-4.6", "glm-4.5", "glm-4.5-air")
#: Faults that shape a 200 reply instead of replacing it with an error status.
STREAM_FAULTS = frozenset(
    {"cut", "truncate", "malformed", "glued", "sensitive", "network_error", "length"}
    | {"length_in_code", "tool_index", "error_event", "no_done", "stall"}
)
_INTS = ("tokens", "fail_times", "cut_after")
_FLOATS = ("delay", "first_byte_delay", "retry_after")


@dataclass(frozen=True)
class Directives:
    """Per-request knobs parsed from the model suffix and ``X-Test-*`` headers."""

    tokens: int | None = None
    delay: float | None = None
    think: bool | None = None
    usage: str = "trailing"
    first_byte_delay: float = 0.0
    comments: bool = False
    fault: str | None = None
    fail_times: int | None = None
    retry_after: str | None = None
    cut_after: int = 5

    @classmethod
    def parse(cls, pairs: list[tuple[str, str]]) -> Directives:
        """Build from ``(key, value)`` pairs (later ones win); ``ValueError`` on a bad one."""
        values: dict[str, Any] = {}
        for key, raw in pairs:
            try:
                if key in _INTS or key in _FLOATS:
                    number = int(raw) if key in _INTS else float(raw)
                    if not number >= 0:  # also rejects NaN
                        raise ValueError
                    values[key] = raw if key == "retry_after" else number
                elif key in ("think", "comments") and raw in ("0", "1", "true", "false"):
                    values[key] = raw in ("1", "true")
                elif (key == "usage" and raw in ("finish", "trailing")) or (
                    key == "fault" and (raw in STREAM_FAULTS or scripts.error_fault(raw))
                ):
                    values[key] = raw
                else:
                    raise ValueError
            except ValueError:
                raise ValueError(f"Unknown test directive {key}={raw!r}") from None
        return cls(**values)


def invalid_request(raw: bytes, body: Any) -> str | None:
    """Return a Z.ai-style message if *body* is not a usable chat request, else ``None``."""
    if not isinstance(body, dict):
        return "The request body is not valid JSON." if raw else "The request body is empty."
    if not isinstance(body.get("model"), str) or not body["model"].split("+")[0]:
        return "The model parameter is illegal."
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages)
        or not any(m["role"] == "user" for m in messages)
    ):
        return "The messages parameter is illegal."
    return None


@dataclass
class ReplyPlan:
    """What one valid chat request produces: token pieces and the chunk envelope."""

    request_id: str
    model: str
    created: int
    pieces: list[tuple[str, str]]  # (delta field, text), reasoning first
    prompt_tokens: int
    finish_reason: str
    thinking: bool
    delay: float
    fault: str | None  # None once fail_times is used up
    directives: Directives

    @classmethod
    def build(
        cls,
        owner: EndpointServer,
        body: dict[str, Any],
        model: str,
        rid: str,
        d: Directives,
        fault: str | None,
    ) -> ReplyPlan:
        """Plan the reply to *body* with the server's defaults and the directives."""
        messages = body["messages"]
        requested = body.get("thinking")
        # Absent means off: deterministic, whatever the real model's default is.
        thinking = isinstance(requested, dict) and requested.get("type") == "enabled"
        thinking = thinking if d.think is None else d.think
        n = d.tokens if d.tokens is not None else owner.tokens
        text = scripts.filler_text(n) if n is not None else scripts.reply_for(messages)
        if fault == "length_in_code":
            text = scripts.cut_in_code(text)
        pieces = [("content", p) for p in scripts.split_tokens(text)]
        if thinking:
            reasoning = scripts.split_tokens(scripts.reasoning_for(messages))
            pieces = [("reasoning_content", p) for p in reasoning] + pieces
        finish = "length" if fault == "length_in_code" else "stop"
        cap = body.get("max_tokens")  # reasoning counts against it, as on GLM
        if cap is None:
            cap = owner.max_output  # a real server stops at the model's own maximum
        if type(cap) is int and 0 < cap < len(pieces):
            pieces, finish = pieces[:cap], "length"
        delay = d.delay if d.delay is not None else owner.token_delay
        prompt = scripts.estimate_prompt_tokens(messages)
        return cls(rid, model, int(time.time()), pieces, prompt, finish, thinking, delay, fault, d)

    def envelope(self) -> dict[str, Any]:
        """Return the fields every ``chat.completion.chunk`` repeats."""
        return {
            "id": self.request_id,
            "created": self.created,
            "object": "chat.completion.chunk",
            "model": self.model,
        }

    def usage(self, sent: list[tuple[str, str]]) -> dict[str, Any]:
        """Return the usage object for the pieces actually *sent*."""
        reasoning = sum(1 for kind, _ in sent if kind == "reasoning_content")
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": len(sent),
            "total_tokens": self.prompt_tokens + len(sent),
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        }


def bearer_digest(key: str) -> str:
    """The SHA-256 (hex) of ``Bearer <key>``: what :attr:`RecordedRequest.auth_digest` holds.

    Lets a test assert the exact key was sent without the key ever being logged.
    """
    return hashlib.sha256(f"Bearer {key}".encode()).hexdigest()


@dataclass
class RecordedRequest:
    """One request as the endpoint saw it, with credentials masked.

    ``headers`` has lowercase names; ``authorization`` reads ``"Bearer ***"``, and
    ``auth_digest`` is the SHA-256 (hex) of the header's exact value (``None``
    without one): compare it with :func:`bearer_digest`.
    ``outcome`` is ``"pending"`` while the reply is being written, then
    ``"completed"``, ``"client_closed"`` (the client left first), ``"fault"``
    (an injected fault fired) or ``"error"`` (a bug, or the server was closed
    mid-reply). ``chunks_sent`` counts the SSE ``data:`` frames written.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    outcome: str = "pending"
    chunks_sent: int = 0
    status: int | None = None
    request_id: str | None = None
    auth_digest: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return asdict(self)


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
        return f"http://{host}:{self.port}/v1"

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
        """Clear the request log and the ``fail_times`` counters."""
        self._log.reset()

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
) -> EndpointServer:
    """Start an endpoint in a daemon thread and return it (already serving).

    *token_delay* is the default pause between token pieces; *tokens*, when set,
    makes every reply exactly that many 4-character pieces. With *require_key*,
    requests need ``Authorization: Bearer <require_key>``; by default no key is
    needed, like other loopback endpoints. *verbose* logs request lines to stderr.
    *max_output* is the server's own output limit for requests that send no
    ``max_tokens`` (real servers stop at the model's maximum): a longer reply
    is cut there with ``finish_reason`` ``length``.
    """
    server = EndpointServer(
        host,
        port,
        token_delay,
        tokens,
        require_key=require_key,
        verbose=verbose,
        max_output=max_output,
    )
    return server.start()
