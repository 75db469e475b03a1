"""%%glm and %glm in a real ipykernel, asserting on the iopub messages a frontend receives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from glm_magic.testing import EndpointServer

from ..conftest import FAKE_KEY
from ..helpers import no_retries
from .harness import Kernel, kernel_env

pytestmark = pytest.mark.kernel


def test_load_ext_is_cheap_and_lazy(endpoint: EndpointServer) -> None:
    k = Kernel(kernel_env(endpoint.base_url))
    try:
        ex = k.run(
            "import sys\n"
            "before = set(sys.modules)\n"
            "%load_ext glm_magic\n"
            "print(sorted(m for m in ('httpx', 'nbformat', 'ipywidgets', 'httpcore')"
            " if m in sys.modules and m not in before))"
        )
        assert ex.status == "ok", ex.messages
        assert ex.stdout.strip() == "[]"
    finally:
        k.shutdown()


def test_cell_streams_into_one_display(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    ex = kernel.run("%%glm -m glm-4.7+delay=0.01\nSay hello to the notebook")
    assert ex.status == "ok", ex.messages
    first = ex.of("display_data")
    assert len(first) == 1, "one display, then updates of it"
    assert "working" in first[0]["content"]["data"]["text/html"]
    display_id = first[0]["content"]["transient"]["display_id"]
    updates = ex.updates
    assert len(updates) >= 3, "intermediate text is shown before the reply ends"
    assert all(u["content"]["transient"]["display_id"] == display_id for u in updates)
    # Intermediate updates grow; the final one holds everything.
    texts = [u["content"]["data"]["text/plain"] for u in updates]
    assert "streaming" in texts[0]
    final = ex.final_bundle()
    assert set(final) == {"text/html", "text/plain"}
    assert fresh_endpoint.wait_for_outcome(len(fresh_endpoint.requests) - 1) == "completed"
    meta = updates[-1]["content"]["metadata"]["glm_magic"]
    assert meta["model"] == "glm-4.7+delay=0.01"
    assert meta["usage"]["completion_tokens"] > 0
    assert meta["complete"] is True
    # The footer: model, tokens, time.
    assert "glm-4.7" in final["text/html"] and " out" in final["text/html"]
    assert " s" in final["text/plain"].splitlines()[-1]


def test_final_update_holds_the_whole_reply_same_as_non_stream(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    streamed = kernel.run("%%glm --new -o r1\nWrite a function to add numbers")
    plain = kernel.run("%%glm --new --no-stream -o r2\nWrite a function to add numbers")
    assert streamed.status == plain.status == "ok"
    same = kernel.run("print(r1.text == r2.text, len(r1.text) > 50, r1.code == r2.code)")
    assert same.stdout.split() == ["True", "True", "True"]
    assert streamed.answer == plain.answer
    assert '<span class="glm-lang">python</span>' in streamed.html  # a highlighted block
    assert len(plain.updates) == 1  # no-stream: the placeholder, then the final update


def test_coalescing_bound_for_a_2000_token_reply(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    ex = kernel.run("%%glm --new -m glm-4.7+tokens=2000+delay=0.001\nlong please", timeout=120)
    assert ex.status == "ok", ex.messages
    shown = ex.displays
    from datetime import datetime

    def at(msg: dict[str, object]) -> float:
        date = msg["header"]["date"]  # type: ignore[index]
        return (
            date if isinstance(date, datetime) else datetime.fromisoformat(str(date))
        ).timestamp()

    duration = at(shown[-1]) - at(shown[0])
    # At most one update per 0.1 s of streaming, plus the placeholder and the final update.
    assert len(ex.updates) <= 1 + duration / 0.1 + 3, (len(ex.updates), duration)
    assert len(ex.updates) < 2000 / 10
    reply = kernel.run(
        "print(len(_glm_check := __import__('glm_magic.ipython.extension', fromlist=['x'])"
        ".current().last_reply.text))"
    )
    assert int(reply.stdout.strip()) == 2000 * 4
    assert len(ex.answer) >= 2000 * 4 - 1  # text/plain drops trailing whitespace


def test_long_replies_update_less_often(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    # Every update resends the whole text, so the gap before the next one grows with the text
    # (one update a second at 50K chars). Checked on the kernel's own message times: a lower
    # bound on each gap, which a slow machine only makes easier to meet.
    ex = kernel.run("%%glm --new -m glm-4.7+tokens=4000+delay=0.0015\nlong please", timeout=180)
    assert ex.status == "ok", ex.messages
    from datetime import datetime

    def at(msg: dict[str, Any]) -> float:
        date = msg["header"]["date"]
        return (
            date if isinstance(date, datetime) else datetime.fromisoformat(str(date))
        ).timestamp()

    streaming = ex.updates[:-1]  # the last one is the final update, sent whatever the time
    assert len(streaming) >= 3, len(streaming)
    sizes = [len(u["content"]["data"]["text/plain"]) for u in streaming]
    assert sizes[-1] > 8_000, sizes  # long enough that the slow-down decides the gaps
    for before, after, size in zip(streaming[:-1], streaming[1:], sizes[:-1], strict=True):
        # The status line adds under 100 characters to the reply's own text.
        wanted = max(0.12, (size - 100) / 50_000)
        gap = at(after) - at(before)
        assert gap >= wanted - 0.01, f"{gap:.3f} s after an update of {size} characters"


def test_thinking_is_shown_apart(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    ex = kernel.run("%%glm --new --think -o thought\nhello")
    assert ex.status == "ok"
    shown = ex.html
    assert '<details class="glm-thinking"><summary><em>Thinking (' in shown
    assert shown.index("<details") < shown.index('<div class="glm-footer"')
    check = kernel.run("print(bool(thought.reasoning), thought.reasoning in thought.text)")
    assert check.stdout.split() == ["True", "False"]
    assert fresh_endpoint.requests[-1].body["thinking"] == {"type": "enabled"}


def test_conversation_memory_reset_and_new(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    kernel.run("%glm reset")
    kernel.run("%%glm\nfirst question")
    kernel.run("%%glm\nsecond question")
    roles = [m["role"] for m in fresh_endpoint.requests[-1].body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    hist = kernel.run("%glm history")
    assert "first question" in hist.stdout and "second question" in hist.stdout
    kernel.run("%%glm --new\nthird")
    assert [m["role"] for m in fresh_endpoint.requests[-1].body["messages"]] == ["system", "user"]
    out = kernel.run("%glm reset")
    assert "reset" in out.stdout
    kernel.run("%%glm -s 'Answer in French.'\nfourth")
    first = fresh_endpoint.requests[-1].body["messages"][0]
    assert first == {"role": "system", "content": "Answer in French."}


def test_interpolation_is_brace_safe(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    kernel.run("numbers = [1, 2, 3]\nclass C: label = 'cats'\nobj = C()")
    cell = (
        "%%glm --new\n"
        "Data {numbers}, label {obj.label}, dict {\"a\": 1}, f-string f'{x!r}', {missing}.\n"
        "```python\nprint({numbers})\n```"
    )
    ex = kernel.run(cell)
    assert ex.status == "ok", ex.messages
    sent = fresh_endpoint.requests[-1].body["messages"][-1]["content"]
    assert "Data [1, 2, 3], label cats" in sent
    assert "dict {\"a\": 1}, f-string f'{x!r}', {missing}." in sent
    assert "print({numbers})" in sent  # code blocks are never touched
    kernel.run("%%glm --new --no-interpolate\nraw {numbers}")
    assert fresh_endpoint.requests[-1].body["messages"][-1]["content"] == "raw {numbers}"


def test_reply_object(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    kernel.run("%%glm --new -o rep\nWrite code to compute squares")
    ex = kernel.run(
        "import json\n"
        "print(json.dumps({'has_code': 'def ' in rep.code or 'for ' in rep.code,"
        " 'finish': rep.finish_reason, 'rid': bool(rep.request_id), 'model': rep.model,"
        " 'usage': rep.usage.completion_tokens > 0, 'repr': repr(rep)[:7]}))\n"
        "rep"
    )
    data = json.loads(ex.stdout)
    assert data == {
        "has_code": True,
        "finish": "stop",
        "rid": True,
        "model": "glm-5.1",
        "usage": True,
        "repr": "<Reply ",
    }
    result = ex.of("execute_result")[0]["content"]["data"]
    assert "text/html" in result and "<Reply" in result["text/plain"]


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ("%%glm --bogus\nhi", "unrecognized arguments"),
        ("%%glm\n   \n", "empty"),
        ("%%glm --temperature hot\nhi", "invalid float"),
        ("%%glm --temperature 7\nhi", "temperature"),
        ("%%glm -f html\nhi", "invalid choice"),
        ("%%glm -o 'not a name'\nhi", "-o needs"),
    ],
)
def test_bad_input_is_a_usage_error_line(kernel: Kernel, cell: str, words: str) -> None:
    ex = kernel.run(cell)
    assert ex.status == "error"
    assert ex.error is not None and ex.error["ename"] == "UsageError"
    assert words in ex.stderr or words in ex.error["evalue"]
    assert not ex.displays


@pytest.mark.parametrize(
    ("fault", "label"),
    [("401", "Authentication failed"), ("429-1302", "Rate limited"), ("500", "Server error")],
)
def test_api_errors_are_one_line_without_traceback(
    kernel: Kernel, fresh_endpoint: EndpointServer, fault: str, label: str
) -> None:
    with no_retries(kernel):
        ex = kernel.run(f"%%glm --new -m glm-4.7+fault={fault}\nhello")
    assert ex.status == "error"
    assert ex.error is not None
    tb = ex.error["traceback"]
    assert len(tb) == 1 and label in tb[0], tb
    assert FAKE_KEY not in ex.everything()


def test_cut_stream_keeps_partial_text(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    ex = kernel.run("%%glm --new -o cut_reply -m glm-4.7+fault=cut+cut_after=8\nhello")
    assert ex.status == "error"
    assert "Stream broken" in ex.error["traceback"][0]  # type: ignore[index]
    assert len(ex.answer) > 10
    check = kernel.run("print(cut_reply.complete, bool(cut_reply.text), bool(cut_reply.error))")
    assert check.stdout.split() == ["False", "True", "True"]


def test_interrupt_keeps_partial_and_closes_connection(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    msg_id = kernel.start("%%glm --new -o stopped -m glm-4.7+tokens=3000+delay=0.01\nlong")

    def has_text(msg: dict[str, object]) -> bool:
        content = msg["content"]
        return msg["msg_type"] == "update_display_data" and "streaming" in str(content)

    early = kernel.wait_for(msg_id, has_text)
    kernel.km.interrupt_kernel()
    ex = kernel.collect(msg_id)
    ex.messages[:0] = early
    assert ex.status == "error"
    assert ex.error is not None and len(ex.error["traceback"]) == 1
    assert "Stopped" in ex.error["traceback"][0]
    partial = ex.answer
    assert 0 < len(partial) < 3000 * 4
    assert fresh_endpoint.wait_for_outcome(0, timeout=10) == "client_closed"
    assert fresh_endpoint.requests[0].chunks_sent < 3000
    check = kernel.run("print(len(stopped.text) > 0, stopped.complete)")
    assert check.stdout.split() == ["True", "False"]
    # The kernel still works afterwards.
    assert kernel.run("%%glm\nstill there?").status == "ok"


def test_missing_key_is_one_line_and_sends_nothing(endpoint: EndpointServer) -> None:
    env = kernel_env(endpoint.base_url)
    env.pop("GLM_BASE_URL")  # the default: RunAPI, which needs a key
    k = Kernel(env)
    try:
        k.run("%load_ext glm_magic")
        ex = k.run("%%glm\nhello")
        assert ex.status == "error"
        assert ex.error is not None and ex.error["ename"] == "UsageError"
        assert "%glm key" in ex.stderr and "RUNAPI_KEY" in ex.stderr
        assert len(ex.stderr.strip().splitlines()) == 1
        assert not ex.displays
    finally:
        k.shutdown()


def test_key_from_hidden_prompt_is_never_echoed(endpoint: EndpointServer) -> None:
    env = kernel_env(endpoint.base_url)
    env.pop("GLM_BASE_URL")
    k = Kernel(env)
    try:
        k.run("%load_ext glm_magic")
        msg_id = str(k.kc.execute("%glm key", allow_stdin=True))
        req = k.kc.get_stdin_msg(timeout=30)
        assert req["content"]["password"] is True
        k.kc.input(FAKE_KEY)
        ex = k.collect(msg_id)
        assert "stored" in ex.stdout
        cfg = k.run("%glm config")
        assert "api key         set" in cfg.stdout
        assert FAKE_KEY not in ex.everything() + cfg.everything()
        bad = k.run("%glm key sk-typed-on-the-line")
        assert bad.status == "error" and "hidden prompt" in bad.stderr
    finally:
        k.shutdown()


def test_models_and_config_and_help(kernel: Kernel) -> None:
    ex = kernel.run("%glm models")
    md = ex.final_bundle()["text/markdown"]
    dollar = "<span>&#36;</span>"
    assert "| glm-4.7 | 200K |" in md and f"{dollar}0.60 / {dollar}2.20" in md
    assert "$" not in md.replace(dollar, "")  # no dollar JupyterLab could read as math
    cfg = kernel.run("%glm config")
    assert "base_url        http://127.0.0.1" in cfg.stdout
    assert FAKE_KEY not in cfg.everything()
    helped = kernel.run("%glm")
    assert "%glm key" in helped.stdout
    magic_help = kernel.run("%%glm?")
    assert "--no-interpolate" in magic_help.everything()


def test_line_magic_asks(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    ex = kernel.run("%glm --new -m glm-4.5-air what is a closure")
    assert ex.status == "ok"
    body = fresh_endpoint.requests[-1].body
    assert body["model"] == "glm-4.5-air"
    assert body["messages"][-1]["content"] == "what is a closure"


def test_config_traits(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    kernel.run("%config GlmMagics.model = 'glm-4.6'\n%config GlmMagics.temperature = 0.2")
    try:
        kernel.run("%%glm --new\nhi")
        body = fresh_endpoint.requests[-1].body
        assert body["model"] == "glm-4.6" and body["temperature"] == 0.2
        assert body["stream_options"] == {"include_usage": True}  # a generic OpenAI host
        kernel.run("%config GlmMagics.stream_usage = False")
        kernel.run("%%glm --new\nhi")
        assert "stream_options" not in fresh_endpoint.requests[-1].body
    finally:
        kernel.run("%config GlmMagics.model = 'glm-5.1'\n%config GlmMagics.temperature = None")
        kernel.run("%config GlmMagics.stream_usage = None")


def test_unload_removes_everything(endpoint: EndpointServer) -> None:
    k = Kernel(kernel_env(endpoint.base_url))
    try:
        k.run("%load_ext glm_magic")
        k.run("%unload_ext glm_magic")
        ex = k.run("%%glm\nhi")
        assert ex.status == "error"
        gone = k.run(
            "ip = get_ipython()\n"
            "print('glm' in ip.magics_manager.magics['line'],"
            " any(type(c).__name__ == 'GlmMagics' for c in ip.configurables))"
        )
        assert gone.stdout.split() == ["False", "False"]
        k.run("%load_ext glm_magic")
        assert k.run("%%glm\nhi again").status == "ok"
    finally:
        k.shutdown()


def test_python_api_ask(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    ex = kernel.run("import glm_magic\nr = glm_magic.ask('Write code for squares', new=True)")
    assert ex.status == "ok", ex.messages
    assert len(ex.updates) >= 1  # it streamed into the output like a cell
    check = kernel.run("print(r.complete, 'def ' in r.code, _glm is r)")
    assert check.stdout.split() == ["True", "True", "True"]
    bad = kernel.run("glm_magic.ask('hi', bogus=1)")
    assert bad.status == "error" and "unknown option(s): bogus" in bad.stderr
