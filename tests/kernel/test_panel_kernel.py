"""The chat panel and the failing-cell buttons in a real ipykernel.

State is read from inside the kernel (the panel's widgets and ``state()``),
what a frontend receives from the iopub messages, and what the server saw
from the bundled endpoint's request log.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from glm_magic.testing import EndpointServer

from ..conftest import FAKE_KEY
from ..helpers import EXAMPLES, run_example
from .harness import Execution, Kernel, kernel_env

pytestmark = pytest.mark.kernel

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def state(kernel: Kernel, expr: str = "p") -> dict[str, Any]:
    ex = kernel.run(f"import json as _json; print(_json.dumps({expr}.state()))")
    assert ex.status == "ok", ex.messages
    return dict(json.loads(ex.stdout))


def answer_html(kernel: Kernel, expr: str = "p") -> str:
    ex = kernel.run(
        f"print({expr}.transcript.children[-1].children[1].value if {expr}.transcript.children "
        "else '')"
    )
    return ex.stdout


def chat_requests(endpoint: EndpointServer) -> list[Any]:
    return [r for r in endpoint.requests if r.path.endswith("/chat/completions")]


def last_chat_index(endpoint: EndpointServer) -> int:
    found = [i for i, r in enumerate(endpoint.requests) if r.path.endswith("/chat/completions")]
    assert found, "no chat request"
    return found[-1]


def widget_views(ex: Execution) -> list[dict[str, Any]]:
    return [m for m in ex.of("display_data") if WIDGET_VIEW in m["content"]["data"]]


@pytest.fixture
def panel_kernel(kernel: Kernel) -> Kernel:
    """The module's kernel with default settings restored and a fresh panel ``p``."""
    ex = kernel.run(
        "%config GlmMagics.max_retries = 3\n"
        "%config GlmMagics.read_timeout = 300.0\n"
        "from glm_magic import panel as show_panel"
    )
    assert ex.status == "ok", ex.messages
    return kernel


