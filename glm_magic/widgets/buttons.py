"""Explain / Fix buttons under failing cells (``%glm buttons on|off``).

:func:`enable` subscribes to :func:`glm_magic.failures.failure_log`: the listener
runs inside the failing cell's ``post_run_cell`` hook, i.e. still within that
cell's execution, so the row it displays lands in that cell's output, right
after the traceback, which is left exactly as IPython showed it.

**Explain** streams an explanation right there; **Fix** streams a diagnosis
and the corrected cell, whose code block has Copy / Insert buttons as in the
panel. Both send the captured failure with the earlier cells that define the
names it uses (:mod:`glm_magic.core.assist`), run in a background thread (the
kernel stays free, **Stop** closes the connection at once), and never run
the code they get back.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import one_line

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..core.runner import BackgroundRun
    from ..core.session import Session
    from ..failures import Failure
    from ..reply import Reply

__all__ = ["FailureButtons", "disable", "enable", "enabled", "replies", "rows"]

#: The latest Explain/Fix reply for each failed cell, by execution count.
replies: dict[int, Reply] = {}
#: The button rows shown, by the failed cell's execution count (the newest few).
rows: dict[int, FailureButtons] = {}
_KEPT = 50

_listeners: dict[int, Callable[[Failure], None]] = {}

# Failures where an explanation would not help: the user stopped the cell, or
# our own magic reported a usage or request problem in one line already.
_SKIPPED = frozenset({"KeyboardInterrupt", "SystemExit", "UsageError"})


def _ours(ename: str) -> bool:
    from .. import errors

    return ename in errors.__all__


class FailureButtons:
    """The compact row under one failing cell, and the reply it streams."""

    def __init__(self, session: Session, failure: Failure) -> None:
        import ipywidgets as w

        from .reply import html_widget
        from .style import CSS

        self.session = session
        self.failure = failure
        self.run: BackgroundRun | None = None
        self.reply: Reply | None = None
        small = {"width": "auto", "height": "28px"}
        self.explain_button = w.Button(
            description="Explain",
            icon="question-circle",
            layout=w.Layout(**small),
            tooltip=f"Explain {failure.summary}",
        )
        self.explain_button.add_class("glm-explain")
        self.fix_button = w.Button(
            description="Fix",
            icon="wrench",
            layout=w.Layout(**small),
            tooltip="Diagnose and give the corrected cell",
        )
        self.fix_button.add_class("glm-fix")
        self.stop_button = w.Button(
            description="Stop", icon="stop", layout=w.Layout(display="none", **small)
        )
        self.stop_button.add_class("glm-stop")
        # Shown after a fix with code when the notebook bridge is on (glm_magic.bridge).
        self.apply_button = w.Button(
            description="Apply",
            icon="check",
            layout=w.Layout(display="none", **small),
            tooltip="Replace the failing cell with the fix (you review a diff first)",
        )
        self.apply_button.add_class("glm-apply")
        what = html.escape(failure.summary)
        self.label = html_widget(
            f'{CSS}<span class="glm-footer">GLM can explain or fix {what}</span>'
        )
        self.output = w.VBox([])
        row = w.HBox(
            [self.explain_button, self.fix_button, self.stop_button, self.apply_button, self.label],
            layout=w.Layout(align_items="center", flex_flow="row wrap"),
        )
        self.widget = w.VBox([row, self.output])
        self.widget.add_class("glm-failure-buttons")
        self.explain_button.on_click(lambda _b: self.start("explain"))
        self.fix_button.on_click(lambda _b: self.start("fix"))
        self.stop_button.on_click(lambda _b: self.stop())
        self.apply_button.on_click(lambda _b: self.apply())

    @property
    def running(self) -> bool:
        """Whether an explanation or fix is streaming."""
        return self.run is not None and self.run.running

    def _busy(self, busy: bool) -> None:
        self.explain_button.disabled = busy
        self.fix_button.disabled = busy
        self.stop_button.layout.display = "" if busy else "none"

    def start(self, kind: str) -> bool:
        """Stream an explanation (``"explain"``) or a fix (``"fix"``) below the row."""
        from ..core.conversation import Conversation
        from .reply import ReplyView, html_widget, status_html

        if self.running:
            return False
        failure = self.failure
        try:
            settings = self.session.settings()
            settings.require_key()
            prepared = self.session.prepare_assist(kind, failure, settings)
        except Exception as exc:  # MissingKeyError, or ConfigError for a bad setting
            self.output.children = (html_widget(status_html(one_line(exc), error=True)),)
            return False
        where = failure.execution_count
        ref = (
            f"glm_magic.widgets.buttons.replies[{where}].code" if where is not None else "_glm.code"
        )
        from ..bridge import reply_class

        view = ReplyView(
            settings.model,
            css_class=reply_class(
                self.session.shell, failure.cell_id, settings.model, self._latest
            ),
            insert_note=(
                "Copied, not inserted: a widget cannot place a cell where you expect. "
                f"Paste it into a new cell; in Python it is {ref}."
            ),
        )
        from ..safety import key_warnings

        note = "; ".join([*prepared.notes, *key_warnings(settings)])
        self.output.children = (html_widget(status_html(note)), view.box)
        self._busy(True)
        self.apply_button.layout.display = "none"

        def on_done(reply: Reply, error: Exception | None) -> None:
            # The streaming thread: the session has set _glm and the last reply.
            try:
                view.finish(reply)
                self.reply = reply
                self._offer_apply(kind, reply)
                if where is not None:
                    replies[where] = reply
            finally:
                self._busy(False)

        # A row's exchange stays out of the %%glm conversation (its own, thrown away).
        self.run = self.session.start(prepared, view.progress, on_done, conversation=Conversation())
        return True

    def _latest(self) -> Reply | None:
        return self.reply

    def _offer_apply(self, kind: str, reply: Reply) -> None:
        from ..bridge import endpoint

        has_fix = kind == "fix" and bool(reply.code.strip()) and self.failure.cell_id is not None
        if has_fix and endpoint(self.session.shell) is not None:
            self.apply_button.layout.display = ""

    def apply(self) -> bool:
        """Propose the fix as a diff on the failing cell (the notebook bridge); the user decides."""
        from ..bridge import applied_note, propose_replace
        from .reply import html_widget, status_html

        reply = self.reply
        if reply is None or not propose_replace(self.session.shell, self.failure, reply):
            note = status_html("Apply needs the notebook bridge: use Insert or Copy", error=True)
            done = False
        else:
            note = status_html(applied_note(self.failure))
            done = True
        self.output.children = (*self.output.children, html_widget(note))
        return done

    def stop(self) -> None:
        """Stop the streaming reply now; the partial text stays."""
        if self.run is not None:
            self.run.stop()

    def wait(self, timeout: float | None = 60) -> Reply | None:
        """Block until the reply ends (scripts and tests)."""
        if self.run is not None:
            self.run.thread.join(timeout)
        return self.reply


def enabled(shell: InteractiveShell) -> bool:
    """Whether the buttons appear under failing cells of ``shell``."""
    from ..failures import existing_log

    listener = _listeners.get(id(shell))
    log = existing_log(shell)  # not failure_log(): asking must not create a log
    return listener is not None and log is not None and listener in log.listeners


def enable(shell: InteractiveShell, session: Session) -> None:
    """Show Explain / Fix under every cell of ``shell`` that fails from now on (idempotent)."""
    from ..failures import failure_log, install

    if getattr(shell, "kernel", None) is None:
        from ..errors import ConfigError

        raise ConfigError("the Explain / Fix buttons need a Jupyter kernel; use %glm explain")
    if enabled(shell):
        return
    install(shell)

    def on_failure(failure: Failure) -> None:
        if failure.ename in _SKIPPED or _ours(failure.ename):
            return
        from IPython.display import display

        row = FailureButtons(session, failure)
        if failure.execution_count is not None:
            rows.pop(failure.execution_count, None)
            rows[failure.execution_count] = row
            while len(rows) > _KEPT:
                rows.pop(next(iter(rows)))
        # Still inside the failing cell's execution: this lands under its traceback.
        display(row.widget)

    _listeners[id(shell)] = on_failure
    failure_log(shell).listeners.append(on_failure)


def disable(shell: InteractiveShell) -> None:
    """Stop adding buttons under failing cells (rows already shown keep working)."""
    from ..failures import existing_log

    listener = _listeners.pop(id(shell), None)
    log = existing_log(shell)
    if listener is not None and log is not None and listener in log.listeners:
        log.listeners.remove(listener)
