"""Requests in flight per endpoint, shared by every surface in the process.

Z.ai limits the requests in flight per model and key (error 1302, "too many
concurrent requests"; some plans allow one or two). A ``%%glm`` cell, the
panel, a Fix button and a background reply running at once would collide, so
every request to one endpoint takes a slot here first (:meth:`Slots.acquire`)
and waits its turn when all are taken.

A 1302 lowers the endpoint's limit to the requests still in flight besides
the one refused (at least one) until a reply succeeds; the refused request
is retried by the client's usual rule (only before the first byte).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..errors import GlmError

__all__ = ["Slots", "slots_for", "too_many_in_flight"]

#: Longest sleep between looks at the stop flag while waiting (a stop also wakes waiters).
_POLL = 0.25


class Slots:
    """The in-flight requests of one endpoint; thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.in_flight = 0
        #: The limit lowered by a 1302 (``None``: the configured limit applies).
        self.lowered: int | None = None

    def __repr__(self) -> str:
        return f"<Slots {self.in_flight} in flight, lowered to {self.lowered}>"

    def _cap(self, limit: int | None) -> int | None:
        caps = [c for c in (limit, self.lowered) if c is not None]
        return max(1, min(caps)) if caps else None

    def try_acquire(self, limit: int | None) -> bool:
        """Take a slot if one is free now."""
        with self._cond:
            cap = self._cap(limit)
            if cap is not None and self.in_flight >= cap:
                return False
            self.in_flight += 1
            return True

    def acquire(self, limit: int | None, stopped: Callable[[], bool]) -> bool:
        """Wait for a slot; False (and no slot) if ``stopped()`` became true first."""
        with self._cond:
            while True:
                if stopped():
                    return False
                cap = self._cap(limit)
                if cap is None or self.in_flight < cap:
                    self.in_flight += 1
                    return True
                self._cond.wait(_POLL)

    def release(self) -> None:
        """Give a slot back."""
        with self._cond:
            self.in_flight = max(0, self.in_flight - 1)
            self._cond.notify_all()

    def refused(self) -> None:
        """The server said "too many concurrent requests" (1302); the request gave its slot back.

        The limit becomes the requests still in flight (at least one), which the server
        evidently accepts, until a reply succeeds.
        """
        with self._cond:
            others = max(1, self.in_flight)
            self.lowered = others if self.lowered is None else min(self.lowered, others)

    def succeeded(self) -> None:
        """A reply succeeded: the configured limit applies again."""
        with self._cond:
            if self.lowered is not None:
                self.lowered = None
                self._cond.notify_all()

    def wake(self) -> None:
        """Wake waiters so they look at their stop flag now."""
        with self._cond:
            self._cond.notify_all()


_registry: dict[str, Slots] = {}
_registry_lock = threading.Lock()


def slots_for(base_url: str) -> Slots:
    """The one :class:`Slots` of an endpoint in this process (cells, panel, buttons alike)."""
    key = base_url.rstrip("/").lower()
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = _registry[key] = Slots()
        return found


def too_many_in_flight(error: GlmError) -> bool:
    """Whether ``error`` is Z.ai's 1302 (a proxy that replaced the code still says so)."""
    return getattr(error, "code", None) == "1302" or "concurren" in error.message.lower()