def test_panel_shows_widgets_and_state_after_send(
    panel_kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    k = panel_kernel
    shown = k.run("p = show_panel(model='glm-4.7', fetch_models=False)")
    assert shown.status == "ok", shown.stderr
    assert len(widget_views(shown)) == 1, "one widget view in the cell's output"
    assert shown.of("comm_open"), "the widgets' comms are opened"
    before = state(k)
    assert before["model"] == "glm-4.7" and before["running"] is False
    assert before["turns"] == 0 and before["transcript"] == 0
    assert before["context"] == "none" and before["estimate"].startswith("Context: none")

    magic_turns = k.run(
        "from glm_magic.ipython.extension import current\nprint(len(current().conversation.turns))"
    ).stdout.strip()
    ex = k.run("p.prompt.value = 'Write a function for Fibonacci numbers'\np.send()")
    assert ex.status == "ok", ex.stderr
    # What the frontend is sent: new widgets for the turn, the transcript's new
    # children, and the buttons' state while the reply streams.
    assert len(ex.of("comm_open")) >= 3
    updates = [m["content"]["data"].get("state", {}) for m in ex.of("comm_msg")]
    assert any(len(u.get("children", [])) == 2 for u in updates), updates
    assert {"disabled": True} in updates and {"disabled": False} in updates
    k.run("p.wait(30)")
    after = state(k)
    assert after["turns"] == 1 and after["replies"] == 1 and after["transcript"] == 2
    assert after["send_disabled"] is False and after["stop_disabled"] is True
    assert after["totals"]["replies"] == 1 and after["totals"]["completion"] > 0
    html = answer_html(k)
    assert "glm-copy" in html and "glm-insert" in html, "code blocks get Copy / Insert"
    assert "fibonacci" in html and "glm-4.7 · " in html, "the footer names the model"
    assert "_glm_panel.replies[0].code" in html, "Insert says where the code is"
    same = k.run("print(_glm is p.last, _glm_panel is p, p.prompt.value == '')")
    assert same.stdout.split() == ["True", "True", "True"]
    # The panel's conversation is its own: %%glm cells' history is untouched.
    own = k.run("print(len(p.conversation.turns), len(current().conversation.turns))")
    assert own.stdout.split() == ["1", magic_turns]
    sent = chat_requests(fresh_endpoint)[-1].body
    assert sent["messages"][-1]["content"] == "Write a function for Fibonacci numbers"


def test_panel_as_last_expression_shows_once(panel_kernel: Kernel) -> None:
    k = panel_kernel
    ex = k.run("show_panel(fetch_models=False)")
    assert ex.status == "ok" and len(widget_views(ex)) == 1
    assert not ex.of("execute_result")
    again = k.run("_glm_panel")
    assert len(widget_views(again)) == 1, "shown again on request in another cell"


def wait_until(kernel: Kernel, expr: str, timeout: float = 30) -> str:
    """Evaluate ``expr`` in the kernel until it prints something true; return that text.

    An event-based wait: it fails only when the state never comes within the (generous)
    timeout, never because the machine was slow.
    """
    deadline = time.monotonic() + timeout
    while True:
        out = kernel.run(f"print({expr})").stdout.strip()
        if out not in ("", "False", "0", "None"):
            return out
        if time.monotonic() > deadline:
            raise AssertionError(f"{expr} never became true")
        time.sleep(0.05)


def test_reply_streams_in_the_background_with_coalesced_updates(
    panel_kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    k = panel_kernel
    k.run("p = show_panel(model='glm-4.7+tokens=600+delay=0.01', fetch_models=False)")
    ex = k.run("p.send('Tell me a story'); print(p.running, p.last is None)")
    # The cell ended while the reply was still streaming: send() does not wait for it.
    assert ex.stdout.split() == ["True", "True"]
    # Later cells see the transcript grow while the reply streams, Stop enabled meanwhile.
    answer = "len(p.transcript.children[-1].children[1].value)"
    streaming = f"p.running and not p.state()['stop_disabled'] and {answer}"
    sizes = [int(k.run(f"print({answer})").stdout)]
    for _ in range(2):
        grown = f"{answer} if ({streaming} > {sizes[-1]}) else 0"
        sizes.append(int(wait_until(k, grown)))
    assert sizes[0] < sizes[1] < sizes[2], sizes
    k.run("p.wait(60)")
    final = k.run(
        "v = p.transcript.children[-1]\n"
        "print(p.last.usage.completion_tokens, p.last.complete)\n"
        "from glm_magic.widgets.reply import ReplyView\n"
    )
    assert final.stdout.split() == ["600", "True"]
    # Coalesced: far fewer HTML updates than tokens, but more than the final one.
    updates = k.run(
        "import gc\n"
        "views = [o for o in gc.get_objects() if isinstance(o, ReplyView)]\n"
        "print(max(v.updates for v in views if v.model.endswith('tokens=600+delay=0.01')))"
    )
    n = int(updates.stdout.strip())
    assert 3 <= n < 600 // 4, n


def test_stop_closes_the_connection_and_keeps_the_partial_text(
    panel_kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    k = panel_kernel
    k.run("p = show_panel(model='glm-4.7+tokens=3000+delay=0.01', fetch_models=False)")
    k.run("p.send('A very long answer please')")
    wait_until(k, "p.running and 'Lor' in p.transcript.children[-1].children[1].value")
    ex = k.run("p.stop(); p.wait(10); print(p.last.error); print(len(p.last.text))")
    error, length = ex.stdout.strip().splitlines()
    assert error.startswith("Stopped:") and int(length) > 0
    index = last_chat_index(fresh_endpoint)
    assert fresh_endpoint.wait_for_outcome(index, 5) == "client_closed"
    html = answer_html(k)
    assert "Stopped" in html and "Lor" in html, "the partial text stays with the stop line"
    after = state(k)
    assert after["running"] is False and after["send_disabled"] is False
    assert after["turns"] == 1, "the partial answer is remembered"


@pytest.mark.parametrize(
    ("model", "setup", "expected"),
    [
        ("glm-4.7+fault=401", "", "Authentication failed"),
        ("glm-4.7+fault=429", "%config GlmMagics.max_retries = 0", "Rate limit"),
        ("glm-4.7+fault=stall", "%config GlmMagics.read_timeout = 0.5", "Timeout"),
        ("glm-4.7+fault=cut", "", "Stream broken"),
    ],
)
def test_errors_are_one_line_and_the_panel_keeps_working(
    panel_kernel: Kernel, fresh_endpoint: EndpointServer, model: str, setup: str, expected: str
) -> None:
    k = panel_kernel
    if setup:
        k.run(setup)
    k.run(f"p = show_panel(model={model!r}, fetch_models=False)")
    ex = k.run("p.send('hello'); p.wait(30)")
    assert ex.status == "ok" and not ex.stderr.strip(), ex.stderr
    html = answer_html(k)
    assert html.count('class="glm-error"') == 1, html
    line = html.split('class="glm-error">', 1)[1].split("</div>", 1)[0]
    assert expected.lower() in line.lower() and "Traceback" not in html, line
    k.run("p.model_picker.value = 'glm-4.7'; p.send('hello again'); p.wait(30)")
    after = state(k)
    assert after["replies"] == 2 and "Scripted reply" in answer_html(k)


def test_missing_key_is_one_line(panel_kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    k = panel_kernel
    ex = k.run(
        "import os\n"
        "_saved = os.environ.pop('RUNAPI_KEY')\n"
        "%config GlmMagics.base_url = 'https://glm.invalid/v1'\n"
        "try:\n"
        "    p = show_panel(model='glm-4.7', fetch_models=False)\n"
        "    print(p.send('hello'))\n"
        "    print(p.transcript.children[-1].value)\n"
        "finally:\n"
        "    os.environ['RUNAPI_KEY'] = _saved\n"
        "    %config GlmMagics.base_url = os.environ['GLM_BASE_URL']"
    )
    assert ex.status == "ok", ex.stderr
    sent, line = ex.stdout.strip().splitlines()
    assert sent == "False" and "Missing API key" in line and "%glm key" in line
    assert FAKE_KEY not in ex.everything()
    assert not chat_requests(fresh_endpoint), "nothing was sent"


def test_panel_magic_and_context_estimate(
    panel_kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    k = panel_kernel
    k.run("setting = 'Bearer sk-abcdefghijklmnop1234'\nnumbers = [1, 2, 3]")
    ex = k.run("%glm panel -m glm-4.7 --context vars:numbers,setting")
    assert ex.status == "ok", ex.stderr
    assert len(widget_views(ex)) == 1
    st = state(k, "_glm_panel")
    assert st["context"] == "vars:numbers,setting"
    assert st["estimate"].startswith("Context: vars:numbers,setting · ~")
    assert "1 secret masked" in st["estimate"]
    k.run("_glm_panel.send('What is in numbers?'); _glm_panel.wait(30)")
    body = json.dumps(chat_requests(fresh_endpoint)[-1].body)
    assert "numbers" in body and "sk-abcdefghijklmnop1234" not in body
    bad = k.run("%glm panel --context cells:1-3 error")
    assert bad.status == "error" and "context picker" in bad.stderr


def test_buttons_appear_under_the_traceback_and_explain(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    k = kernel
    on = k.run("%glm buttons on")
    assert "on" in on.stdout
    k.run("prices = {'apple': 1.5}")
    failing = k.run("total = price['apple']")
    assert failing.status == "error"
    types = [m["msg_type"] for m in failing.messages]
    error_at = types.index("error")
    views = widget_views(failing)
    assert len(views) == 1 and failing.messages.index(views[0]) > error_at, types
    assert "Traceback" in "".join(failing.of("error")[0]["content"]["traceback"])
    count = failing.reply["content"]["execution_count"]
    # A reply that takes seconds (20 ms a piece), so "still running" cannot race its end.
    k.run("%config GlmMagics.model = 'glm-4.7+delay=0.02'")
    ex = k.run(
        "import glm_magic.widgets.buttons as b\n"
        f"row = b.rows[{count}]\n"
        "print(row.start('explain'), row.running)\n"
    )
    assert ex.stdout.split() == ["True", "True"]
    k.run("row.wait(30)")
    k.run("%config GlmMagics.model = ''")  # back to the default
    text = k.run("print(row.reply.text)").stdout
    assert "Root cause" in text and "NameError" in text
    request = chat_requests(fresh_endpoint)[-1].body
    user = request["messages"][-1]["content"]
    assert "total = price['apple']" in user and "NameError" in user
    assert "prices = {'apple': 1.5}" in user, "the cell defining the names goes too"
    html = k.run("print(row.output.children[-1].children[1].value)").stdout
    assert "Root cause" in html and "glm-footer" in html

    # Fix: the corrected cell comes with Copy / Insert; Stop closes the connection.
    k.run(f"row.start('fix'); row.wait(30); print(b.replies[{count}].code)")
    assert "prices['apple']" in k.run(f"print(b.replies[{count}].code)").stdout
    assert "glm-insert" in k.run("print(row.output.children[-1].children[1].value)").stdout
    k.run("%config GlmMagics.model = 'glm-4.7+tokens=3000+delay=0.01'")
    try:
        k.run("row.start('explain')")
        # Stop once the endpoint is streaming the reply (the request is in, not finished).
        deadline = time.monotonic() + 30
        while not any(r.outcome == "pending" for r in chat_requests(fresh_endpoint)):
            assert time.monotonic() < deadline, "the explain request never started"
            time.sleep(0.02)
        k.run("row.stop(); row.wait(10)")
        index = last_chat_index(fresh_endpoint)
        assert fresh_endpoint.wait_for_outcome(index, 5) == "client_closed"
        assert "Stopped" in k.run("print(row.reply.error)").stdout
    finally:
        k.run("%config GlmMagics.model = 'glm-5.1'")
    # Our own one-line errors and interrupts get no buttons.
    usage = k.run("%glm panel --context nonsense")
    assert usage.status == "error" and not widget_views(usage)
    k.run("%glm buttons off")
    quiet = k.run("1/0")
    assert quiet.status == "error" and not widget_views(quiet)


def test_unload_removes_the_listener(endpoint: EndpointServer) -> None:
    k = Kernel(kernel_env(endpoint.base_url, RUNAPI_KEY=FAKE_KEY))
    try:
        k.run("%load_ext glm_magic")
        k.run("%glm buttons on")
        assert len(widget_views(k.run("1/0"))) == 1
        k.run("%unload_ext glm_magic")
        gone = k.run("1/0")
        assert gone.status == "error" and not widget_views(gone)
        left = k.run(
            "import glm_magic.widgets.buttons as b, glm_magic.failures as h\n"
            "print(b.enabled(get_ipython()), len(h._logs))"
        )
        assert left.stdout.split() == ["False", "0"]
        # Loading again starts with the buttons off, as configured by default.
        k.run("%load_ext glm_magic")
        assert not widget_views(k.run("1/0"))
    finally:
        k.shutdown()


def test_panel_example_notebook_runs(endpoint: EndpointServer, monkeypatch: Any) -> None:
    path = EXAMPLES / "panel.ipynb"
    before = path.read_bytes()
    nb = run_example("panel.ipynb", endpoint.base_url, monkeypatch)
    views = [o for c in nb.cells for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
    assert len(views) == 2, "the panel and the button row under the failing cell"
    printed = "\n".join(
        o.get("text", "") for c in nb.cells if "print(" in c.source for o in c.outputs
    )
    assert "def fibonacci" in printed and "prices[name]" in printed
    assert path.read_bytes() == before
