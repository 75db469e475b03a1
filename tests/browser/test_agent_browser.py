"""``%%glm --agent`` in JupyterLab 4 and Notebook 7 with the bridge (real browser, real kernel).

The bundled endpoint scripts the model's tool calls (``agent-script:``). What a person sees:
the approval card under the agent's cell; **Run** puts the step in a real code cell below,
with its output and execution count, and the model reads that output; **Skip** runs nothing
and tells the model; **Stop** ends the task with no further request.
"""

from __future__ import annotations

import json
from typing import Any

from glm_magic.testing import EndpointServer

from .agent_ui import CARD, STDIN_INPUT, button, outputs_text
from .jupyter import JupyterServer
from .test_bridge import bridged, sources
from .test_browser import poll

PROMPT = "Run this code? [y]es / [n]o / [a]ll / [q]uit"


def _task(*turns: Any, options: str = "") -> str:
    return f"%%glm --agent -m glm-4.7 {options}\nagent-script: {json.dumps(list(turns))}"


def _run(code: str) -> dict[str, Any]:
    return {"text": "", "calls": [{"name": "run_python", "arguments": {"code": code}}]}


def _card(cell: Any, step: int) -> Any:
    found = cell.locator(CARD).filter(has_text=f"Step {step}")
    found.wait_for(timeout=60_000)
    return found


def _wait_prompt(cell: Any, n: int) -> None:
    """Until the kernel has asked ``n`` times (each ask is one input box, kept or answered)."""
    poll(lambda: outputs_text(cell).count(PROMPT) >= n, timeout=60)


def _chat_bodies(endpoint: EndpointServer) -> list[Any]:
    return [r.body for r in endpoint.requests if r.path.endswith("/chat/completions")]


def test_run_puts_the_step_below_with_its_output_and_the_model_reads_it(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = bridged(page, server, "agent-run.ipynb")
    endpoint.reset()
    code = "agent_total = sum([3, 4, 5])\nprint('total is', agent_total)"
    cell = nb.run(_task(_run(code), "The total: {last_result}"))
    first = _card(cell, 1)
    assert first.locator(".glm-bridge-approval-code").inner_text() == code
    nb.shot("agent-card", first)
    _wait_prompt(cell, 1)
    button(first, "run", 1).click()
    nb.wait_idle(cell, timeout=120)
    assert cell.locator(CARD).count() == 0 and cell.locator(STDIN_INPUT).count() == 0
    texts = sources(nb)
    at = next(i for i, t in enumerate(texts) if t.startswith("%%glm --agent"))
    assert texts[at + 1] == code, texts  # a real code cell right below the agent's cell
    step_cell = nb.cells().nth(at + 1)
    poll(lambda: "total is 12" in outputs_text(step_cell), timeout=30)
    prompt = step_cell.locator(".jp-InputArea-prompt").inner_text()
    assert any(ch.isdigit() for ch in prompt), prompt  # it has an execution count
    shown = outputs_text(cell)
    assert "ran as In [" in shown  # the agent's cell shows the step's short result
    assert "The total:" in shown and "(no text)" not in shown
    nb.shot("agent-step-cell")
    bodies = _chat_bodies(endpoint)
    assert len(bodies) == 2
    assert "total is 12" in next(m for m in bodies[1]["messages"] if m["role"] == "tool")["content"]
    check = nb.run("print(agent_total, [s.status for s in _glm.steps])")
    nb.wait_idle(check)
    assert "12 ['ok']" in outputs_text(check)


def test_skip_declines_and_stop_ends_the_task(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = bridged(page, server, "agent-skip.ipynb")
    endpoint.reset()
    cell = nb.run(
        _task(_run("agent_skipped = 1"), _run("agent_stopped = 2"), _run("never = 3"), "never")
    )
    first = _card(cell, 1)
    _wait_prompt(cell, 1)
    button(first, "skip", 1).click()
    second = _card(cell, 2)
    _wait_prompt(cell, 2)
    button(second, "stop", 2).click()
    nb.wait_idle(cell, timeout=120)
    assert cell.locator(CARD).count() == 0 and cell.locator(STDIN_INPUT).count() == 0
    assert "stopped by the user before step 2 ran" in outputs_text(cell)
    texts = sources(nb)
    at = next(i for i, t in enumerate(texts) if t.startswith("%%glm --agent"))
    assert len(texts) == at + 1 or not texts[at + 1].startswith("agent_"), texts  # no step cell
    bodies = _chat_bodies(endpoint)
    assert len(bodies) == 2  # nothing after Stop
    declined = next(m for m in bodies[1]["messages"] if m["role"] == "tool")["content"]
    assert declined.startswith("Declined by the user")
    check = nb.run(
        "print('agent_skipped' in globals(), 'agent_stopped' in globals(),"
        " [s.status for s in _glm.steps])"
    )
    nb.wait_idle(check)
    assert "False False ['declined', 'stopped', 'not run']" in outputs_text(check) or (
        "False False ['declined', 'stopped']" in outputs_text(check)
    )
