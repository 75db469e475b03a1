"""The HTTP transport of the test endpoint: routing, chunked SSE, hang-ups and stalls.

What a request *means* (directives, the reply plan, the log) lives in the package
:mod:`glm_magic.testing`; this module turns it into bytes on a socket the way GLM
servers do: status and headers (``X-Request-ID``, ``Retry-After``), one flushed
HTTP chunk per SSE event, and each stream fault at the point it is meant to hit.
The handler never lets a client disconnect become a traceback: every write and
every wait detects it and ends the reply with outcome ``client_closed``.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import socketserver
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from . import scripts
from .plan import STREAM_FAULTS, Directives, ReplyPlan, invalid_request
from .wire import SseWriter, chunk, dumps, error_body, masked, message

#: The :class:`~glm_magic.testing.EndpointServer` that owns the socket server
#: (duck-typed here: that module imports this one).
EndpointServer = Any

__all__ = ["LoopbackHTTPServer"]

# Faults that end generation at cut_after (length_in_code is cut by its own script).
_STOPPING = STREAM_FAULTS - {"malformed", "glued", "no_done", "length_in_code"}
_FINISH_FAULTS = ("sensitive", "network_error", "length")
_MALFORMED = '{"id": "x", "choices": [ {"delta": '
_STALL_SECONDS = 60.0
_POLL = 0.05  # how often waits look at the client socket and the close flag


class _Stop(Exception):
    """Ends a reply early; ``outcome`` is what the request log records."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


