"""The panel's pure parts: the pickers, totals, and the panel offline (HTML: test_htmlrender).

The widget-level tests build real ipywidgets without a kernel (their comms are
inert) and stream from the bundled endpoint in a background thread.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import pytest

from glm_magic.events import Usage
from glm_magic.models import model_info
from glm_magic.reply import Reply
from glm_magic.testing import EndpointServer
from glm_magic.widgets.picker import (
    add_to_totals,
    context_budget,
    context_spec,
    model_choices,
    model_facts,
    new_totals,
    spec_to_choice,
    totals_line,
)

from .conftest import PLAIN_KEY

# -- pickers and totals -----------------------------------------------------------------


def test_model_choices_join_served_ids_with_the_current_model() -> None:
    assert model_choices(["glm-4.7", "glm-5.1"], "glm-5.1") == ["glm-5.1", "glm-4.7"]
    assert model_choices(["glm-4.7"], "my-local") == ["my-local", "glm-4.7"]
    catalog = model_choices(None, "glm-4.7")
    assert catalog[0] == "glm-4.7" and "glm-5.1" in catalog and len(set(catalog)) == len(catalog)
    assert "200K window" in model_facts(model_info("glm-4.7"))
    assert "not in the catalog" in model_facts(model_info("llama3"))


@pytest.mark.parametrize(
    ("choice", "n", "names", "spec"),
    [
        ("none", 3, "", "none"),
        ("error", 3, "", "error"),
        ("last", 4, "", "last:4"),
        ("last", 0, "", "last:1"),
        ("notebook", 3, "", "notebook"),
        ("vars", 3, "df, model", "vars:df,model"),
        ("vars", 3, "", "none"),
    ],
)
def test_context_spec(choice: str, n: int, names: str, spec: str) -> None:
    assert context_spec(choice, n, names) == spec
    from glm_magic.context import parse_spec

    assert str(parse_spec(spec)) == spec


def test_context_spec_round_trip_and_errors() -> None:
    assert spec_to_choice("vars:a,b") == ("vars", 3, "a, b")
    assert spec_to_choice("last:5") == ("last", 5, "")
    assert spec_to_choice("none") == ("none", 3, "")
    with pytest.raises(ValueError, match="context picker"):
        spec_to_choice("cells:1-3 error")
    with pytest.raises(ValueError, match="not a variable name"):
        context_spec("vars", 3, "ok, 2bad")


def test_context_budget_leaves_room_for_the_reply() -> None:
    info = model_info("glm-4.7")
    budget = context_budget(info, None, "system", "prompt")
    assert 256 <= budget < info.context_window - info.default_output
    assert context_budget(model_info("glm-4.7"), 199_900, "s", "p") == 256


def test_totals() -> None:
    totals = new_totals()
    assert totals_line(totals) == "Session: no replies yet"
    add_to_totals(totals, Reply(text="a", model="glm-4.7", usage=Usage(1000, 500, 1500)))
    add_to_totals(totals, Reply(text="b", model="local", usage=Usage(10, 5, 15)))
    add_to_totals(totals, Reply(text="c", model="glm-4.7", error="Stopped"))
    line = totals_line(totals)
    assert line.startswith("Session: 3 replies · 1,010 in / 505 out tokens · ~$0.0017")
    assert "(1 without a known price)" in line and "1 stopped or cut reply without usage" in line


# -- the panel offline (widgets without a kernel) --------------------------------------


class FakeShell:
    """Just enough of a shell for the panel: a namespace and a kernel marker."""

    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {}
        self.kernel = object()


@pytest.fixture
def magics(endpoint: EndpointServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    pytest.importorskip("ipywidgets")
    from glm_magic.ipython.magics import GlmMagics

    monkeypatch.setenv("GLM_BASE_URL", endpoint.base_url)
    found = GlmMagics(shell=None)
    found.shell = FakeShell()  # type: ignore[assignment]
    yield found
    found.close()


def test_panel_streams_off_the_main_thread(magics: Any, fresh_endpoint: EndpointServer) -> None:
    from glm_magic.widgets.app import ChatPanel

    panel = ChatPanel(magics.session, model="glm-4.7+tokens=60+delay=0.01", fetch_models=False)
    threads: set[str] = set()
    panel.transcript.observe(lambda _c: threads.add(threading.current_thread().name), "children")
    assert panel.send("Tell me something") is True
    assert panel.running and panel.send_button.disabled and not panel.stop_button.disabled
    assert panel.send("again") is False, "one reply at a time"
    assert "still streaming" in panel.transcript.children[-1].value
    panel.wait(10)
    assert not panel.running and not panel.send_button.disabled
    assert threads == {threading.current_thread().name}, "children change on the main thread only"
    reply = panel.last
    assert reply is not None and reply.complete and reply.usage is not None
    assert magics.shell.user_ns["_glm"] is reply
    assert panel.state()["turns"] == 1 and "1 turn" in panel.header.value


def test_panel_shows_a_cut_reply_with_its_note(magics: Any, fresh_endpoint: EndpointServer) -> None:
    from glm_magic.widgets.app import ChatPanel

    magics.max_tokens = 12
    panel = ChatPanel(magics.session, model="glm-4.7", fetch_models=False)
    panel.send("Tell me something")
    panel.wait(10)
    reply = panel.last
    assert reply is not None and reply.truncated and not reply.error and len(reply.text) == 48
    shown = panel.transcript.children[-1].children[-1].value
    assert "Cut at 12 tokens: your max_tokens cap (12) was reached" in shown
    assert panel.state()["turns"] == 1  # kept in the panel's conversation


def test_panel_stop_and_new_chat(magics: Any, fresh_endpoint: EndpointServer) -> None:
    from glm_magic.widgets.app import ChatPanel

    panel = ChatPanel(magics.session, model="glm-4.7+tokens=2000+delay=0.01", fetch_models=False)
    panel.send("long")
    time.sleep(0.4)
    panel.stop()
    panel.wait(5)
    assert panel.last is not None and panel.last.error.startswith("Stopped")
    assert fresh_endpoint.wait_for_outcome(len(fresh_endpoint.requests) - 1, 5) == "client_closed"
    panel.new_chat()
    assert panel.transcript.children == () and panel.conversation.turns == []
    assert panel.totals["replies"] == 1, "session totals survive New chat"


def test_panel_empty_prompt_and_bad_names(magics: Any, fresh_endpoint: EndpointServer) -> None:
    from glm_magic.widgets.app import ChatPanel

    panel = ChatPanel(magics.session, model="glm-4.7", fetch_models=False)
    assert panel.send("   ") is False and "Type a question" in panel.transcript.children[-1].value
    panel.context_picker.value = "vars"
    panel.variables.value = "ok, 2bad"
    assert "not a variable name" in panel.estimate_line
    assert not fresh_endpoint.requests


def test_panel_fetches_models_in_the_background(
    magics: Any, fresh_endpoint: EndpointServer
) -> None:
    from glm_magic.testing import MODELS
    from glm_magic.widgets.app import ChatPanel

    panel = ChatPanel(magics.session, model="glm-4.7")
    deadline = time.monotonic() + 5
    while "/models" not in panel.facts.value and time.monotonic() < deadline:
        time.sleep(0.02)
    assert panel.models_note == "endpoint"
    assert set(panel.model_picker.options) == set(MODELS) and panel.model_picker.value == "glm-4.7"
    assert "the endpoint's /models" in html.unescape(panel.facts.value)


def test_the_panel_preview_masks_the_configured_key(
    magics: Any, ipshell: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from glm_magic.widgets.app import ChatPanel

    # PLAIN_KEY matches no key pattern: only masking the configured key hides it.
    monkeypatch.setenv("RUNAPI_KEY", PLAIN_KEY)
    magics.session.shell = ipshell
    ipshell.user_ns["label"] = f"the key is {PLAIN_KEY}"
    panel = ChatPanel(magics.session, model="glm-4.7", fetch_models=False)
    panel.context_picker.value = "vars"
    panel.variables.value = "label"
    preview = panel.preview("what is it?")
    assert "the key is" in preview.text and PLAIN_KEY not in preview.text
    assert PLAIN_KEY not in panel.estimate_line
