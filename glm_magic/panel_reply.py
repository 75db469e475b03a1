"""One streamed reply in widgets: shared by the chat panel and the failing-cell buttons.

A :class:`ReplyView` owns two ``ipywidgets.HTML`` widgets created on the main
thread (styled by :data:`~glm_magic.panel_style.CSS`, which the panel header or
the button row carries once) (the thinking, collapsed, and the answer with its footer).
:func:`start_stream` reads the reply in a background thread
(:class:`~glm_magic.runner.BackgroundRun`) and the thread only sets those
widgets' ``value``: no ``print``, ``display`` or ``clear_output`` off the
main thread, and at most one update every ``interval`` seconds (the same
coalescing as the magic), then a guaranteed final one. Stop closes the HTTP
response at once; the partial text stays, with a one-line error.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .panel_html import render_markdown

if TYPE_CHECKING:
    from .config import Settings
    from .errors import GlmError
    from .magics import GlmMagics
    from .reply import Reply, ReplyBuilder
    from .runner import BackgroundRun

__all__ = ["ReplyView", "html_widget", "reply_html", "start_stream", "status_html"]


def html_widget(value: str = "", *classes: str) -> Any:
    """An ``ipywidgets.HTML`` with our classes (ipywidgets is imported here, lazily)."""
    import ipywidgets

    widget = ipywidgets.HTML(value=value)
    for cls in ("glm-html", *classes):
        widget.add_class(cls)
    return widget


def _thinking_html(reasoning: str, *, done: bool) -> str:
    if not reasoning.strip():
        return ""
    words = len(reasoning.split())
    label = f"Thinking ({words:,} words)" if done else f"Thinking… ({words:,} words)"
    body = html.escape(reasoning.strip())
    return (
        f'<details class="glm-thinking"><summary><em>{label}</em></summary>'
        f'<div style="white-space:pre-wrap">{body}</div></details>'
    )


def status_html(text: str, *, error: bool = False) -> str:
    """One line in the transcript (an error, or a notice)."""
    cls = "glm-error" if error else "glm-footer"
    mark = "⚠ " if error else ""
    return f'<div class="{cls}">{mark}{html.escape(text)}</div>'


def reply_html(
    text: str,
    *,
    model: str,
    footer: str,
    error: str = "",
    done: bool,
    insert_note: str = "",
) -> str:
    """The answer part of a reply: Markdown as HTML, the error line, the footer."""
    if text:
        body = render_markdown(text, actions=done, insert_note=insert_note)
    elif done:
        body = "<p><em>(no text)</em></p>" if not error else ""
    else:
        body = f"<p><em>⏳ {html.escape(model)} is working…</em></p>"
    parts = [body]
    if error:
        parts.append(f'<div class="glm-error">⚠ {html.escape(error)}</div>')
    if footer:
        parts.append(f'<div class="glm-footer">{html.escape(footer)}</div>')
    return "".join(parts)


class ReplyView:
    """The widgets showing one reply; safe to update from the streaming thread."""

    def __init__(self, model: str, *, insert_note: str = "") -> None:
        import ipywidgets

        self.model = model
        self.insert_note = insert_note
        self.thinking = html_widget("")
        self.answer = html_widget(reply_html("", model=model, footer="", done=False))
        self.box = ipywidgets.VBox([self.thinking, self.answer])
        self.box.add_class("glm-reply")
        self.updates = 0
        self._lock = threading.Lock()

    def progress(self, builder: ReplyBuilder) -> None:
        """Show the reply so far (called at most every ``interval`` by the runner)."""
        text, reasoning = builder.text, builder.reasoning
        n = builder.usage.completion_tokens if builder.usage else None
        status = f"{self.model} · streaming… " + (f"{n} tokens" if n else f"{len(text):,} chars")
        with self._lock:
            self.thinking.value = _thinking_html(reasoning, done=False)
            self.answer.value = reply_html(text, model=self.model, footer=status, done=False)
            self.updates += 1

    def finish(self, reply: Reply, extra_footer: str = "") -> None:
        """The final state: whole text, code buttons, error line, footer."""
        footer = reply.footer() + (f" · {extra_footer}" if extra_footer else "")
        with self._lock:
            self.thinking.value = _thinking_html(reply.reasoning, done=True)
            self.answer.value = reply_html(
                reply.text,
                model=reply.model,
                footer=footer,
                error=reply.error,
                done=True,
                insert_note=self.insert_note,
            )
            self.updates += 1

    def fail(self, message: str) -> None:
        """A failure before anything streamed: one line."""
        with self._lock:
            self.answer.value = status_html(message, error=True)
            self.updates += 1


def start_stream(
    magics: GlmMagics,
    messages: Sequence[dict[str, Any]],
    settings: Settings,
    view: ReplyView,
    on_done: Callable[[Reply, GlmError | None], None],
) -> BackgroundRun:
    """Stream ``messages`` into ``view`` in a background thread; return the run (``.stop()``).

    ``on_done(reply, error)`` runs in that thread after the final update; it
    must only set widget traits too.
    """
    from .runner import BackgroundRun

    stream = magics.client(settings).stream(list(messages), settings)

    def done(reply: Reply, error: GlmError | None) -> None:
        try:
            view.finish(reply)
        finally:
            on_done(reply, error)

    run = BackgroundRun(
        stream,
        settings.model,
        view.progress,
        done,
        interval=max(0.05, float(getattr(magics, "update_interval", 0.12))),
    )
    return run.start()