class LoopbackHTTPServer(ThreadingHTTPServer):
    """The socket server behind :class:`~glm_magic.testing.EndpointServer`."""

    daemon_threads = True  # a stalled reply must never keep the process alive

    def __init__(self, address: tuple[str, int], owner: EndpointServer) -> None:
        self.owner = owner
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        """Accept; with TLS, the handshake happens in the handler thread, at its first read."""
        sock, address = self.socket.accept()
        context = self.owner.ssl_context
        if context is not None:
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def server_bind(self) -> None:
        """Bind without ``HTTPServer``'s ``getfqdn()``, a DNS lookup that can stall."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about disconnects (normal when streaming); report real bugs."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streaming and keep-alive need it
    server_version = "glm-magic-test-endpoint"
    _status: int | None = None
    _rid: str | None = None

    @property
    def owner(self) -> EndpointServer:
        return cast(LoopbackHTTPServer, self.server).owner

    def setup(self) -> None:
        super().setup()
        self.owner._track(self.connection, add=True)

    def finish(self) -> None:
        self.owner._track(self.connection, add=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Log the request line to stderr when verbose (never headers, so never keys)."""
        if self.owner.verbose:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")

    def do_GET(self) -> None:
        """Serve any method: routing is by method and path together."""
        self._dispatch()

    do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # -- plumbing -------------------------------------------------------------

    def _start(self, status: int, headers: dict[str, str]) -> None:
        self._status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self._write(b"", headers_too=True)

    def _send(self, status: int, ctype: str, body: str, headers: dict[str, str]) -> None:
        data = body.encode()
        self._start(status, {"Content-Type": ctype, **headers, "Content-Length": str(len(data))})
        self._write(b"" if self.command == "HEAD" else data)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, "application/json", json.dumps(obj, ensure_ascii=False), headers or {})

    def _write(self, data: bytes, *, headers_too: bool = False) -> None:
        try:
            if headers_too:
                self.end_headers()
                self._headers_sent = True
            if data:
                self.wfile.write(data)
            self.wfile.flush()
        except OSError as exc:
            raise _Stop(self._gone()) from exc

    def _count(self, frames: int) -> None:
        self._chunks += frames

    def _pause(self, seconds: float) -> None:
        """Wait *seconds*, stopping at once if the client leaves or the server closes."""
        deadline = time.monotonic() + seconds
        while True:
            if self.owner._closing.is_set():
                raise _Stop("error")
            remaining = deadline - time.monotonic()
            try:
                wait = max(0.0, min(remaining, _POLL))
                ready = select.select([self.connection], [], [], wait)[0]
                # Readable with nothing to read is the client's FIN: it hung up.
                # The plain socket's recv: peeking is refused on TLS sockets, and a FIN
                # shows under TLS as well.
                if ready and not socket.socket.recv(self.connection, 1, socket.MSG_PEEK):
                    raise _Stop(self._gone())
            except (OSError, ValueError) as exc:
                raise _Stop(self._gone()) from exc
            if remaining <= 0:
                return
            if ready:  # pipelined bytes keep the socket readable: avoid a busy loop
                self.owner._closing.wait(min(remaining, _POLL))

    def _gone(self) -> str:
        # close() shuts client sockets down too; that is not the client leaving.
        return "error" if self.owner._closing.is_set() else "client_closed"

    def _abort(self) -> None:
        """Hang up without finishing the response (no chunk terminator)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    # -- routing --------------------------------------------------------------

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        length = self.headers.get("Content-Length", "0")
        raw = self.rfile.read(int(length) if length.isdigit() else 0)
        self._status = None
        self._chunks = 0
        self._headers_sent = False
        self._rid = None
        if path.startswith("/_test/"):
            with contextlib.suppress(_Stop):  # the inspecting client left: nothing to log
                self._test_route(path)
            return
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        log = self.owner._log
        auth = self.headers.get("Authorization")
        record = log.open(self.command, path, masked(dict(self.headers.items())), body, auth)
        outcome = "error"
        try:
            outcome = self._route(path, raw, body)
        except _Stop as stop:
            outcome = stop.outcome
        except Exception:
            traceback.print_exc()  # a bug in this server: show it, then answer 500
            self.close_connection = True
            if not self._headers_sent:
                with contextlib.suppress(_Stop):
                    self._send_json(500, error_body("500", "Internal error"))
        finally:
            log.close(record, outcome, self._chunks, self._status, self._rid)

    def _test_route(self, path: str) -> None:
        if path == "/_test/requests" and self.command == "GET":
            self._send_json(200, [r.to_dict() for r in self.owner.requests])
        elif path == "/_test/reset" and self.command == "POST":
            self.owner.reset()
            self._send_json(200, {"ok": True})
        else:
            self._send_json(404, {"error": {"message": "Not Found"}})

    def _route(self, path: str, raw: bytes, body: Any) -> str:
        known = {"GET /v1/models", "GET /models"}
        known |= {"POST /v1/chat/completions", "POST /chat/completions"}
        if f"{self.command} {path}" not in known:
            self._send_json(404, {"error": {"message": "Not Found"}})
            return "completed"
        owner = self.owner
        auth = self.headers.get("Authorization")
        if owner.require_key is not None and auth != f"Bearer {owner.require_key}":
            code, why = (
                ("1000", "Authentication failed")
                if auth
                else ("1001", "Authorization Token Missing")
            )
            self._send_json(401, error_body(code, why))
            return "completed"
        if path.endswith("/models"):
            data = [{"id": m, "object": "model", "owned_by": "z-ai"} for m in owner.models]
            self._send_json(200, {"object": "list", "data": data})
            return "completed"
        problem = invalid_request(raw, body)
        if problem:
            self._send_json(400, error_body("1214", problem))
            return "completed"
        model, *suffix = body["model"].split("+")
        pairs = [(p.partition("=")[0], p.partition("=")[2] or "1") for p in suffix if p]
        named = sorted((k.lower(), v.strip()) for k, v in self.headers.items())
        x_test = [(k[7:].replace("-", "_"), v) for k, v in named if k.startswith("x-test-")]
        try:
            directives = Directives.parse(pairs + x_test)  # headers last, so they win
        except ValueError as exc:
            self._send_json(400, error_body("1210", str(exc)))
            return "completed"
        rid = body.get("request_id")
        rid = rid if isinstance(rid, str) and rid else owner._log.new_id()
        self._rid = rid
        headers = {"X-Request-ID": rid}
        self._pause(directives.first_byte_delay)
        fault = directives.fault
        if fault and directives.fail_times is not None:
            key = body["model"] + "|" + "|".join(f"{k}={v}" for k, v in x_test)
            fault = fault if owner._log.should_fail(key, directives.fail_times) else None
        error = scripts.error_fault(fault) if fault else None
        if error:
            status, ctype, text = error
            if directives.retry_after is not None:
                headers["Retry-After"] = directives.retry_after
            self._send(status, ctype, text, headers)
            return "fault"
        if not owner._enter():
            self._send_json(429, error_body("1302", "Too many concurrent requests"), headers)
            return "fault"
        try:
            try:
                gen = ReplyPlan.build(owner, body, model, rid, directives, fault)
            except ValueError as exc:  # a malformed agent-script line: one clear line
                self._send_json(400, error_body("1210", str(exc)), headers)
                return "completed"
            if body.get("stream") is True:
                return self._stream(gen, headers)
            return self._complete(gen, headers)
        finally:
            owner._leave()

    # -- replies --------------------------------------------------------------

    def _complete(self, gen: ReplyPlan, headers: dict[str, str]) -> str:
        """Answer a non-streaming request with one ``chat.completion`` body."""
        fault, sent, finish = gen.fault, gen.deltas, gen.finish_reason
        if fault in _FINISH_FAULTS:
            sent, finish = sent[: gen.directives.cut_after], fault or finish
        self._pause(gen.delay * len(sent))  # as long as streaming the same reply
        if fault == "stall":
            self._pause(_STALL_SECONDS)
            self._abort()
            return "fault"
        if fault == "error_event":
            self._send_json(500, error_body("500", "Internal error during streaming"), headers)
            return "fault"
        if fault == "tool_index" and gen.calls:  # no quirk without a stream: calls come whole
            sent = [*sent, {"tool_calls": [c.whole(i) for i, c in enumerate(gen.calls)]}]
        reply = {
            "id": gen.request_id,
            "request_id": gen.request_id,
            "object": "chat.completion",
            "created": gen.created,
            "model": gen.model,
            "choices": [{"index": 0, "finish_reason": finish, "message": message(gen, sent)}],
            "usage": gen.usage(sent),
        }
        text = json.dumps(reply, ensure_ascii=False)
        if fault == "malformed":
            self._send(200, "application/json", text[: len(text) // 2], headers)
            return "fault"
        if fault in ("cut", "truncate"):  # half the promised Content-Length, then hang up
            length = str(len(text.encode()))
            self._start(
                200, {"Content-Type": "application/json", **headers, "Content-Length": length}
            )
            self._write(text[: len(text) // 2].encode())
            self._abort()
            return "fault"
        self._send(200, "application/json", text, headers)
        return "fault" if fault in (*_FINISH_FAULTS, "length_in_code") else "completed"

    def _stream(self, gen: ReplyPlan, headers: dict[str, str]) -> str:
        """Answer ``stream: true``: chunked SSE, one flushed event per token piece."""
        sse = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
        self._start(200, {**sse, "Transfer-Encoding": "chunked", **headers})
        fault, d = gen.fault, gen.directives
        out = SseWriter(self._write, self._count, glue=fault == "glued", comments=d.comments)
        sent = gen.deltas[: d.cut_after] if fault in _STOPPING else gen.deltas
        for i, delta in enumerate(sent):
            if fault == "malformed" and i == d.cut_after:
                out.frame(_MALFORMED, glue=False)
            self._pause(gen.delay if i else 0.0)
            out.frame(chunk(gen, {"index": 0, "delta": {"role": "assistant", **delta}}))
        if fault == "malformed" and d.cut_after >= len(sent):
            out.frame(_MALFORMED, glue=False)
        out.flush()
        if fault in ("cut", "stall"):
            if fault == "stall":
                self._pause(_STALL_SECONDS)
            self._abort()
            return "fault"
        if fault in ("truncate", "error_event"):
            if fault == "error_event":
                out.frame(dumps(error_body("500", "Internal error during streaming")))
                self.close_connection = True
            out.end()
            return "fault"
        finish: dict[str, Any] = {"index": 0, "finish_reason": gen.finish_reason}
        finish["delta"] = {"role": "assistant", "content": ""}
        if fault in ("sensitive", "network_error"):
            finish = {"index": 0, "delta": {}, "finish_reason": fault}  # as in spec 3.D
        elif fault == "length":
            finish["finish_reason"] = "length"
        elif fault == "tool_index":
            # Spec quirk 3: a tool chunk with index -1 already carrying finish_reason
            # (an agent reply's calls, else a stock one), then a second finish chunk.
            calls = [{**c.whole(i), "index": -1} for i, c in enumerate(gen.calls)]
            if not calls:
                call = {"index": -1, "id": f"call_{gen.request_id}", "type": "function"}
                call["function"] = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
                calls = [call]
            delta = {"role": "assistant", "tool_calls": calls}
            out.frame(chunk(gen, {"index": 0, "finish_reason": "tool_calls", "delta": delta}))
            finish["finish_reason"] = "tool_calls"
            sent = [*sent, {"tool_calls": calls}]
        usage = gen.usage(sent)
        last = [chunk(gen, finish, usage=usage)] if d.usage == "finish" else [chunk(gen, finish)]
        if d.usage != "finish":
            last.append(dumps({**gen.envelope(), "choices": [], "usage": usage}))
        for payload in last[:-1]:
            out.frame(payload)
        # Glued streams end in "{...}data: [DONE]": the last JSON frame waits for it.
        out.flush()
        out.frame(last[-1])
        if fault != "no_done":
            out.frame("[DONE]")
        out.flush()
        out.end()
        return "fault" if fault else "completed"
