"""The agent's approval card and step cells in JupyterLab 4 and Notebook 7 (real browser).

A cell plays the agent around approval (``agent_ui.stand_in_agent``): the card's
buttons must make ``input()`` return ``y`` / ``n`` / ``a`` / ``q``, a click before
the kernel's prompt must wait for it, typing into JupyterLab's own box must work
too, and no input box may be left behind once the card answered. Steps become
real cells below the agent's cell with their outputs, rendered untrusted.
"""

from __future__ import annotations

from typing import Any

from glm_magic.testing import EndpointServer

from .agent_ui import (
    CARD,
    STDIN_INPUT,
    button,
    card,
    no_box_left_for,
    outputs_text,
    recorded_answer,
    stand_in_agent,
    stdin_boxes,
    wait_answered,
    wait_for_fresh_box,
    wait_for_prompt,
)
from .jupyter import OUTPUT, JupyterServer
from .test_bridge import bridged, select_cell, sources
from .test_browser import poll

HOSTILE = "x = '<b>bold</b><img src=x onerror=\"window.__glm_card_pwned=1\">'"


def test_card_buttons_answer_the_prompt_and_leave_no_input_box(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    nb = bridged(page, server, "approve.ipynb")
    gate = server.root / "go-approve"
    cell = nb.run(stand_in_agent([HOSTILE, "y = 2", "z = 3", "w = 4"], gate=gate.name))

    # Step 1: clicked before the kernel asks (it waits for the gate file): the click waits.
    first = card(cell, 1)
    first.wait_for(timeout=30_000)
    assert first.get_attribute("role") == "group"
    code = first.locator(".glm-bridge-approval-code")
    assert code.inner_text() == HOSTILE, "the code is shown as text"
    poll(lambda: code.locator("span").count() > 0, timeout=10)  # highlighted by CodeMirror
    assert code.inner_text() == HOSTILE, "still exactly the code"
    assert first.locator("img, b").count() == 0
    assert not stdin_boxes(cell), "the kernel has not asked yet"
    nb.shot("agent-approval-card", first)
    button(first, "run", 1).click()
    status = first.locator(".glm-bridge-approval-status")
    poll(lambda: "waiting for the kernel's prompt" in status.inner_text(), timeout=10)
    gate.write_text("")
    wait_answered(cell, 1, "run")
    poll(lambda: first.count() == 0, timeout=20)
    no_box_left_for(cell, 1)
    assert recorded_answer(cell, 1) == "y", outputs_text(cell)

    # Steps 2-4: the kernel's box is there first; each button gives its reply.
    for step, answer in ((2, "skip"), (3, "all"), (4, "stop")):
        this = card(cell, step)
        this.wait_for(timeout=30_000)
        wait_for_prompt(cell, step)
        button(this, answer, step).click()
        wait_answered(cell, step, answer)
        no_box_left_for(cell, step)
        poll(lambda this=this: this.count() == 0, timeout=20)
    nb.wait_idle(cell)
    assert cell.locator(CARD).count() == 0 and cell.locator(STDIN_INPUT).count() == 0
    assert [recorded_answer(cell, s) for s in (2, 3, 4)] == ["n", "a", "q"]
    assert page.evaluate("window.__glm_card_pwned || 0") == 0
    assert not [e for e in errors if "glm-magic" in e], errors


def test_typing_in_the_input_box_answers_and_the_card_goes(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = bridged(page, server, "typed.ipynb")
    cell = nb.run(stand_in_agent(["print('typed')", "x = 2"]))
    first = card(cell, 1)
    first.wait_for(timeout=30_000)
    wait_for_prompt(cell, 1)
    wait_for_fresh_box(cell).click()
    page.keyboard.insert_text("n")
    page.keyboard.press("Enter")
    wait_answered(cell, 1, "skip")
    # The card goes on the kernel's word (approve_done), while the run goes on.
    second = card(cell, 2)
    second.wait_for(timeout=30_000)
    poll(lambda: first.count() == 0, timeout=20)
    no_box_left_for(cell, 1)  # JupyterLab removes its own box half a second after Enter
    assert recorded_answer(cell, 1) == "n", outputs_text(cell)

    # Something the agent does not take, typed: it asks again, and the card still answers.
    wait_for_prompt(cell, 2)
    wait_for_fresh_box(cell).click()
    page.keyboard.insert_text("maybe")
    page.keyboard.press("Enter")
    poll(lambda: "Answer y, n, a or q." in outputs_text(cell), timeout=20)
    assert "not y, n, a or q" in second.locator(".glm-bridge-approval-status").inner_text()
    wait_for_fresh_box(cell)
    button(second, "stop", 2).click()
    wait_answered(cell, 2, "stop")
    nb.wait_idle(cell)
    no_box_left_for(cell, 2)

    # A run that ends without an answer (the agent failed) takes its card with it.
    crashed = nb.run(stand_in_agent(["x = 1"], crash=True))
    nb.wait_idle(crashed)
    assert "the agent stopped by itself" in outputs_text(crashed)
    poll(lambda: crashed.locator(CARD).count() == 0, timeout=20)


STEPS = (
    "from glm_magic.ipython.bridge_agent import agent_bridge\n"
    "ab = agent_bridge(get_ipython())\n"
    "html = ('<b id=\"glm-bold\">north 120</b>'\n"
    '        \'<img id="glm-canary" src=x onerror="window.__glm_step_pwned=1">\'\n'
    "        '<script>window.__glm_step_script=1</script>')\n"
    "ab.insert_step('totals = {\"north\": 120}\\nprint(totals)',\n"
    "    [{'output_type': 'stream', 'name': 'stdout', 'text': \"{'north': 120}\\n\"},\n"
    "     {'output_type': 'display_data', 'metadata': {},\n"
    "      'data': {'text/html': html, 'text/plain': 'north 120'}}], 41)\n"
    "ab.insert_step('1/0', [{'output_type': 'error', 'ename': 'ZeroDivisionError',\n"
    "    'evalue': 'division by zero', 'traceback': ['ZeroDivisionError: division by zero']}],\n"
    "    42)\n"
    "ab.insert_step('The **total** is 120.', [], None, cell_type='markdown')\n"
    "print('inserted')"
)


def test_steps_become_cells_below_with_outputs_rendered_untrusted(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = bridged(page, server, "steps.ipynb")
    nb.wait_idle(nb.run("after_the_agent = 1"))
    texts = sources(nb)
    agent_at = texts.index("after_the_agent = 1")
    # The agent's cell goes above the cell that follows it, as in a real analysis.
    nb.cell(agent_at).locator(".cm-content").click()
    page.keyboard.press("Escape")
    page.keyboard.press("a")
    poll(lambda: nb.cells().count() == len(texts) + 1, timeout=10)
    nb.set_cell(agent_at, STEPS)
    nb.run_cell(agent_at)
    agent = nb.cell(agent_at)
    nb.wait_idle(agent)
    assert "inserted" in outputs_text(agent), outputs_text(agent)
    poll(lambda: len(sources(nb)) == len(texts) + 4, timeout=20)
    texts = sources(nb)
    first, second, third = (nb.cell(agent_at + k) for k in (1, 2, 3))
    assert texts[agent_at + 1].startswith("totals = {") and texts[agent_at + 2] == "1/0"
    assert texts[agent_at + 4] == "after_the_agent = 1", texts
    assert "[41]" in first.locator(".jp-InputArea-prompt").inner_text()
    assert "[42]" in second.locator(".jp-InputArea-prompt").inner_text()
    assert "{'north': 120}" in outputs_text(first)
    assert "ZeroDivisionError" in outputs_text(second)
    assert "jp-MarkdownCell" in (third.get_attribute("class") or "")
    # HTML output goes through JupyterLab's renderers, untrusted: markup stays, code does not.
    first.locator("#glm-bold, b").first.wait_for(timeout=10_000)
    img = first.locator(f"{OUTPUT} img")
    assert all(i.get_attribute("onerror") is None for i in img.all()), "sanitised"
    assert first.locator(f"{OUTPUT} script").count() == 0
    page.wait_for_timeout(1000)
    assert page.evaluate("window.__glm_step_pwned || 0") == 0
    assert page.evaluate("window.__glm_step_script || 0") == 0
    nb.shot("agent-step-cells")


def test_malformed_agent_messages_are_refused_and_change_nothing(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    warnings: list[str] = []
    page.on(
        "console",
        lambda m: warnings.append(m.text) if "glm-magic bridge" in m.text else None,
    )
    nb = bridged(page, server, "hostileagent.ipynb")
    before = sources(nb)
    stream = {"output_type": "stream", "name": "stdout", "text": "x"}
    insert = {"v": 1, "op": "insert", "id": "i", "after": "@active", "provenance": {}}
    bad = [
        {"v": 1, "op": "approve", "id": "a", "cell_id": None, "step": "1", "code": "x",
         "prompt": "p"},
        {"v": 1, "op": "approve", "id": "a", "step": 1, "code": "x", "prompt": "p"},
        {"v": 1, "op": "approve_done", "id": "a", "answer": "yes"},
        {**insert, "cells": [{"cell_type": "code", "source": "x", "key": 5}]},
        {**insert, "cells": [{"cell_type": "code", "source": "x", "execution_count": -1}]},
        {**insert, "cells": [{"cell_type": "markdown", "source": "x", "outputs": [stream]}]},
        {**insert, "cells": [{"cell_type": "code", "source": "x",
                              "outputs": [{**stream, "name": "stdin"}]}]},
        {**insert, "cells": [{"cell_type": "code", "source": "x",
                              "outputs": [{"output_type": "display_data",
                                           "data": {"text/html": 7}}]}]},
    ]  # fmt: skip
    cell = nb.run(
        "import glm_magic.ipython.bridge as b\n"
        "comm = b.get(get_ipython()).comm\n"
        f"for m in {bad!r}:\n"
        "    comm.send(m)\n"
        "print('sent')"
    )
    nb.wait_idle(cell)
    poll(lambda: len(warnings) >= len(bad), timeout=20)
    assert len(warnings) == len(bad), warnings
    assert all("refused a message" in w for w in warnings), warnings
    assert page.locator(CARD).count() == 0
    texts = sources(nb)
    assert texts[: len(before) - 1] == before[:-1] and len(texts) == len(before) + 1, texts


def test_a_step_after_deleted_steps_goes_where_they_were(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = bridged(page, server, "deleted.ipynb")
    gate = server.root / "go-deleted"
    agent = nb.run(
        "import os, time\n"
        "from glm_magic.ipython.bridge_agent import agent_bridge\n"
        "ab = agent_bridge(get_ipython())\n"
        "ab.insert_step('step_one = 1', [], 1)\n"
        "ab.insert_step('step_two = 2', [], 2)\n"
        f"while not os.path.exists({gate.name!r}):\n"
        "    time.sleep(0.05)\n"
        "ab.insert_step('step_three = 3', [], 3)\n"
        "print('inserted')"
    )
    poll(lambda: "step_two = 2" in sources(nb), timeout=30)
    # The user deletes both earlier steps while the agent works: the next one still
    # goes directly below the agent's cell, where they were.
    for text in ("step_two = 2", "step_one = 1"):
        select_cell(nb, sources(nb).index(text))
        page.keyboard.press("d")
        page.keyboard.press("d")
        poll(lambda text=text: text not in sources(nb), timeout=10)
    gate.write_text("")
    nb.wait_idle(agent)
    poll(lambda: "step_three = 3" in sources(nb), timeout=20)
    texts = sources(nb)
    at = next(i for i, t in enumerate(texts) if t.startswith("import os, time"))
    assert texts[at + 1] == "step_three = 3", texts
