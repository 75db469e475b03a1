"""HTTP client for OpenAI-compatible chat completions (GLM first), on httpx.

This is the only module that talks HTTP, and the one place where library and
server failures become :mod:`glm_magic.errors` classes. It never imports
IPython.

- :meth:`ChatClient.stream` returns a :class:`ReplyStream`: iterate it for
  typed events; it folds them into a reply you can read at any time
  (:attr:`ReplyStream.reply`), and :meth:`ReplyStream.close` (safe from another
  thread) shuts the socket at once so the server stops generating and billing.
- :meth:`ChatClient.complete` is the non-streaming call; both return the same
  :class:`~glm_magic.reply.Reply` type.
- Connections are pooled and kept alive, streams included
  (:mod:`.transport` knows each one's socket, so a stop still shuts it at
  once); requests to one endpoint wait for a free slot (:mod:`.limit`,
  ``Settings.max_concurrent``), announced by a :class:`~glm_magic.events.Waiting` event.
- Retries are bounded, jittered, capped, honour ``Retry-After``, apply only to
  retryable kinds, and only while nothing of the reply has been received.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
import urllib.request
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..config import Secret, Settings
from ..errors import (
    ConfigError,
    ConnectError,
    GlmError,
    ServerError,
    StreamBrokenError,
    TimeoutError,
    redact,
)
from ..events import Finish
from ..reply import Reply, ReplyBuilder
from ..version import __version__
from .errormap import error_fields, finish_error, map_http_error
from .limit import slots_for, too_many_in_flight
from .sse import parse_chunk
from .stream import ReplyStream
from .transport import PooledTransport

__all__ = ["ChatClient", "KeyAuth", "ReplyStream", "build_body"]

log = logging.getLogger("glm_magic")

Message = Mapping[str, Any]

#: Hosts that put usage in every stream unasked (and may reject fields they do not know).
_USAGE_UNASKED_HOSTS = ("runapi.ai", "api.z.ai", "open.bigmodel.cn")


def _is_glm_host(settings: Settings) -> bool:
    host = (urlsplit(settings.base_url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in _USAGE_UNASKED_HOSTS)


def _asks_for_stream_usage(settings: Settings) -> bool:
    if settings.stream_usage is not None:
        return settings.stream_usage
    return not _is_glm_host(settings)


class KeyAuth(httpx.Auth):
    """Bearer authentication that keeps the key out of every ``repr`` and local variable.

    The header is set on the request as it goes out, so no dict of headers
    holding ``Bearer <key>`` ever sits in one of our frames (``%xmode Verbose``
    prints their locals when something fails).
    """

    def __init__(self, key: Secret) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "KeyAuth(***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Add ``Authorization: Bearer ...`` to ``request``."""
        request.headers["Authorization"] = "Bearer " + self._key.reveal()
        yield request


