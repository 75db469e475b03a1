"""The chat panel: ``%glm panel`` / :func:`show_panel`, plain ipywidgets in the cell's output.

It works wherever ipywidgets do (JupyterLab 4, Notebook 7, VS Code, Colab)
because it is nothing but stock widgets: a prompt box with **Send**,
**Stop** and **New chat**, a model picker (the endpoint's ``/models`` joined
with the catalog), a thinking toggle, a context picker that shows what the
context costs before sending, the transcript and running totals.

Threads: widget callbacks run on the kernel's main thread and return at once;
the reply streams in a background thread (:mod:`glm_magic.widgets.reply`), so
the kernel stays free to handle **Stop**, which closes the HTTP response at
once. The thread only sets ``value`` / ``disabled`` of widgets made here on
the main thread; the transcript's children are only changed on the main thread.

The panel keeps **its own conversation**: what its transcript shows is what
the model is sent, ``%%glm`` cells neither see nor change it, and New chat
clears only it. Each reply still becomes ``_glm`` (the latest reply, as
after a ``%%glm`` cell) and is kept in :attr:`ChatPanel.replies`.
"""

from __future__ import annotations

import html
import threading
from typing import TYPE_CHECKING, Any

from ..core.conversation import Conversation
from ..errors import one_line
from .layout import PANEL_NAME, PanelLayout
from .picker import ContextPreview, add_to_totals, context_spec, new_totals
from .reply import ReplyView, html_widget, status_html

if TYPE_CHECKING:
    from ..core.runner import BackgroundRun
    from ..core.session import Session
    from ..reply import Reply

__all__ = ["ChatPanel", "show_panel"]


