"""One streamed reply in widgets: shared by the chat panel and the failing-cell buttons.

A :class:`ReplyView` owns two ``ipywidgets.HTML`` widgets created on the main
thread (styled by :data:`~glm_magic.widgets.style.CSS`, which the panel header or
the button row carries once) (the thinking, collapsed, and the answer with its footer).
:func:`start_stream` reads the reply in a background thread
(:class:`~glm_magic.core.runner.BackgroundRun`) and the thread only sets those
widgets' ``value``: no ``print``, ``display`` or ``clear_output`` off the
main thread, and at most one update every ``interval`` seconds (the same
coalescing as the magic), then a guaranteed final one. Stop closes the HTTP
response at once; the partial text stays, with a one-line error.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..htmlrender import escape, reply_html, thinking_html

if TYPE_CHECKING:
    from ..reply import Reply, ReplyBuilder

__all__ = ["ReplyView", "html_widget", "status_html"]


def html_widget(value: str = "", *classes: str) -> Any:
    """An ``ipywidgets.HTML`` with our classes (ipywidgets is imported here, lazily)."""
    import ipywidgets

    widget = ipywidgets.HTML(value=value)
    for cls in ("glm-html", *classes):
        widget.add_class(cls)
    return widget


def status_html(text: str, *, error: bool = False) -> str:
    """One line in the transcript (an error, or a notice)."""
    cls = "glm-error" if error else "glm-footer"
    mark = "⚠ " if error else ""
    return f'<div class="{cls}">{mark}{escape(text)}</div>'


class ReplyView:
    """The widgets showing one reply; safe to update from the streaming thread."""

    def __init__(self, model: str, *, insert_note: str = "", css_class: str | None = None) -> None:
        import ipywidgets

        self.model = model
        self.insert_note = insert_note
        self.thinking = html_widget("")
        self.answer = html_widget(reply_html(model=model, text="", done=False))
        self.box = ipywidgets.VBox([self.thinking, self.answer])
        self.box.add_class("glm-reply")
        if css_class:  # the notebook bridge's token: its Insert buttons place cells
            self.box.add_class(css_class)
        self.updates = 0
        self._lock = threading.Lock()

    def progress(self, builder: ReplyBuilder) -> None:
        """Show the reply so far (called at most every ``interval`` by the runner)."""
        text, reasoning = builder.text, builder.reasoning
        status = builder.status()
        with self._lock:
            self.thinking.value = thinking_html(reasoning, done=False)
            self.answer.value = reply_html(model=self.model, text=text, footer=status, done=False)
            self.updates += 1

    def finish(self, reply: Reply, extra_footer: str = "") -> None:
        """The final state: whole text, code buttons, error line, footer."""
        footer = reply.footer() + (f" · {extra_footer}" if extra_footer else "")
        with self._lock:
            self.thinking.value = thinking_html(reply.reasoning, done=True)
            self.answer.value = reply_html(
                model=reply.model,
                text=reply.text,
                footer=footer,
                error=reply.error or reply.note,
                done=True,
                actions=True,
                insert_note=self.insert_note,
            )
            self.updates += 1

    def fail(self, message: str) -> None:
        """A failure before anything streamed: one line."""
        with self._lock:
            self.answer.value = status_html(message, error=True)
            self.updates += 1