def build_body(
    settings: Settings,
    messages: Sequence[Message],
    *,
    stream: bool,
    tools: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``.

    Only fields the user set are sent: strict OpenAI-compatible servers (and
    RunAPI) may reject fields they do not know, such as ``thinking``. The
    exceptions are ``stream_options`` on streams to servers that report usage
    only when asked (see :attr:`Settings.stream_usage`), and ``tool_stream``
    on streams with ``tools`` to GLM's own hosts, which otherwise send each
    tool call only when it is whole.
    """
    body: dict[str, Any] = {"model": settings.model, "messages": list(messages), "stream": stream}
    if stream and _asks_for_stream_usage(settings):
        # OpenAI-style servers (LiteLLM, vLLM, OpenAI) put usage in a stream only when asked.
        body["stream_options"] = {"include_usage": True}
    if settings.temperature is not None:
        body["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        body["max_tokens"] = settings.max_tokens
    if settings.thinking is not None:
        body["thinking"] = {"type": "enabled" if settings.thinking else "disabled"}
    if tools:
        body["tools"] = [dict(tool) for tool in tools]
        # Only "auto" exists on GLM (spec); sent so OpenAI-style servers behave the same.
        body["tool_choice"] = "auto"
        if stream and _is_glm_host(settings):
            body["tool_stream"] = True
    return body


def _environment_proxies() -> bool:
    # httpx routes through $HTTPS_PROXY / $ALL_PROXY itself only with its own transports.
    proxies = urllib.request.getproxies()
    return any(proxies.get(k) for k in ("http", "https", "all"))


class ChatClient:
    """A reusable connection pool for one endpoint; cheap to keep for a kernel's life."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: whom to trust (default: the system's CAs, or ``$SSL_CERT_FILE``)."""
        self.settings = settings
        common: dict[str, Any] = {
            "timeout": self._timeout(settings),
            "follow_redirects": True,
            "headers": {"User-Agent": f"glm-magic/{__version__}"},
        }
        if transport is None and not _environment_proxies():
            # One kept-alive pool for streams and whole replies: PooledTransport tells each
            # stream its connection's socket, so a stop still shuts it before any header.
            self._http = httpx.Client(transport=PooledTransport(ssl_context), **common)
            self._stream_http = self._http
            #: Whether streamed replies reuse connections.
            self.pooled = True
            return
        # Behind an environment proxy (or a test's own transport), httpx builds the route:
        # streams then never reuse a connection, and each one's socket is seen as it
        # connects (ReplyStream._on_trace), so a stop can shut it before any header.
        if ssl_context is not None:
            common["verify"] = ssl_context
        self._http = httpx.Client(transport=transport, **common)
        self._stream_http = httpx.Client(
            transport=transport, limits=httpx.Limits(max_keepalive_connections=0), **common
        )
        self.pooled = False

    @staticmethod
    def _timeout(settings: Settings) -> httpx.Timeout:
        return httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.connect_timeout,
        )

    def __repr__(self) -> str:
        return f"<ChatClient {self.settings.shown_base_url}>"

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()
        if self._stream_http is not self._http:
            self._stream_http.close()

    # -- building blocks used by ReplyStream -------------------------------------

    def _headers(self, settings: Settings, *, stream: bool) -> dict[str, str]:
        # The key is not among them: KeyAuth adds it as the request goes out.
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        headers["X-Client-Request-Id"] = f"glm-magic-{uuid.uuid4().hex[:16]}"
        headers.update(settings.extra_headers)
        return headers

    @staticmethod
    def _auth(settings: Settings) -> KeyAuth | None:
        key = settings.require_key()
        return KeyAuth(key) if key is not None else None

    def _send(
        self,
        settings: Settings,
        body: dict[str, Any],
        *,
        stream: bool,
        trace: Callable[[str, Mapping[str, Any]], None] | None = None,
    ) -> httpx.Response:
        """POST the body; map transport failures (the response is not yet checked)."""
        headers = self._headers(settings, stream=stream)
        auth = self._auth(settings)
        http = self._stream_http if stream else self._http
        try:
            request = http.build_request(
                "POST",
                settings.base_url.rstrip("/") + "/chat/completions",
                json=body,
                headers=headers,
                timeout=self._timeout(settings),
                extensions={"trace": trace} if trace is not None else None,
            )
            return http.send(request, stream=stream, auth=auth)
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, UnicodeError) as exc:
            raise self._transport_error(exc, streaming=False) from None

    def _http_error(self, settings: Settings, response: httpx.Response) -> GlmError:
        """Map an error response (already read) to the error tree."""
        return map_http_error(
            response.status_code,
            response.text,
            response.headers,
            model=settings.model,
            key_env=settings.api_key_env,
            secrets=settings.keys_to_mask(),
            request_id=response.headers.get("x-request-id"),
        )

    def _stream_error(self, settings: Settings, data: str) -> GlmError:
        """Map an error frame sent inside a stream."""
        code, _ = error_fields(data)
        status = 500 if code is None or not code.isdigit() or int(code) >= 500 else 400
        error = map_http_error(
            status,
            data,
            {},
            model=settings.model,
            key_env=settings.api_key_env,
            secrets=settings.keys_to_mask(),
        )
        error.message = f"the server sent an error mid-stream: {error.message}"
        if isinstance(error, ServerError):
            return StreamBrokenError(error.message)
        return error

    def _transport_error(self, exc: Exception, *, streaming: bool) -> GlmError:
        """Map an httpx exception to the error tree, as one line (no URL userinfo, no key)."""
        host = self.settings.base_url.split("//", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
        if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError)):
            return ConfigError(
                f"base URL {self.settings.shown_base_url!r} cannot be used "
                f"({type(exc).__name__}); check GLM_BASE_URL or GlmMagics.base_url"
            )
        if isinstance(exc, httpx.ConnectTimeout):
            return TimeoutError(f"connecting to {host} took longer than the connect timeout")
        if isinstance(exc, httpx.ReadTimeout):
            return TimeoutError(
                f"no data from {host} for {self.settings.read_timeout:g} s "
                "(GlmMagics.read_timeout); the text so far is kept"
            )
        if isinstance(exc, httpx.TimeoutException):
            return TimeoutError(f"the request to {host} timed out ({type(exc).__name__})")
        if isinstance(exc, httpx.ConnectError):
            return ConnectError(
                f"cannot reach {host}: {redact(str(exc), *self.settings.keys_to_mask())}; "
                "check GLM_BASE_URL"
            )
        if isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError)) and streaming:
            return StreamBrokenError(
                f"the connection to {host} dropped mid-reply ({type(exc).__name__}); "
                "the text so far is kept"
            )
        return ConnectError(f"request to {host} failed: {type(exc).__name__}")

    def _retry_wait(self, attempt: int, error: GlmError, settings: Settings) -> float | None:
        """Seconds to wait before retrying after ``attempt`` failed, or ``None``: do not retry.

        The one retry rule for streamed and whole replies: retryable kinds only,
        at most ``settings.max_retries`` retries.
        """
        if not error.retryable or attempt > settings.max_retries:
            return None
        wait = self._backoff(attempt, error, settings)
        log.info("retrying in %.1f s after: %s", wait, error.one_line())
        return wait

    def _backoff(self, attempt: int, error: GlmError, settings: Settings | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based), capped by the settings."""
        cap = (settings or self.settings).retry_max_wait
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)) and retry_after > 0:
            return float(min(retry_after, cap))
        base: float = min(cap, 0.5 * 2 ** (attempt - 1))
        return base / 2 + random.uniform(0, base / 2)

    # -- public calls --------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[Message],
        settings: Settings | None = None,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ReplyStream:
        """Start a streamed completion; nothing is sent until the stream is iterated.

        ``tools`` are function tools the model may call (``{"type": "function",
        "function": {"name", "description", "parameters"}}``); the calls come back
        as :class:`~glm_magic.events.ToolCallDelta` events, assembled in the reply.
        """
        s = settings or self.settings
        return ReplyStream(self, s, build_body(s, messages, stream=True, tools=tools))

    def complete(
        self,
        messages: Sequence[Message],
        settings: Settings | None = None,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> Reply:
        """A non-streamed completion, with the same retries and errors as streaming."""
        s = settings or self.settings
        body = build_body(s, messages, stream=False, tools=tools)
        attempt = 0
        while True:
            attempt += 1
            builder = ReplyBuilder(s.model, redact=s.redactor())
            builder.max_tokens = s.max_tokens
            slots = slots_for(s.base_url)
            slots.acquire(s.max_concurrent, lambda: False)
            try:
                try:
                    response = self._send(s, body, stream=False)
                finally:
                    slots.release()
                if response.status_code >= 400:
                    raise self._http_error(s, response)
                try:
                    data = response.json()
                except ValueError as exc:
                    raise StreamBrokenError("the server's reply was not valid JSON") from exc
                builder.request_id = response.headers.get("x-request-id") or (
                    data.get("request_id") or data.get("id") if isinstance(data, dict) else None
                )
                for event in parse_chunk(data):
                    builder.add(event)
                if builder.finish_reason is None:
                    builder.add(Finish("stop"))
                error = finish_error(builder.finish_reason or "", builder.snapshot())
                if error is not None:
                    raise error
                slots.succeeded()
                return builder.snapshot()
            except GlmError as error:
                if too_many_in_flight(error):
                    slots.refused()
                wait = self._retry_wait(attempt, error, s)
                if wait is None:
                    if error.partial is None:
                        error.partial = builder.snapshot(error=error.one_line())
                    raise
                time.sleep(wait)

    def list_models(self) -> list[str]:
        """Model ids from ``GET /models`` (sorted)."""
        s = self.settings
        headers = self._headers(s, stream=False)
        try:
            response = self._http.get(
                s.base_url.rstrip("/") + "/models", headers=headers, auth=self._auth(s)
            )
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, UnicodeError) as exc:
            raise self._transport_error(exc, streaming=False) from None
        if response.status_code >= 400:
            raise self._http_error(s, response)
        try:
            data = response.json().get("data", [])
        except (ValueError, AttributeError) as exc:
            raise StreamBrokenError("the /models reply was not the expected JSON") from exc
        return sorted(str(m["id"]) for m in data if isinstance(m, dict) and "id" in m)
