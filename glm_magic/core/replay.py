"""Replaying answers and limiting spend: what :class:`~glm_magic.core.session.Session` asks first.

Before a request is sent the session asks :class:`Replay` for the answer:
the reply store (:mod:`.store`) first, then the notebook's own saved outputs
(:func:`notebook_file` finds the notebook: ``$GLM_MAGIC_NOTEBOOK``, which
``glm-magic run`` sets and nbclient or papermill users can set, or the
Jupyter server's ``JPY_SESSION_NAME``). A saved answer found there is copied
into the store, so the next run finds it at once. Only when neither has it
does the request go out, after :func:`check_budget`.

Replaying shows text; it never runs anything. Replayed code is inserted
(``--insert``) exactly as a fresh answer's would be, and no more.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BudgetError
from ..models import estimate_cost, estimate_tokens
from ..provenance import SavedOutput, saved_outputs

if TYPE_CHECKING:
    from ..events import Event
    from ..reply import Reply
    from .store import ReplyStore

__all__ = [
    "NOTEBOOK_ENV",
    "CannedStream",
    "Replay",
    "check_budget",
    "estimate_request_cost",
    "notebook_file",
]

#: The notebook a headless kernel runs (its saved outputs replay on a store miss).
NOTEBOOK_ENV = "GLM_MAGIC_NOTEBOOK"
#: A saved notebook larger than this is not read for answers.
MAX_NOTEBOOK_BYTES = 200 * 1024 * 1024


def notebook_file(shell: Any = None) -> Path | None:
    """The notebook file this kernel runs, when something says so; else ``None``."""
    named = os.environ.get(NOTEBOOK_ENV) or os.environ.get("JPY_SESSION_NAME")
    if not named and shell is not None:
        named = getattr(shell, "user_ns", {}).get("__session__")
    if not isinstance(named, str) or not named.strip():
        return None
    path = Path(named).expanduser()
    return path if path.suffix == ".ipynb" and path.is_file() else None


def estimate_request_cost(prepared: Any) -> float | None:
    """The most a request may cost: its prompt, plus the output it may use, at catalog prices."""
    settings, info = prepared.settings, prepared.info
    prompt = sum(estimate_tokens(str(m.get("content", ""))) for m in prepared.messages)
    return estimate_cost(info, prompt, info.reply_reserve(settings.max_tokens))


def check_budget(prepared: Any, spent: float, limit: float | None, how: str) -> None:
    """Raise :class:`BudgetError` when the request could take spending past ``limit``.

    ``how`` says how to raise the limit (``%config GlmMagics.budget_usd = ...``).
    """
    if limit is None:
        return
    cost = estimate_request_cost(prepared)
    if cost is None:
        cost = 0.0  # unknown prices: only a limit already reached refuses
    if spent + cost > limit:
        raise BudgetError(
            f"refused: this request (up to ~${cost:.4f}) would pass the spending limit of "
            f"${limit:.4f}; ${spent:.4f} spent so far; raise it with {how}"
        )


class Replay:
    """Where answers are found again: the store, then the notebook's saved outputs."""

    def __init__(
        self,
        store_factory: Callable[[], ReplyStore],
        notebook: Callable[[], Path | None],
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._store_factory = store_factory
        self._store: ReplyStore | None = None
        self._notebook = notebook
        self._warn = warn or (lambda line: print(line, file=sys.stderr))
        self._saved: dict[str, SavedOutput] | None = None

    @property
    def store(self) -> ReplyStore:
        """The reply store (opened on first use)."""
        if self._store is None:
            self._store = self._store_factory()
        return self._store

    def lookup(self, key: str) -> Reply | None:
        """The answer to the request ``key``, marked replayed, or ``None``."""
        found = self.store.get(key)
        if found is not None:
            return found
        saved = self.saved().get(key)
        if saved is None:
            return None
        self.store.put(key, saved.reply)
        return saved.reply

    def keep(self, key: str, reply: Reply) -> None:
        """Store a fresh, complete answer (a failed or stopped one is never replayed)."""
        if not reply.error and reply.finish_reason is not None:
            self.store.put(key, reply)

    def saved(self) -> dict[str, SavedOutput]:
        """The notebook's saved answers by key, read once (problems: one line each)."""
        if self._saved is not None:
            return self._saved
        self._saved = {}
        path = self._notebook()
        if path is None:
            return self._saved
        try:
            if path.stat().st_size > MAX_NOTEBOOK_BYTES:
                self._warn(f"glm-magic: {path.name} is too large to read saved answers from")
                return self._saved
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            detail = " ".join(str(exc).split())[:200]
            self._warn(f"glm-magic: saved answers in {path.name} not read ({detail})")
            return self._saved
        if not isinstance(nb, dict):
            self._warn(f"glm-magic: {path.name} is not a notebook; saved answers not read")
            return self._saved
        for item in saved_outputs(nb):
            if isinstance(item, str):
                self._warn(f"glm-magic: {path.name}: {item}")
            else:
                self._saved.setdefault(item.key, item)
        return self._saved

    def forget_saved(self) -> None:
        """Read the notebook again on the next lookup (it may have been saved since)."""
        self._saved = None


class CannedStream:
    """A :class:`~glm_magic.core.runner.Stoppable` of a replayed answer, or of a refusal.

    Widgets stream in the background (:class:`~glm_magic.core.runner.BackgroundRun`);
    feeding them a replay or a budget refusal through the same driver keeps
    their one code path: the refusal arrives as the stream's error.
    """

    def __init__(self, reply: Reply | None, error: BudgetError | None = None) -> None:
        from ..reply import ReplyBuilder

        self._reply = reply
        self._error = error
        self.builder = ReplyBuilder(reply.model if reply is not None else "")
        if reply is not None:
            self.builder.request_id = reply.request_id
            self.builder.max_tokens = reply.max_tokens

    def __iter__(self) -> Iterator[Event]:
        from ..events import Finish, ReasoningDelta, TextDelta

        if self._error is not None:
            raise self._error
        reply = self._reply
        if reply is None:
            return
        events: list[Event] = [ReasoningDelta(reply.reasoning)] if reply.reasoning else []
        events.append(TextDelta(reply.text))
        if reply.usage is not None:
            events.append(reply.usage)
        events.append(Finish(reply.finish_reason or "stop"))
        for event in events:
            self.builder.add(event)  # folded as it yields, as the client's streams are
            yield event

    def close(self) -> None:
        """Nothing to close: no connection was opened."""
