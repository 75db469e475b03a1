"""A pooled httpx transport whose every connection can be shut by the reply using it.

Streams keep their connections alive between replies (one TCP and one TLS
handshake per endpoint, not per reply), yet a Stop must still shut the socket
at once: before the response headers (LiteLLM's proxy sends none before the
first token) as well as mid-stream, on a fresh or a reused connection.

The socket is found through httpcore's public network-backend interface
(``httpcore.ConnectionPool(network_backend=...)``): every network stream the
pool opens is wrapped in a :class:`_TrackedStream`, and whenever it connects,
starts TLS or writes a request it tells the *owner* registered for the
calling thread (:func:`owning`). httpcore sends a request from the thread
that asked for it and writes before it waits for any reply, so the owner
knows the socket before it can block on it. No private attribute is read.

A stream that was shut reports itself readable, which httpcore's pool takes
as "the server hung up": a stopped connection is discarded, never reused.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import httpcore
import httpx

__all__ = ["Owner", "PooledTransport", "TrackedStream", "owning"]

_local = threading.local()


class Owner(Protocol):
    """Whoever may need to shut the connection its thread is using (a reply stream)."""

    def attach(self, stream: TrackedStream) -> None:
        """The calling thread's request now runs on ``stream``."""


@contextlib.contextmanager
def owning(owner: Owner) -> Iterator[None]:
    """Register ``owner`` for the connections the calling thread uses inside the block."""
    previous = getattr(_local, "owner", None)
    _local.owner = owner
    try:
        yield
    finally:
        _local.owner = previous


class TrackedStream(httpcore.NetworkStream):
    """A network stream that tells its thread's owner about itself and can be shut."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner
        self._shut = threading.Event()
        #: When set (by the owner, after ``[DONE]``), reads wait at most this long:
        #: the rest of a finished body is drained for reuse, never waited on for long.
        self.tail_timeout: float | None = None
        self._claim()

    @property
    def shut(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._shut.is_set()

    def _claim(self) -> None:
        owner = getattr(_local, "owner", None)
        if owner is not None:
            owner.attach(self)

    def shutdown(self) -> None:
        """Shut the socket now (safe from any thread): wakes a blocked read, sends FIN."""
        self._shut.set()
        sock = self._inner.get_extra_info("socket")
        if isinstance(sock, socket.socket):
            # The plain socket's shutdown, also for an SSLSocket: SSLSocket.shutdown
            # would drop its SSL object under a read running in another thread.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read from the socket (a shut stream reads as closed)."""
        if self.tail_timeout is not None:
            timeout = self.tail_timeout if timeout is None else min(timeout, self.tail_timeout)
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write a request: the first thing a request does, so claim the stream first."""
        self._claim()
        self.tail_timeout = None  # a new request on a reused connection waits as long as it must
        if self.shut:
            raise httpcore.WriteError("the connection was closed by a stop")
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        """Close the socket."""
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """Start TLS; the TLS stream is tracked too."""
        inner = self._inner.start_tls(ssl_context, server_hostname, timeout)
        return TrackedStream(inner)

    def get_extra_info(self, info: str) -> Any:
        """As the inner stream, except that a shut stream is "readable": the pool drops it."""
        if info == "is_readable" and self.shut:
            return True
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        return TrackedStream(
            self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return TrackedStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# httpcore's exceptions as httpx's, most specific first (what httpx's own transport does).
_EXCEPTIONS: tuple[tuple[type[Exception], type[Exception]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except httpx.HTTPError:
        raise
    except Exception as exc:
        for source, target in _EXCEPTIONS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _mapped():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PooledTransport(httpx.BaseTransport):
    """httpx's HTTP/1.1 transport on an httpcore pool of :class:`TrackedStream` connections."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, *, max_keepalive: int = 4):
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(verify=True, trust_env=True),
            max_keepalive_connections=max_keepalive,
            keepalive_expiry=60.0,
            network_backend=_Backend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` on a pooled connection."""
        assert isinstance(request.stream, httpx.SyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            response = self._pool.handle_request(core)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()
