"""The replay half of a :class:`~glm_magic.core.session.Session`: cache mode, key, budget, panel.

:class:`ReplayingSession` is mixed into the session so that ``Session.run``
and ``Session.start`` read as one flow: look the request up
(:meth:`ReplayingSession.lookup_request`), refuse it if it could pass the
limit (:meth:`ReplayingSession.check_budget`), send it, keep the answer
(:meth:`ReplayingSession.keep_reply`). The stores and rules themselves live
in :mod:`.replay` and :mod:`.store`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..reply import Reply, ReplyBuilder
    from .conversation import Conversation
    from .replay import Replay
    from .runner import Renderer
    from .spend import Totals

__all__ = ["KeyedRenderer", "ReplayingSession"]


class KeyedRenderer:
    """A renderer whose final reply carries the request's key (for its provenance)."""

    def __init__(self, inner: Renderer, key: str) -> None:
        self.inner = inner
        self.key = key

    def start(self) -> None:
        """Delegate."""
        self.inner.start()

    def progress(self, builder: ReplyBuilder) -> None:
        """Delegate."""
        self.inner.progress(builder)

    def tick(self) -> None:
        """Delegate."""
        self.inner.tick()

    def finish(self, reply: Reply) -> None:
        """Set the key, then delegate."""
        reply.key = self.key
        self.inner.finish(reply)


class ReplayingSession:
    """Replay, spending limit and the panel's saved conversation, for :class:`Session`."""

    #: The session's :class:`~glm_magic.core.session.Policy` (typed there: no import cycle).
    policy: Any
    shell: Any
    totals: Totals
    _replay: Replay | None = None

    @property
    def replay(self) -> Replay:
        """Where answers are found again (the reply store, the notebook's saved outputs)."""
        if self._replay is None:
            from .replay import Replay, notebook_file
            from .store import ReplyStore

            self._replay = Replay(ReplyStore, lambda: notebook_file(self.shell))
        return self._replay

    def cache_mode(self, refresh: bool = False) -> str:
        """``off``, ``replay`` or ``refresh`` for one request (``refresh``: ``-r`` was given)."""
        from .store import cache_mode

        mode = cache_mode(self.policy.cache or None)
        return "refresh" if refresh and mode != "off" else mode

    def lookup_request(self, prepared: Any, refresh: bool) -> tuple[str, str, Reply | None]:
        """The request's mode, key and replayed answer (``None``: send it)."""
        from ..config import without_keys
        from .store import request_key

        settings = prepared.settings
        mode = self.cache_mode(refresh)
        key = request_key(settings, without_keys(prepared.messages, settings))
        found = self.replay.lookup(key) if mode == "replay" else None
        return mode, key, found

    def check_budget(self, prepared: Any, *, pending: float = 0.0) -> None:
        """Raise :class:`~glm_magic.errors.BudgetError` if ``prepared`` could pass the limit.

        ``pending``: spent by requests not yet in the totals (an agent task's earlier turns).
        """
        from .replay import check_budget
        from .spend import BUDGET_HINT

        hint = getattr(self.policy, "budget_hint", BUDGET_HINT)  # the CLI names its option
        check_budget(prepared, self.totals.cost + pending, self.policy.budget_usd, hint)

    def keep_reply(self, mode: str, key: str, reply: Reply) -> None:
        """Give ``reply`` its key and store it (unless the cache is off)."""
        reply.key = key
        if mode != "off":
            self.replay.keep(key, reply)

    def panel_turns(self) -> list[dict[str, str]]:
        """The chat panel's saved turns for this notebook (``[]``: none, or no known notebook)."""
        from .replay import notebook_file

        path = notebook_file(self.shell)
        if path is None or self.cache_mode() == "off":
            return []
        return self.replay.store.load_panel(str(path.resolve()))

    def save_panel(self, conversation: Conversation) -> None:
        """Keep the panel's conversation for this notebook (an empty one forgets it)."""
        from .replay import notebook_file

        path = notebook_file(self.shell)
        if path is None or self.cache_mode() == "off":
            return
        turns = [
            {"user": t.user, "assistant": t.assistant, "model": t.model} for t in conversation.turns
        ]
        self.replay.store.save_panel(str(path.resolve()), turns)
