"""Streaming renderers: a throttled HTML display handle for kernels, plain text for terminals.

The magic feeds a renderer the growing reply; the renderer decides when to
show it. In a kernel every reply is one display (``display_id``) updated at
most every :data:`MIN_INTERVAL` seconds, plus a guaranteed final update:
per-token updates trip the Jupyter server's iopub rate limit (the final
text is then dropped) and make browsers fall behind. Bundles carry
``text/plain`` (exactly the model's text, with the footer) beside
``text/html`` rendered by :mod:`glm_magic.htmlrender`, never the model's
raw Markdown: JupyterLab renders a session's own outputs unsanitized, so a
reply's ``<img onerror>`` would run there (see ``docs/ARCHITECTURE.md``).

This module never imports httpx.
"""

from __future__ import annotations

import sys
import time
from typing import IO, TYPE_CHECKING, Any

from ..core.runner import paced_interval
from ..htmlrender import REPLY_CSS, escape, reply_html
from ..markdown import join_code
from ..provenance import provenance
from ..reply import WAITING_NOTE

if TYPE_CHECKING:
    from ..reply import Reply, ReplyBuilder

__all__ = [
    "MIN_INTERVAL",
    "HtmlDisplayRenderer",
    "TerminalRenderer",
    "compose_html",
    "reply_bundle",
]

#: Seconds between two display updates while streaming (about 8 a second).
MIN_INTERVAL = 0.12

FORMATS = ("markdown", "text", "code")


def _as_format(text: str, fmt: str) -> str:
    if fmt == "code":
        code = join_code(text) if "```" in text or "~~~" in text else text
        return f"```python\n{code.strip()}\n```" if code.strip() else ""
    return text


def compose_html(
    *,
    model: str,
    text: str,
    reasoning: str,
    footer: str,
    error: str = "",
    done: bool,
    fmt: str = "markdown",
) -> str:
    """The HTML output of a reply at one moment of its life (all of it escaped or rendered)."""
    inner = reply_html(
        model=model,
        text=_as_format(text, fmt),
        reasoning=reasoning,
        footer=footer,
        error=error,
        done=done,
    )
    return f'{REPLY_CSS}<div class="glm-reply">{inner}</div>'


def _plain(text: str, footer: str, error: str) -> str:
    lines = [text.rstrip()] if text else []
    if error:
        lines.append(f"[{error}]")
    if footer:
        lines.append(f"-- {footer}")
    return "\n".join(lines)


def reply_bundle(
    reply: Reply, fmt: str = "markdown", *, show_error: bool = True
) -> tuple[dict[str, str], dict[str, Any]]:
    """The final MIME bundle and metadata (the reply's provenance) for a reply.

    ``show_error=False`` leaves the error line out, for callers that show
    the error on its own (the magic raises it as the cell's one-line error).
    """
    footer = reply.footer()
    # A cut reply's note (Reply.note) is no error: it always shows.
    error = (reply.error if show_error else "") or reply.note
    data: dict[str, str] = {"text/plain": _plain(reply.text, footer, error)}
    if fmt != "text":
        data["text/html"] = compose_html(
            model=reply.model,
            text=reply.text,
            reasoning=reply.reasoning,
            footer=footer,
            error=error,
            done=True,
            fmt=fmt,
        )
    # Provenance: where the answer came from, and enough to replay it from a saved notebook.
    meta = {"glm_magic": provenance(reply, reply.text.rstrip())}
    return data, meta


