"""The session every surface shares: one request policy, one client pool, one memory.

``%%glm``, ``%glm QUESTION``, ``%glm explain/fix``, the chat panel, the
Explain/Fix buttons and :func:`glm_magic.ask` all go through a
:class:`Session` (docs/ARCHITECTURE.md shows the life of one cell):

1. :meth:`Session.settings` resolves the settings of one request from the
   session's :class:`Policy` (the magics' traitlets, or plain defaults);
2. :meth:`Session.prepare` / :meth:`Session.prepare_assist` turn a prompt
   plus a context spec into messages, with **one** context-budget rule
   (:meth:`Session.context_budget`), one join and one conversation trim;
3. :meth:`Session.run` (foreground, with interrupts) or :meth:`Session.start`
   (a background thread, for widgets) streams the reply through a renderer
   with the one stream driver (:mod:`glm_magic.core.runner`);
   A request whose answer is in the reply store (or the notebook's saved
   outputs) is not sent: the answer is replayed (:mod:`glm_magic.core.replay`),
   unless the cache mode is ``off`` or ``refresh``; a request that would pass
   the spending limit is refused before it is sent;
4. the reply is remembered once (:meth:`Session.remember`): the
   conversation, the last reply, the totals, and the surface's own
   ``on_reply`` callback (the IPython layer writes ``_glm`` there).

Nothing here imports IPython, ipywidgets or httpx; the shell, when there
is one, is passed in and used by duck typing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..config import Settings, resolve_settings
from ..defaults import DEFAULT_KEY_ENV, DEFAULT_SYSTEM
from ..models import ModelInfo, estimate_cost, estimate_tokens, model_info
from .conversation import Conversation
from .replaying import KeyedRenderer, ReplayingSession
from .spend import Totals, env_budget

if TYPE_CHECKING:
    from ..client.chat import ChatClient
    from ..failures import Failure
    from ..reply import Reply, ReplyBuilder
    from .runner import BackgroundRun, Renderer

__all__ = [
    "DEFAULT_SYSTEM",
    "Defaults",
    "Fixed",
    "Policy",
    "Prepared",
    "Session",
    "Totals",
    "context_budget",
]


#: Tokens kept free for the chat template's own wrapping of the messages.
MESSAGE_OVERHEAD = 64


def context_budget(info: ModelInfo, max_tokens: int | None, used_tokens: int) -> int:
    """Tokens the selected notebook context may use: **the** rule, for every surface.

    The model's window, less the room kept for the reply, less what the
    request already holds (system prompt, question, explain/fix material),
    less the template's overhead; three quarters of that, since our token
    estimate is rough, and never less than a useful minimum.
    """
    room = info.context_window - info.reply_reserve(max_tokens) - used_tokens - MESSAGE_OVERHEAD
    return max(room * 3 // 4, 256)


class Policy(Protocol):
    """Where a session reads the user's settings (the magics' traitlets, or :class:`Defaults`)."""

    system_prompt: str
    mask_secrets: bool
    stream: bool
    update_interval: float
    #: ``off`` | ``replay`` | ``refresh`` (empty: ``$GLM_MAGIC_CACHE``, else ``replay``).
    cache: str

    @property
    def budget_usd(self) -> float | None:
        """Spending limit in USD for this session (``None``: none)."""

    def resolve(self, **overrides: Any) -> Settings:
        """Settings for one request; raises :class:`~glm_magic.errors.ConfigError`."""


@dataclass
class Defaults:
    """The policy without IPython: environment variables and built-in defaults."""

    system_prompt: str = DEFAULT_SYSTEM
    mask_secrets: bool = True
    stream: bool = True
    update_interval: float = 0.12
    cache: str = ""
    budget_usd: float | None = field(default_factory=env_budget)

    def resolve(self, **overrides: Any) -> Settings:
        """Settings from ``$GLM_BASE_URL``, ``$GLM_MODEL``, ``$RUNAPI_KEY`` and ``overrides``."""
        # None: resolve_settings reads $GLM_BASE_URL / $GLM_MODEL at each request.
        values: dict[str, Any] = {"base_url": None, "model": None, "api_key_env": DEFAULT_KEY_ENV}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return resolve_settings(**values)


@dataclass
class Fixed:
    """A policy whose settings were decided up front (the command line's options)."""

    settings: Settings
    system_prompt: str = DEFAULT_SYSTEM
    mask_secrets: bool = True
    stream: bool = True
    update_interval: float = 0.12
    cache: str = ""
    budget_usd: float | None = field(default_factory=env_budget)
    #: How the budget refusal tells the user to raise the limit.
    budget_hint: str = "--budget-usd N"

    def resolve(self, **overrides: Any) -> Settings:
        """The fixed settings (per-request overrides are not offered here)."""
        return self.settings


@dataclass
class Prepared:
    """One request, ready to send: messages, settings, and what to tell the user."""

    messages: list[dict[str, Any]]
    settings: Settings
    info: ModelInfo
    #: What the conversation remembers of the user's turn (their words, not the context).
    remember_as: str
    notes: list[str] = field(default_factory=list)
    context_tokens: int = 0
    #: For explain / fix: what is sent about the failure, in a few words.
    about: str = ""

    @property
    def estimated_cost(self) -> float | None:
        """The prompt's estimated cost at the model's input price."""
        tokens = sum(estimate_tokens(str(m.get("content", ""))) for m in self.messages)
        return estimate_cost(self.info, tokens, 0)


class Session(ReplayingSession):
    """One user's GLM session: settings, clients, conversation, last reply, totals."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        shell: Any = None,
        on_reply: Callable[[Reply, str | None], None] | None = None,
    ) -> None:
        self.policy: Policy = policy if policy is not None else Defaults()
        self.shell = shell
        self.on_reply = on_reply
        self.conversation = Conversation()
        self.last_reply: Reply | None = None
        self.totals = Totals()
        self._clients: dict[tuple[object, ...], ChatClient] = {}
        self._replay = None

    def __repr__(self) -> str:
        return f"<Session {len(self.conversation.turns)} turns, {self.totals.replies} replies>"

    # -- settings and clients ------------------------------------------------------------

    def settings(self, **overrides: Any) -> Settings:
        """Settings for one request (``overrides`` from the surface's options)."""
        return self.policy.resolve(**overrides)

    def client(self, settings: Settings) -> ChatClient:
        """A pooled client for this endpoint and these timeouts (kept for reuse)."""
        from ..client.chat import ChatClient

        key = (
            settings.base_url,
            settings.connect_timeout,
            settings.read_timeout,
            settings.write_timeout,
        )
        found = self._clients.get(key)
        if found is None:
            found = self._clients[key] = ChatClient(settings)
        return found

    def close(self) -> None:
        """Close pooled HTTP connections."""
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    # -- building requests ---------------------------------------------------------------

    def context_block(
        self, spec: str | Sequence[str] | None, settings: Settings, used_tokens: int
    ) -> tuple[str, int, list[str]]:
        """The notebook context ``spec`` selects, fitted by :func:`context_budget`.

        Returns the text (empty when nothing was selected), its tokens and the
        notes to show. Raises :class:`~glm_magic.errors.ConfigError` for a bad spec.
        """
        if not spec:
            return "", 0, []
        from ..context import build_context, parse_spec

        parsed = parse_spec(spec)
        if parsed.empty:
            return "", 0, []
        info = model_info(settings.model)
        block = build_context(
            self.shell,
            parsed,
            budget_tokens=context_budget(info, settings.max_tokens, used_tokens),
            mask=self.policy.mask_secrets,
            secrets=settings.keys_to_mask(),
            current_count=getattr(self.shell, "execution_count", None),
        )
        note = f"context: {parsed}, ~{block.tokens:,} tokens"
        return block.text, block.tokens, [note, *block.notes]

    def prepare(
        self,
        prompt: str,
        settings: Settings,
        *,
        system: str | None = None,
        context: str | Sequence[str] | None = None,
        conversation: Conversation | None = None,
    ) -> Prepared:
        """A question with its context and conversation, trimmed to the model's window."""
        prompt = settings.redactor()(prompt)  # a key typed into the prompt is never sent or kept
        info = model_info(settings.model)
        system_text = system if system is not None else self.policy.system_prompt
        used = estimate_tokens(system_text + prompt)
        text, tokens, notes = self.context_block(context, settings, used)
        user = f"{text}\n\n---\n\n{prompt}" if text else prompt
        memory = conversation if conversation is not None else self.conversation
        trim = memory.messages_for(user, info, max_output=settings.max_tokens, system=system_text)
        if trim.dropped_turns:
            notes.append(f"{trim.dropped_turns} earlier turn(s) left out to fit the window")
        return Prepared(trim.messages, settings, info, prompt, notes, tokens)

    def prepare_assist(
        self,
        kind: str,
        failure: Failure,
        settings: Settings,
        *,
        cells: dict[int, str] | None = None,
        context: str | Sequence[str] | None = None,
        system_extra: str | None = None,
    ) -> Prepared:
        """An explain (``kind="explain"``) or fix request about ``failure``."""
        from ..context.cells import raw_cells
        from ..context.live import live_sources
        from .assist import build_assist_prompt, describe

        info = model_info(settings.model)
        prompt = build_assist_prompt(
            kind,
            failure,
            cells if cells is not None else live_sources(self.shell, raw_cells(self.shell)),
            info,
            mask=self.policy.mask_secrets,
            secrets=settings.keys_to_mask(),
            reserve=settings.max_tokens,
        )
        if system_extra:  # added to explain/fix's own instructions, which shape the answer
            prompt.system = f"{prompt.system}\n\n{system_extra}"
        used = estimate_tokens(prompt.system) + estimate_tokens(prompt.user)
        text, tokens, extra = self.context_block(context, settings, used)
        if text:
            prompt.user += f"\n\n### More context the user selected\n\n{text}"
        verb = "Explain" if kind == "explain" else "Fix"
        about = describe(prompt, failure)
        return Prepared(
            prompt.messages(),
            settings,
            info,
            f"{verb} the failure in {failure.label}: {prompt.summary}",
            [f"{kind}: {about}", *prompt.notes, *extra],
            tokens,
            about,
        )

    # -- running and remembering -----------------------------------------------------------

    def run(
        self,
        prepared: Prepared,
        renderer: Renderer,
        *,
        stream: bool | None = None,
        out: str | None = None,
        conversation: Conversation | None = None,
        refresh: bool = False,
    ) -> Reply:
        """Replay the stored answer, or stream (or fetch) it; remember it, also when it failed.

        Raises the client's :class:`~glm_magic.errors.GlmError` (its ``partial``
        is shown and remembered first), :class:`~glm_magic.errors.BudgetError`
        before sending a request that could pass the limit; an interrupt stops
        the stream at once. ``refresh`` asks again and replaces the stored answer.
        """
        from ..config import without_keys
        from ..errors import GlmError
        from .runner import run_foreground

        settings = prepared.settings
        mode, key, found = self.lookup_request(prepared, refresh)
        if found is not None:  # shown at once, no request, no key needed, nothing run
            renderer.start()
            renderer.finish(found)
            self.remember(prepared.remember_as, found, out, conversation)
            return found
        settings.require_key()
        self.check_budget(prepared)
        messages = without_keys(prepared.messages, settings)
        client = self.client(settings)
        renderer = KeyedRenderer(renderer, key)  # the shown output carries its key
        try:
            if stream if stream is not None else self.policy.stream:
                reply = run_foreground(client.stream(messages, settings), renderer, settings.model)
            else:
                renderer.start()
                try:
                    reply = client.complete(messages, settings)
                except GlmError as exc:
                    if exc.partial is not None:
                        renderer.finish(exc.partial)
                    raise
                renderer.finish(reply)
        except GlmError as exc:
            if exc.partial is not None:
                exc.partial.key = key
                self.remember(prepared.remember_as, exc.partial, out, conversation)
            raise
        self.keep_reply(mode, key, reply)
        self.remember(prepared.remember_as, reply, out, conversation)
        return reply

    def start(
        self,
        prepared: Prepared,
        on_update: Callable[[ReplyBuilder], None],
        on_done: Callable[[Reply, Exception | None], None],
        *,
        conversation: Conversation | None = None,
        refresh: bool = False,
    ) -> BackgroundRun:
        """Stream in a background thread (widgets); remembered before ``on_done`` runs.

        A stored answer is replayed through the same driver; a request refused
        by the spending limit ends at once with the :class:`~glm_magic.errors.BudgetError`.
        """
        from ..config import without_keys
        from ..errors import BudgetError
        from .replay import CannedStream
        from .runner import BackgroundRun, Stoppable

        settings = prepared.settings
        mode, key, found = self.lookup_request(prepared, refresh)
        stream: Stoppable
        if found is not None:
            stream = CannedStream(found)
        else:
            try:
                self.check_budget(prepared)
            except BudgetError as exc:
                stream = CannedStream(None, exc)
            else:
                messages = without_keys(prepared.messages, settings)
                stream = self.client(settings).stream(messages, settings)

        def done(reply: Reply, error: Exception | None) -> None:
            if found is not None and error is None:
                reply = found  # the stored answer itself, marked replayed
            elif error is None:
                self.keep_reply(mode, key, reply)
            else:
                reply.key = key
            try:
                self.remember(prepared.remember_as, reply, None, conversation)
            finally:
                on_done(reply, error)

        run = BackgroundRun(
            stream,
            settings.model,
            on_update,
            done,
            interval=max(0.05, float(self.policy.update_interval)),
        )
        return run.start()

    def remember(
        self,
        prompt: str,
        reply: Reply,
        out: str | None = None,
        conversation: Conversation | None = None,
    ) -> None:
        """Keep one exchange: the conversation's turn, the last reply, totals, ``on_reply``."""
        memory = conversation if conversation is not None else self.conversation
        memory.add(prompt, reply.text, reply.model)
        self.last_reply = reply
        self.totals.add(reply)
        if self.on_reply is not None:
            self.on_reply(reply, out)
