"""A user-space TCP proxy on loopback that simulates a network round-trip time.

``tc netem`` is not available on these machines, so every byte is held here for
half the round-trip time in each direction, in order, by one thread per
direction. The kernel answers the proxy's SYN at once, so the TCP handshake of a
new connection is modelled by holding the client's first bytes one more round
trip. TLS passes through untouched (the endpoint terminates it), so its
handshake pays the simulated round trips like on a real network. A hang-up on
either side is passed on after the bytes before it, so the endpoint sees a
client's stop.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import threading
import time
from types import TracebackType

__all__ = ["DelayProxy"]


class _Pipe:
    """One direction of one connection: read, hold ``delay`` seconds, write."""

    def __init__(self, src: socket.socket, dst: socket.socket, delay: float, first_at: float):
        self._src, self._dst, self._delay, self._first_at = src, dst, delay, first_at
        self._queue: list[tuple[float, int, bytes]] = []
        self._cond = threading.Condition()
        self._seq = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._write, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self._src.recv(65536)
            except OSError:
                data = b""
            due = max(time.monotonic() + self._delay, self._first_at)
            with self._cond:
                self._seq += 1
                heapq.heappush(self._queue, (due, self._seq, data))
                self._cond.notify()
            if not data:
                return

    def _write(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                due, _, data = self._queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._queue)
            if not data:  # the source hung up: pass it on
                with contextlib.suppress(OSError):
                    self._dst.shutdown(socket.SHUT_WR)
                return
            try:
                self._dst.sendall(data)
            except OSError:
                with contextlib.suppress(OSError):
                    self._src.shutdown(socket.SHUT_RDWR)
                return


class DelayProxy:
    """Forward ``127.0.0.1:<port>`` to ``target`` with ``rtt`` seconds of round-trip time."""

    def __init__(self, target: tuple[str, int], rtt: float) -> None:
        self.target, self.rtt = target, rtt
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.accepted = 0
        self._closing = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            accepted_at = time.monotonic()
            upstream = socket.create_connection(self.target)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            half = self.rtt / 2
            # SYN, SYN-ACK, then the first data: 1.5 round trips after connect() began.
            _Pipe(client, upstream, half, accepted_at + 1.5 * self.rtt)
            _Pipe(upstream, client, half, 0.0)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> DelayProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
