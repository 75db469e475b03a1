"""``%%glm`` and ``%glm``: the IPython magics, their settings, and the wiring of the layers.

:class:`GlmMagics` is a traitlets ``Configurable`` (``%config GlmMagics.model
= "glm-4.7"`` or ``c.GlmMagics.model`` in ``ipython_config.py``). A cell goes:
options -> interpolation -> :class:`~glm_magic.core.session.Session` (context,
conversation, client stream) -> the display renderer. The magics are the
session's :class:`~glm_magic.core.session.Policy`: their traitlets are the settings.
Every :class:`~glm_magic.errors.GlmError` reaches the user as one line: bad
input and settings as an IPython ``UsageError``, request failures through the
error's own one-line traceback, after the partial reply has been shown.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Bool, Float, Int, TraitError, Unicode, observe, validate

# Only the defaults at load: the session, settings and errors are imported on the
# first request, so %load_ext stays cheap (benchmarks/bench_load.py).
from ..defaults import DEFAULT_KEY_ENV, DEFAULT_MODEL, DEFAULT_SYSTEM
from .options import sampling_arguments, sampling_overrides, split_words

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..client.chat import ChatClient
    from ..config import Settings
    from ..core.conversation import Conversation
    from ..core.runner import Renderer
    from ..core.session import Prepared, Session
    from ..reply import Reply

__all__ = ["DEFAULT_SYSTEM", "GlmMagics"]


def _pick(override: Any, configured: Any) -> Any:
    """The per-cell value when given (0 and False count), else the configured one."""
    return configured if override is None else override


@magics_class
class GlmMagics(Magics):
    """The ``%%glm`` / ``%glm`` magics and their settings."""

    model = Unicode(
        "", help="Model id (empty: $GLM_MODEL when the request is made, else glm-5.1)."
    ).tag(config=True)
    base_url = Unicode(
        "",
        help="OpenAI-compatible base URL (empty: $GLM_BASE_URL when the request is made, "
        "else RunAPI).",
    ).tag(config=True)
    api_key_env = Unicode(DEFAULT_KEY_ENV, help="Environment variable holding the API key.").tag(
        config=True
    )
    connect_timeout = Float(10.0, help="Seconds to wait for a connection.").tag(config=True)
    read_timeout = Float(
        300.0, help="Seconds to wait for the next bytes (a 200K prompt's first token is slow)."
    ).tag(config=True)
    write_timeout = Float(60.0, help="Seconds to wait while sending the request.").tag(config=True)
    max_retries = Int(
        3, help="Retries for rate limits, 5xx and connect errors (before any reply)."
    ).tag(config=True)
    max_concurrent = Int(
        2,
        allow_none=True,
        help="GLM requests in flight at once per endpoint, over cells, panel and buttons "
        "(None: no limit); more wait their turn.",
    ).tag(config=True)
    temperature = Float(
        None, allow_none=True, help="Sampling temperature (server default if None)."
    ).tag(config=True)
    max_tokens = Int(None, allow_none=True, help="Output token cap (server default if None).").tag(
        config=True
    )
    thinking = Bool(
        None, allow_none=True, help="Thinking mode: True/False, or None for the model's default."
    ).tag(config=True)
    stream_usage = Bool(
        None,
        allow_none=True,
        help="Ask for usage in streams (stream_options); None: ask unless the host is "
        "Z.ai, BigModel or RunAPI, which always send it.",
    ).tag(config=True)
    system_prompt = Unicode(DEFAULT_SYSTEM, help="System prompt for new conversations.").tag(
        config=True
    )
    stream = Bool(True, help="Stream replies (False: wait for the whole reply).").tag(config=True)
    update_interval = Float(0.12, help="Seconds between display updates while streaming.").tag(
        config=True
    )
    buttons = Bool(
        False, help="Show Explain / Fix buttons under failing cells (Jupyter frontends)."
    ).tag(config=True)
    mask_secrets = Bool(
        True, help="Mask keys, tokens and passwords in notebook context before it is sent."
    ).tag(config=True)
    cache = Unicode(
        "",
        help="Reply store: 'replay' (a request answered before is shown again, no request), "
        "'refresh' (always ask, keep the new answer), 'off'; empty: $GLM_MAGIC_CACHE, "
        "else 'replay'.",
    ).tag(config=True)
    budget_usd = Float(
        None,
        allow_none=True,
        help="Spending limit (USD) for this kernel session: a request whose estimated cost "
        "would pass it is refused (None: $GLM_MAGIC_BUDGET_USD, else no limit).",
    ).tag(config=True)

    agent_max_steps = Int(
        10, help="Steps (tool calls) an agent task may take (%%glm --agent; --max-steps)."
    ).tag(config=True)
    agent_budget_usd = Float(
        0.5,
        allow_none=True,
        help="USD one agent task may spend (--budget); None: no cap. Models without "
        "prices cannot be capped.",
    ).tag(config=True)

    @validate("cache")
    def _valid_cache(self, proposal: Any) -> str:
        value = str(proposal["value"]).strip().lower()
        if value not in ("", "off", "replay", "refresh"):
            raise TraitError(f"cache must be 'off', 'replay' or 'refresh', not {value!r}")
        return value

    @validate("budget_usd")
    def _valid_budget(self, proposal: Any) -> float | None:
        value = proposal["value"]
        if value is not None and not value >= 0:
            raise TraitError(f"budget_usd must be 0 or more (or None), not {value!r}")
        return value  # type: ignore[no-any-return]

    @observe("buttons")
    def _buttons_changed(self, change: Any) -> None:
        # `%config GlmMagics.buttons = True` takes effect at once, like `%glm buttons on`.
        shell = self.shell
        if shell is None or not self.loaded:
            return  # not loaded yet: load() applies the setting
        from ..widgets import buttons

        if change["new"] and getattr(shell, "kernel", None) is not None:
            buttons.enable(shell, self.session)
        else:
            buttons.disable(shell)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        #: Set by :func:`~glm_magic.ipython.extension.load` once registered on the shell.
        self.loaded = False
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        """Everything requests share (settings come from these traitlets); made on first use."""
        if self._session is None:
            from ..core.session import Session

            self._session = Session(self, shell=self.shell, on_reply=self._write_namespace)
        return self._session
        if self.budget_usd is None:
            from ..core.spend import env_budget

            self.budget_usd = env_budget()

    @property
    def conversation(self) -> Conversation:
        """The session's conversation (consecutive ``%%glm`` cells)."""
        return self.session.conversation

    @property
    def last_reply(self) -> Reply | None:
        """The latest reply of any surface (also ``_glm``)."""
        return self.session.last_reply

    @last_reply.setter
    def last_reply(self, reply: Reply | None) -> None:
        self.session.last_reply = reply

    def _write_namespace(self, reply: Reply, out: str | None) -> None:
        if self.shell is not None:
            # ``_glm`` always holds the last reply, like ``_`` holds the last result.
            self.shell.user_ns["_glm"] = reply
            if out:
                self.shell.user_ns[out] = reply

    # -- settings, clients, renderers ---------------------------------------------

    def effective_model(self) -> str:
        """The model a request would use now (``GlmMagics.model``, else ``$GLM_MODEL``)."""
        return self.model or os.environ.get("GLM_MODEL") or DEFAULT_MODEL

    def settings(self, **overrides: Any) -> Settings:
        """Effective settings for one request; a bad setting is one ``UsageError`` line."""
        from ..errors import ConfigError

        try:
            return self.resolve(**overrides)
        except ConfigError as exc:
            raise UsageError(exc.one_line()) from None

    def resolve(self, **overrides: Any) -> Settings:
        """Settings for one request (the session's policy); raises ``ConfigError``."""
        from ..config import resolve_settings
        from ..errors import ConfigError

        # Empty model / base_url: read $GLM_MODEL / $GLM_BASE_URL now, so `%env` takes effect.
        model = overrides.pop("model", None) or self.model or None
        temperature = _pick(overrides.pop("temperature", None), self.temperature)
        max_tokens = _pick(overrides.pop("max_tokens", None), self.max_tokens)
        thinking = _pick(overrides.pop("thinking", None), self.thinking)
        if overrides:
            raise ConfigError(f"unknown option(s): {', '.join(sorted(overrides))}")
        return resolve_settings(
            base_url=self.base_url or None,
            model=model,
            api_key_env=self.api_key_env,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            write_timeout=self.write_timeout,
            max_retries=self.max_retries,
            max_concurrent=self.max_concurrent,
            temperature=temperature,
            max_tokens=max_tokens,
            thinking=thinking,
            stream_usage=self.stream_usage,
        )

    def client(self, settings: Settings) -> ChatClient:
        """The session's pooled client for these settings."""
        return self.session.client(settings)

    def close(self) -> None:
        """Close pooled HTTP connections."""
        self.session.close()

    def renderer(self, model: str, fmt: str, *, quiet_calls: bool = False) -> Renderer:
        """The kernel's Markdown display renderer, or plain text in a terminal.

        ``quiet_calls``: an agent's turn that only calls tools leaves no output in the cell.
        """
        from .render import HtmlDisplayRenderer, TerminalRenderer

        if getattr(self.shell, "kernel", None) is not None:
            interval = self.update_interval
            return HtmlDisplayRenderer(model, fmt=fmt, interval=interval, quiet_calls=quiet_calls)
        return TerminalRenderer(model, fmt=fmt)

    # -- the core: one prompt, one reply ----------------------------------------------

    def run_prompt(
        self,
        prompt: str,
        *,
        system: str | None = None,
        new: bool = False,
        stream: bool | None = None,
        fmt: str = "markdown",
        out: str | None = None,
        renderer: Renderer | None = None,
        context: str | Sequence[str] | None = None,
        dry_run: bool = False,
        insert: bool = False,
        refresh: bool = False,
        **overrides: Any,
    ) -> Reply | None:
        """Send ``prompt`` with the conversation (and any context); show and return the reply.

        With ``dry_run`` the exact messages, estimated tokens and cost are
        printed and nothing is sent (``None`` is returned).
        """
        from ..errors import ConfigError

        settings = self.settings(**overrides)
        if new:
            self.conversation.reset()
        try:
            prepared = self.session.prepare(prompt, settings, system=system, context=context)
        except ConfigError as exc:  # a bad --context spec
            raise UsageError(exc.one_line()) from None
        if dry_run:
            from ..config import without_keys
            from ..context import dry_run_report

            if prepared.notes:
                print("note: " + "; ".join(prepared.notes))
            messages = without_keys(prepared.messages, settings)
            print(dry_run_report(messages, prepared.info, max_output=settings.max_tokens))
            return None
        return self.run_prepared(
            prepared,
            stream=stream,
            fmt=fmt,
            out=out,
            renderer=renderer,
            insert=insert,
            refresh=refresh,
        )

    def run_prepared(
        self,
        prepared: Prepared,
        *,
        stream: bool | None = None,
        fmt: str = "markdown",
        out: str | None = None,
        renderer: Renderer | None = None,
        insert: bool = False,
        refresh: bool = False,
    ) -> Reply:
        """Show the notes, then replay or stream the prepared request through the session.

        A replayed answer needs no key (a shared notebook re-runs offline);
        a request that must be sent does.
        """
        from ..errors import ConfigError

        settings = prepared.settings
        if prepared.notes:
            print("note: " + "; ".join(prepared.notes))
        from ..safety import key_warnings

        for warning in key_warnings(settings):
            print(f"⚠ {warning}", file=sys.stderr)
        view = renderer or self.renderer(settings.model, fmt)
        try:
            reply = self.session.run(prepared, view, stream=stream, out=out, refresh=refresh)
        except ConfigError as exc:  # no key, or a bad cache setting: before any request
            raise UsageError(exc.one_line()) from None
        if insert:
            from .bridge import insert_reply
            from .cells import already_inserted, insert_reply_code

            if already_inserted(self.shell, reply):  # a re-run: the notebook holds the cell
                pass
            elif not insert_reply(self.shell, reply):  # no notebook bridge: one payload cell
                insert_reply_code(self.shell, reply, out or "_glm")
        return reply

    # -- %%glm ----------------------------------------------------------------------

    @magic_arguments()
    @argument("-m", "--model", help="model id for this cell (default: GlmMagics.model)")
    @sampling_arguments
    @argument("--new", action="store_true", help="start a fresh conversation")
    @argument("-o", "--out", metavar="NAME", help="store the reply object in NAME")
    @argument(
        "-f", "--format", default="markdown", choices=("markdown", "text", "code"), dest="fmt"
    )
    @argument("--no-interpolate", action="store_true", help="send {braces} exactly as typed")
    @argument(
        "-c",
        "--context",
        action="append",
        metavar="SPEC",
        help="notebook context to send: 3-5, last:4, error, vars:df,model, notebook, none",
    )
    @argument("--insert", action="store_true", help="insert the reply's code as a new cell below")
    @argument(
        "--dry-run",
        action="store_true",
        dest="dry_run",
        help="print the messages, tokens and cost; send nothing",
    )
    @argument(
        "--agent",
        action="store_true",
        help="work through the cell's task with tools, step by step; code runs only if you approve",
    )
    @argument("--yes", action="store_true", help="(--agent) approve every step: trust the model")
    @argument("--max-steps", type=int, dest="max_steps", metavar="N", help="(--agent) step limit")
    @argument("--budget", type=float, metavar="USD", help="(--agent) cost cap for the task")
    @argument("prompt", nargs="*", help="(line magic only) the question")
    @cell_magic("glm")  # type: ignore[arg-type]
    def glm_cell(self, line: str, cell: str) -> None:
        """Ask the model; the cell's text is the prompt and the reply streams below.

        ``{name}``, ``{name.attr}``, ``{In[3]}`` and ``{Out[3]}`` are replaced by
        their values when they resolve; everything else in braces, and all
        fenced code, is sent exactly as typed (``{{``/``}}`` for literal braces).
        Consecutive cells form one conversation (``%glm reset`` or ``--new``).
        """
        args = self._parse(self.glm_cell, line)
        if args.prompt:
            raise UsageError(
                f"unexpected text after the options: {' '.join(args.prompt)!r}; "
                "put the question in the cell body"
            )
        if args.agent:
            from .agent_commands import agent_cell

            agent_cell(self, cell, args)
            return
        self._ask(cell, args)

    def _parse(self, func: Any, line: str) -> Any:
        # POSIX splitting, unlike magic_arguments' own, removes the quotes in -s 'Be brief.'
        return func.parser.parse_args(split_words(line))

    def interpolated(self, text: str, args: Any, what: str = "interpolated values") -> str:
        """``{name}`` values put in and masked (not with ``--no-interpolate``); notes masking."""
        if args.no_interpolate:
            return text
        from ..core.prompt_masking import interpolate_masked

        namespace = self.shell.user_ns if self.shell is not None else {}
        settings = self.settings(model=args.model)
        text, masked = interpolate_masked(text, namespace, settings, mask=self.mask_secrets)
        if masked:
            print(f"note: {masked} secret{'s' if masked > 1 else ''} masked in {what}")
        return text

    def _ask(self, text: str, args: Any) -> None:
        from .agent_commands import refuse_agent_options

        refuse_agent_options(args)
        if not text.strip():
            raise UsageError("the prompt is empty: write your question under %%glm")
        if args.out is not None and not args.out.isidentifier():
            raise UsageError(f"-o needs a Python name, not {args.out!r}")
        text = self.interpolated(text, args)
        self.run_prompt(
            text.strip(),
            system=args.system,
            new=args.new,
            stream=not args.no_stream,
            fmt=args.fmt,
            out=args.out,
            model=args.model,
            context=args.context,
            dry_run=args.dry_run,
            insert=args.insert,
            refresh=args.refresh,
            **sampling_overrides(args),
        )

    # -- %glm -----------------------------------------------------------------------

    @line_magic("glm")  # type: ignore[arg-type]
    def glm_line(self, line: str) -> Any:
        """``%glm QUESTION`` asks in one line; sub-commands manage the session.

        Sub-commands: ``key`` (enter the API key with a hidden prompt),
        ``reset`` (forget the conversation), ``history``, ``models`` (what the
        endpoint serves, with context windows and prices), ``config`` (the
        effective settings), ``help``.
        """
        words = split_words(line)
        if not words or words[0] == "help":
            if words[1:]:
                got = " ".join(words[1:])
                raise UsageError(f"%glm help takes no arguments (got {got!r}); usage: %glm help")
            print(self._help())
            return None
        command, rest = words[0], words[1:]
        from . import commands

        handler = commands.handler(command)
        if handler is not None:
            return handler(self, rest)
        args = self._parse(self.glm_cell, line)
        self._ask(" ".join(args.prompt), args)
        return None

    def _help(self) -> str:
        from . import commands

        lines = ["%glm QUESTION          ask in one line (same options as %%glm)"]
        lines += [f"%glm {name:<17} {doc}" for name, doc in commands.COMMANDS.items()]
        lines.append("%%glm? shows the cell magic's options.")
        return "\n".join(lines)