class HtmlDisplayRenderer:
    """One display handle per reply, updated at most every ``interval`` seconds."""

    def __init__(
        self,
        model: str,
        *,
        fmt: str = "markdown",
        interval: float = MIN_INTERVAL,
        quiet_calls: bool = False,
    ):
        self.model = model
        self.fmt = fmt
        self.interval = interval
        #: An agent's turn that only calls tools leaves no output (the steps show them).
        self.quiet_calls = quiet_calls
        self.updates = 0
        self._display_id: str | None = None
        self._last = 0.0
        self._render_cost = 0.0  # seconds the last update took to build
        self._pending: ReplyBuilder | None = None

    def start(self) -> None:
        """Display the placeholder (model name and a waiting mark)."""
        from IPython.display import display

        shown = f"<p><em>⏳ {escape(self.model)} is working…</em></p>"
        handle = display(
            {"text/html": shown, "text/plain": f"[{self.model} is working...]"},
            raw=True,
            display_id=True,
        )
        self._display_id = handle.display_id if handle is not None else None
        self._last = time.monotonic()

    def _send(self, data: dict[str, str], meta: dict[str, Any] | None = None) -> None:
        from IPython.display import update_display

        if self._display_id is None:
            return
        update_display(data, raw=True, display_id=self._display_id, metadata=meta or {})
        self.updates += 1
        self._last = time.monotonic()

    def _show_builder(self, builder: ReplyBuilder) -> None:
        began = time.monotonic()
        text = builder.text
        status = builder.status()
        shown = compose_html(
            model=self.model,
            text=text,
            reasoning=builder.reasoning,
            footer=status,
            done=False,
            fmt=self.fmt,
        )
        data = {"text/plain": _plain(text, status, "")}
        if self.fmt != "text":
            data["text/html"] = shown
        self._pending = None
        self._render_cost = time.monotonic() - began
        self._send(data)

    def _due(self, builder: ReplyBuilder) -> bool:
        # Every update resends the whole text, so long replies update less often:
        # bytes on iopub (and Markdown re-renders in the browser) stay about linear
        # in the reply's length instead of quadratic. 50K chars -> one update a second.
        # And a reply that is costly to render is rendered less often (paced_interval).
        interval = max(paced_interval(self.interval, self._render_cost), builder.chars / 50_000)
        return time.monotonic() - self._last >= interval

    def progress(self, builder: ReplyBuilder) -> None:
        """Show the reply if the last update is older than the interval."""
        if self._due(builder):
            self._show_builder(builder)
        else:
            self._pending = builder

    def tick(self) -> None:
        """Flush a held-back update once the interval has passed."""
        if self._pending is not None and self._due(self._pending):
            self._show_builder(self._pending)

    def finish(self, reply: Reply) -> None:
        """The guaranteed final update: full text, footer and metadata.

        A failed reply's error is not repeated here: the magic raises it, so it
        shows once, as the cell's one-line error, right below. When nothing at
        all arrived the placeholder is emptied, leaving only that line.
        """
        self._pending = None
        silent = reply.error or (self.quiet_calls and reply.tool_calls)
        if silent and not reply.text.strip() and not reply.reasoning:
            self._send({"text/plain": ""}, {})
            return
        data, meta = reply_bundle(reply, self.fmt, show_error=False)
        self._send(data, meta)


class TerminalRenderer:
    """Terminal IPython: print text as it arrives, no widgets, same errors and footer."""

    def __init__(self, model: str, *, stream: IO[str] | None = None, fmt: str = "markdown"):
        self.model = model
        self.out = stream or sys.stdout
        self._shown_text = 0
        self._shown_reasoning = 0
        self._said_waiting = False
        self._color = bool(getattr(self.out, "isatty", lambda: False)())

    def start(self) -> None:
        """Nothing to show until text arrives (the prompt already says what runs)."""

    def _dim(self, text: str) -> str:
        return f"\x1b[2m{text}\x1b[0m" if self._color else text

    def progress(self, builder: ReplyBuilder) -> None:
        """Print the new part of the reasoning and of the answer."""
        if builder.waiting and not self._said_waiting:
            self._said_waiting = True
            self.out.write(self._dim(f"[{WAITING_NOTE}]") + "\n")
            self.out.flush()
        reasoning = builder.reasoning
        if len(reasoning) > self._shown_reasoning:
            if self._shown_reasoning == 0:
                self.out.write(self._dim("[thinking] "))
            self.out.write(self._dim(reasoning[self._shown_reasoning :]))
            self._shown_reasoning = len(reasoning)
        text = builder.text
        if len(text) > self._shown_text:
            if self._shown_text == 0 and self._shown_reasoning:
                self.out.write("\n\n")
            self.out.write(text[self._shown_text :])
            self._shown_text = len(text)
        self.out.flush()

    def tick(self) -> None:
        """Text is printed as it arrives, so there is never anything held back."""

    def finish(self, reply: Reply) -> None:
        """Print what was not printed yet, the error line and the footer."""
        if len(reply.text) > self._shown_text:
            self.out.write(reply.text[self._shown_text :])
        self._shown_text = len(reply.text)
        if reply.error or reply.note:
            self.out.write(f"\n[{reply.error or reply.note}]")
        self.out.write("\n" + self._dim(f"-- {reply.footer()}") + "\n")
        self.out.flush()
