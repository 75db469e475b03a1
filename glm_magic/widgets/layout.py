"""The chat panel's widgets and how they look; the behaviour is in :mod:`glm_magic.widgets.app`.

:class:`PanelLayout` builds every widget of the panel on the main thread (the
streaming thread later only sets their values) and renders the header, the
model facts, the running totals and which context fields show. ipywidgets is
imported only when a panel is made.
"""

from __future__ import annotations

import html
from typing import Any

from .picker import CONTEXT_CHOICES, model_choices, model_facts, totals_line
from .reply import html_widget
from .style import CSS

__all__ = ["CONVERSATION_NOTE", "PANEL_NAME", "PanelLayout"]

#: Name the most recent panel is bound to in the user's namespace.
PANEL_NAME = "_glm_panel"

CONVERSATION_NOTE = "This panel keeps its own conversation: %%glm cells neither see nor change it."

# Shift+Enter in the panel's prompt box clicks Send. ipywidgets' Textarea has no
# key events, so a capture-phase listener on window (it runs before the
# notebook's own shortcuts; Notebook 7 would otherwise run the cell again) is
# installed once per page by an image's onerror: ipywidgets' HTML view puts
# its value in the page as is, and handlers in it run; <script> tags would not.
# The box syncs its value on "change" only (continuous_update=False): per-key
# updates queue up behind each other while a click goes out at once, so Send
# could see a stale prompt, and the kernel's clearing of the box would be
# dropped by the frontend as older than its own pending edits. The listener
# fires "change" before the click, as leaving the box for the button does.
_KEYS_JS = (
    "if(!window.__glmPanelKeys){window.__glmPanelKeys=1;"
    "window.addEventListener('keydown',function(e){"
    "if(e.key!=='Enter'||!e.shiftKey||e.isComposing)return;"
    "var t=e.target;if(!t||t.tagName!=='TEXTAREA'||!t.closest)return;"
    "var p=t.closest('.glm-panel');if(!p)return;"
    "e.preventDefault();e.stopPropagation();e.stopImmediatePropagation();"
    "t.dispatchEvent(new Event('change',{bubbles:true}));"
    "var b=p.querySelector('button.glm-send');if(b&&!b.disabled)b.click();},true);}"
)
_BOOT = f'<img src="" alt="" style="display:none" onerror="{html.escape(_KEYS_JS, quote=True)}">'

#: Labels sized to their text (ipywidgets reserves a fixed width otherwise).
_LABEL = {"description_width": "initial"}


class PanelLayout:
    """Every widget of a chat panel, in ``widget`` (a ``VBox`` with class ``glm-panel``)."""

    def __init__(self, *, model: str, thinking: str, context: str, last_n: int, names: str) -> None:
        import ipywidgets as w

        self.models_note = "catalog"
        self.header = html_widget("", "glm-header")
        self.transcript = w.VBox([])
        self.transcript.add_class("glm-transcript")
        self.prompt = w.Textarea(
            placeholder="Ask GLM… (Shift+Enter or Send)",
            rows=3,
            continuous_update=False,
            layout=w.Layout(width="100%"),
        )
        self.prompt.add_class("glm-prompt")
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.send_button.add_class("glm-send")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.stop_button.add_class("glm-stop")
        self.new_button = w.Button(description="New chat", icon="plus")
        self.new_button.add_class("glm-new")
        for b in (self.send_button, self.stop_button, self.new_button):
            b.layout = w.Layout(width="auto")
        self.model_picker = w.Dropdown(
            options=model_choices(None, model),
            value=model,
            description="Model",
            style=_LABEL,
            layout=w.Layout(width="auto", max_width="340px"),
        )
        self.model_picker.add_class("glm-model")
        self.thinking = w.ToggleButtons(
            options=[("auto", "auto"), ("on", "on"), ("off", "off")],
            value=thinking,
            tooltips=["the model's default", "thinking on", "thinking off"],
            style={"button_width": "52px"},
            layout=w.Layout(width="auto"),
        )
        self.thinking.add_class("glm-thinking-toggle")
        self.context_picker = w.Dropdown(
            options=list(CONTEXT_CHOICES),
            value=context,
            description="Context",
            style=_LABEL,
            layout=w.Layout(width="auto"),
        )
        self.context_picker.add_class("glm-context")
        self.last_n = w.BoundedIntText(
            value=last_n,
            min=1,
            max=500,
            description="N",
            style=_LABEL,
            layout=w.Layout(width="90px"),
        )
        self.variables = w.Text(
            value=names,
            placeholder="df, model",
            description="Names",
            style=_LABEL,
            layout=w.Layout(width="220px"),
        )
        self.refresh_button = w.Button(
            description="", icon="refresh", tooltip="Estimate the context again"
        )
        self.refresh_button.layout = w.Layout(width="36px")
        self.estimate = html_widget("", "glm-estimate")
        self.facts = html_widget("", "glm-facts")
        self.totals_line = html_widget("", "glm-totals")

        row = {"flex_flow": "row wrap", "align_items": "center"}
        controls = w.HBox(
            [self.send_button, self.stop_button, self.new_button], layout=w.Layout(**row)
        )
        pickers = w.HBox(
            [
                self.model_picker,
                w.Label("Thinking", layout=w.Layout(margin="0 4px 0 10px")),
                self.thinking,
                self.context_picker,
                self.last_n,
                self.variables,
                self.refresh_button,
            ],
            layout=w.Layout(**row),
        )
        self.widget = w.VBox(
            [
                self.header,
                self.transcript,
                self.prompt,
                controls,
                pickers,
                self.estimate,
                self.facts,
                self.totals_line,
            ],
            layout=w.Layout(
                border="1px solid var(--jp-border-color2, #ccc)", padding="6px", width="100%"
            ),
        )
        self.widget.add_class("glm-panel")

    #: The execution count of the cell that showed the panel (``None``: not shown).
    shown_in: int | None = None

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        # ``glm_magic.panel()`` as a cell's last line shows the panel and then
        # returns it to the display hook: one view in that cell is enough.
        if shell is not None and self.shown_in == shell.execution_count:
            return
        display(self.widget)

    # -- rendering (any thread: these only set widget values) ---------------------------

    def _show_header(self, n: int = 0) -> None:
        self.header.value = (
            f"{CSS}{_BOOT}<div><strong>GLM chat</strong> · {html.escape(CONVERSATION_NOTE)}"
            f" · {n} turn{'s' if n != 1 else ''} · <code>{PANEL_NAME}</code></div>"
        )

    def _show_facts(self) -> None:
        from ..models import model_info

        info = model_info(str(self.model_picker.value))
        source = "the endpoint's /models" if self.models_note == "endpoint" else self.models_note
        self.facts.value = (
            f'<div class="glm-footer">{html.escape(model_facts(info))} '
            f"· models: {html.escape(source)}</div>"
        )

    def _show_totals(self, totals: dict[str, Any]) -> None:
        self.totals_line.value = f'<div class="glm-footer">{html.escape(totals_line(totals))}</div>'

    def _show_context_fields(self) -> None:
        choice = self.context_picker.value
        self.last_n.layout.display = "" if choice == "last" else "none"
        self.variables.layout.display = "" if choice == "vars" else "none"