class ChatPanel(PanelLayout):
    """A chat panel bound to a :class:`~glm_magic.core.session.Session` (settings, clients)."""

    def __init__(
        self,
        session: Session,
        *,
        model: str | None = None,
        thinking: bool | None = None,
        context: str = "none",
        fetch_models: bool = True,
    ) -> None:
        from .picker import spec_to_choice

        choice, last_n, names = spec_to_choice(context)
        try:
            defaults = session.settings()
            default_model, default_thinking = defaults.model, defaults.thinking
        except Exception:  # a bad setting: shown when the user sends
            default_model, default_thinking = "glm-5.1", None
        if thinking is None:
            thinking = default_thinking
        super().__init__(
            model=model or default_model,
            thinking={None: "auto", True: "on", False: "off"}[thinking],
            context=choice,
            last_n=last_n,
            names=names,
        )
        self.session = session
        self.shell: Any = session.shell
        self.conversation = Conversation()
        self.replies: list[Reply] = []
        self.totals = new_totals()
        self._lock = threading.Lock()
        self._run: BackgroundRun | None = None
        self.estimate_line = ""

        self.send_button.on_click(lambda _b: self.send())
        self.stop_button.on_click(lambda _b: self.stop())
        self.new_button.on_click(lambda _b: self.new_chat())
        self.refresh_button.on_click(lambda _b: self.update_estimate())
        for picker in (self.context_picker, self.last_n, self.variables, self.model_picker):
            picker.observe(lambda _c: self.update_estimate(), names="value")
        self.model_picker.observe(lambda _c: self._show_facts(), names="value")

        self._restore()
        self._show_header(len(self.conversation.turns))
        self._show_facts()
        self._show_totals(self.totals)
        self._show_context_fields()
        self.update_estimate()
        if fetch_models:
            threading.Thread(target=self._fetch_models, daemon=True, name="glm-models").start()

    def __repr__(self) -> str:
        state = "streaming" if self.running else "idle"
        return f"<ChatPanel {self.model_picker.value} {len(self.conversation.turns)} turns {state}>"

    # -- state -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether a reply is streaming now."""
        run = self._run
        return run is not None and run.running

    @property
    def last(self) -> Reply | None:
        """The latest reply of this panel."""
        return self.replies[-1] if self.replies else None

    def state(self) -> dict[str, Any]:
        """What the panel shows, as plain data (for scripts and tests)."""
        return {
            "model": self.model_picker.value,
            "models": list(self.model_picker.options),
            "thinking": self.thinking.value,
            "context": self.context_spec_or_none(),
            "estimate": self.estimate_line,
            "running": self.running,
            "send_disabled": self.send_button.disabled,
            "stop_disabled": self.stop_button.disabled,
            "turns": len(self.conversation.turns),
            "transcript": len(self.transcript.children),
            "replies": len(self.replies),
            "totals": dict(self.totals),
        }

    def wait(self, timeout: float | None = 60) -> Reply | None:
        """Block until the streaming reply ends (scripts and tests); return the latest reply."""
        run = self._run
        if run is not None:
            run.thread.join(timeout)
        return self.last

    # -- context -----------------------------------------------------------------------

    def context_spec_or_none(self) -> str:
        """The context spec the picker selects (``none`` when it cannot be read)."""
        try:
            return context_spec(
                str(self.context_picker.value), int(self.last_n.value), str(self.variables.value)
            )
        except ValueError:
            return "none"

    def _secrets(self, settings: Any) -> list[Any]:
        return list(settings.keys_to_mask())

    def preview(self, prompt: str = "") -> ContextPreview:
        """The context the picker selects, built now, with its tokens and cost."""
        from ..models import model_info
        from .picker import preview_context

        try:
            spec = context_spec(
                str(self.context_picker.value), int(self.last_n.value), str(self.variables.value)
            )
        except ValueError as exc:
            return ContextPreview("none", error=str(exc))
        try:
            settings = self.session.settings(model=self.model_picker.value)
        except Exception as exc:  # ConfigError from a bad setting
            return ContextPreview(spec, error=one_line(exc))
        return preview_context(
            self.shell,
            spec,
            model_info(settings.model),
            max_tokens=settings.max_tokens,
            system=self.session.policy.system_prompt,
            prompt=prompt,
            mask=bool(self.session.policy.mask_secrets),
            secrets=self._secrets(settings),
        )

    def update_estimate(self) -> ContextPreview:
        """Show the context's estimated tokens and cost under the picker."""
        self._show_context_fields()
        preview = self.preview(str(self.prompt.value))
        self.estimate_line = preview.line()
        self.estimate.value = f'<div class="glm-footer">{html.escape(self.estimate_line)}</div>'
        return preview

    def _fetch_models(self) -> None:
        """Join the endpoint's /models into the picker (background: the panel shows at once)."""
        from .picker import model_choices

        current = str(self.model_picker.value)
        try:
            settings = self.session.settings()
            served: list[str] | None = self.session.client(settings).list_models()
            note = "endpoint"
        except Exception as exc:
            served = None
            note = f"catalog (the endpoint's list failed: {one_line(exc)})"
        options = model_choices(served, current)
        if list(self.model_picker.options) != options:
            self.model_picker.options = options
            self.model_picker.value = current
        self.models_note = note
        self._show_facts()

    # -- transcript --------------------------------------------------------------------

    def _restore(self) -> None:
        """Show again the conversation this notebook's panel had (restart, reload)."""
        from ..reply import Reply

        for turn in self.session.panel_turns():
            self.conversation.add(turn["user"], turn["assistant"], turn["model"])
            view = ReplyView(turn["model"], insert_note=self._insert_note(len(self.replies)))
            reply = Reply(text=turn["assistant"], model=turn["model"], finish_reason="stop")
            view.finish(reply, extra_footer="restored from an earlier session")
            self.replies.append(reply)
            self._append(self._user_turn(turn["user"]), view.box)

    def _append(self, *widgets: Any) -> None:
        self.transcript.children = (*self.transcript.children, *widgets)

    def _user_turn(self, prompt: str, note: str = "") -> Any:
        extra = f'<div class="glm-footer">{html.escape(note)}</div>' if note else ""
        return html_widget(
            f'<div class="glm-who">You</div><div class="glm-user">{html.escape(prompt)}</div>'
            f"{extra}"
        )

    def notice(self, text: str, *, error: bool = False) -> None:
        """Add one line to the transcript (main thread only)."""
        self._append(html_widget(status_html(text, error=error)))

    def _insert_note(self, index: int) -> str:
        return (
            "Copied, not inserted: a widget cannot place a cell where you expect. "
            f"Paste it into a new cell; in Python it is _glm.code (latest reply) "
            f"or {PANEL_NAME}.replies[{index}].code."
        )

    # -- actions -----------------------------------------------------------------------

    def send(self, text: str | None = None) -> bool:
        """Send ``text`` (default: the prompt box); the reply streams in the background.

        Returns whether a request started. Never raises for request problems:
        they show as one line in the transcript.
        """
        prompt = (self.prompt.value if text is None else text).strip()
        if not prompt:
            self.notice("Type a question first.")
            return False
        prompt, masked = self._masked_prompt(prompt)
        with self._lock:
            if self.running:
                self.notice("A reply is still streaming: Stop it first.")
                return False
            self._run = None
        thinking = {"auto": None, "on": True, "off": False}[str(self.thinking.value)]
        try:
            settings = self.session.settings(model=self.model_picker.value, thinking=thinking)
            settings.require_key()
        except Exception as exc:  # MissingKeyError, or ConfigError for a bad setting
            self._append(self._user_turn(prompt))
            self.notice(one_line(exc), error=True)
            return False
        preview = self.preview(prompt)
        if preview.error:
            self._append(self._user_turn(prompt))
            self.notice(preview.error, error=True)
            return False
        # The context the picker shows is the one sent: built by the session's one rule.
        try:
            prepared = self.session.prepare(
                prompt,
                settings,
                context=preview.spec if preview.spec != "none" else None,
                conversation=self.conversation,
            )
        except Exception as exc:  # a bad context spec
            self._append(self._user_turn(prompt))
            self.notice(one_line(exc), error=True)
            return False
        notes = [f"{masked} secret{'s' if masked > 1 else ''} masked in the prompt"][:masked]
        notes += prepared.notes
        from ..safety import key_warnings

        for warning in key_warnings(settings):
            self.notice(warning, error=True)
        index = len(self.replies)
        from ..bridge import reply_class

        bridged = reply_class(
            self.shell,
            None,  # below the cell selected when Insert is clicked
            settings.model,
            lambda: self.replies[index] if index < len(self.replies) else None,
        )
        view = ReplyView(settings.model, insert_note=self._insert_note(index), css_class=bridged)
        self._append(self._user_turn(prompt, "; ".join(notes)), view.box)
        self.prompt.value = ""
        self.send_button.disabled = True
        self.stop_button.disabled = False

        def on_done(reply: Reply, error: Exception | None) -> None:
            # The streaming thread: the session has remembered the turn; widget traits only.
            try:
                view.finish(reply)
                self._done(reply)
            finally:
                self.send_button.disabled = False
                self.stop_button.disabled = True

        with self._lock:
            self._run = self.session.start(
                prepared, view.progress, on_done, conversation=self.conversation
            )
        return True

    def _masked_prompt(self, prompt: str) -> tuple[str, int]:
        """The prompt masked as ``%%glm`` values are; the box never keeps the key either."""
        try:
            settings = self.session.settings(model=self.model_picker.value)
        except Exception:  # a bad setting, which send() reports; still mask the env's keys
            from ..config import DEFAULT_KEY_ENV, Settings, find_key

            settings = Settings(api_key=find_key(DEFAULT_KEY_ENV), api_key_env=DEFAULT_KEY_ENV)
        from ..core.prompt_masking import clean_text

        mask = bool(self.session.policy.mask_secrets)
        masked, count = clean_text(prompt, settings, mask=mask)
        if count and self.prompt.value.strip():
            self.prompt.value = masked  # what the box (widget state, saved notebook) holds
        return masked, count

    def _done(self, reply: Reply) -> None:
        """Runs in the streaming thread: count the reply, set widget traits only."""
        with self._lock:
            self.replies.append(reply)
            add_to_totals(self.totals, reply)
        self.session.save_panel(self.conversation)
        self._show_header(len(self.conversation.turns))
        self._show_totals(self.totals)

    def stop(self) -> None:
        """Stop the streaming reply now (the connection is closed; the partial text stays)."""
        run = self._run
        if run is not None and run.running:
            run.stop()

    def new_chat(self) -> None:
        """Stop any reply, forget this panel's conversation and clear the transcript."""
        run = self._run
        if run is not None and run.running:
            run.stop()
            run.thread.join(5)
        with self._lock:
            self.conversation.reset()
        self.session.save_panel(self.conversation)
        self.transcript.children = ()
        self._show_header(0)
        self.send_button.disabled = False
        self.stop_button.disabled = True


def show_panel(
    session: Session,
    *,
    model: str | None = None,
    thinking: bool | None = None,
    context: str = "none",
    display: bool = True,
    fetch_models: bool = True,
) -> ChatPanel:
    """Show a chat panel in the current cell's output and return it.

    ``model``, ``thinking`` and ``context`` (``none``, ``error``, ``last:N``,
    ``notebook``, ``vars:a,b``) preset the pickers; ``fetch_models=False``
    skips asking the endpoint for its models. The panel is also bound to
    ``_glm_panel``. (:func:`glm_magic.panel` loads the extension and calls this.)
    """
    shell = session.shell
    if shell is None or getattr(shell, "kernel", None) is None:
        from ..errors import ConfigError

        raise ConfigError("the chat panel needs a Jupyter kernel (widgets); use %%glm here")
    panel = ChatPanel(
        session, model=model, thinking=thinking, context=context, fetch_models=fetch_models
    )
    shell.user_ns[PANEL_NAME] = panel
    if display:
        from IPython.display import display as show

        show(panel.widget)
        panel.shown_in = shell.execution_count
    return panel
