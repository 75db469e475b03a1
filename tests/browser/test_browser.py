"""What a person sees in JupyterLab 4 and Notebook 7 (Chromium driven by Playwright).

Each check saves screenshots to ``test-artifacts/<frontend>-<name>.png``; with
``GLM_UPDATE_DOCS=1`` the panel test also refreshes ``docs/panel.png`` (the
README's picture) from JupyterLab.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from glm_magic.testing import EndpointServer

from .jupyter import OUTPUT, JupyterServer, NotebookPage

SLOW = "glm-4.7+tokens=300+delay=0.02"  # 6 s of streaming
LONG = "glm-4.7+tokens=2000+delay=0.02"  # long enough to stop half-way
DOCS = Path(__file__).resolve().parents[2] / "docs"


def poll(predicate: Any, timeout: float = 30, every: float = 0.05) -> Any:
    """Call ``predicate`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout} s")
        time.sleep(every)


def open_notebook(page: Any, server: JupyterServer, name: str) -> NotebookPage:
    server.write_notebook(name)
    nb = NotebookPage(page, server, name).open()
    nb.run("%load_ext glm_magic")
    return nb


def test_glm_cell_streams_and_outputs_survive_reload(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = open_notebook(page, server, "stream.ipynb")
    cell = nb.run(f"%%glm -m {SLOW}\nSay hello to the notebook")
    out = cell.locator(OUTPUT).last

    def streaming_text() -> str | None:
        text = out.inner_text() if out.count() else ""
        return text if "streaming" in text and len(text) > 80 else None

    partial = poll(streaming_text, timeout=30)
    assert "[*]" in cell.locator(".jp-InputArea-prompt").inner_text(), "the cell is still running"
    nb.shot("glm-cell-streaming", cell)
    nb.wait_idle(cell, timeout=60)
    final = out.inner_text()
    assert "streaming" not in final
    assert len(final) > len(partial), "more text arrived after the intermediate view"
    footer = final.strip().splitlines()[-1]
    assert "glm-4.7" in footer and "300 out" in footer and re.search(r"\d+\.\d s", footer), footer
    nb.shot("glm-cell-final", cell)

    nb.save()
    saved = server.read_notebook("stream.ipynb")
    glm_cells = [c for c in saved["cells"] if "".join(c["source"]).startswith("%%glm")]
    assert glm_cells and "300 out" in str(glm_cells[0]["outputs"]), "the output is in the file"
    page.reload()
    nb.cells().first.wait_for()
    reloaded = poll(
        lambda: [o for o in nb.page.locator(OUTPUT).all_inner_texts() if "300 out" in o],
        timeout=30,
    )
    assert "Lor" in reloaded[0], "the reply text is back after the reload"
    nb.shot("glm-cell-after-reload")


@pytest.mark.no_bridge  # Insert copies without the bridge (test_bridge.py has it on)
def test_panel_streams_stops_and_copies(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = open_notebook(page, server, "panel.ipynb")
    cell = nb.run(f"%glm panel -m {LONG}")
    panel = cell.locator(".glm-panel")
    panel.wait_for()
    nb.wait_idle(cell)  # the panel can show before its cell's run has ended
    prompt = panel.locator("textarea")

    # Typing is real key presses: single-letter notebook shortcuts (a, b, d d, m)
    # must not act on cells. Shift+Enter sends and does not run the cell again.
    count_before = len(endpoint.requests)
    cells_before = nb.cells().count()
    run_count = cell.locator(".jp-InputArea-prompt").inner_text()
    prompt.click()
    page.keyboard.type("Tell me a long story, add a bad mood")
    assert prompt.input_value() == "Tell me a long story, add a bad mood"
    assert nb.cells().count() == cells_before
    page.keyboard.press("Shift+Enter")
    reply = panel.locator(".glm-reply").last
    poll(lambda: "streaming" in reply.inner_text() and len(reply.inner_text()) > 200)
    assert prompt.input_value() == "", "the prompt box is cleared once sent"
    assert panel.locator(".glm-user").last.inner_text() == "Tell me a long story, add a bad mood"
    assert cell.locator(".jp-InputArea-prompt").inner_text() == run_count, "not run again"
    assert nb.cells().count() == cells_before
    nb.shot("panel-streaming", panel)

    panel.locator("button.glm-stop").click()
    poll(lambda: "Stopped" in reply.inner_text(), timeout=10)
    stopped_text = reply.inner_text()
    # Send is enabled again once the reply's thread has ended: nothing can arrive after that.
    poll(lambda: not panel.locator("button.glm-send").is_disabled(), timeout=10)
    assert reply.inner_text() == stopped_text, "nothing arrives after Stop"
    assert "Lor" in stopped_text, "the partial text stays"
    chat = [
        i
        for i, r in enumerate(endpoint.requests)
        if i >= count_before and r.path.endswith("/chat/completions")
    ]
    assert chat, "the panel sent a request"
    assert endpoint.wait_for_outcome(chat[-1], 5) == "client_closed"
    poll(lambda: not panel.locator("button.glm-send").is_disabled(), timeout=5)
    nb.shot("panel-stopped", panel)

    # A reply with code: Copy puts the block on the clipboard, Insert says what it did.
    panel.locator(".glm-model select").select_option("glm-4.7")
    prompt.click()
    page.keyboard.insert_text("Write a function for Fibonacci numbers")
    panel.locator("button.glm-send").click()
    code_block = panel.locator(".glm-reply").last.locator(".glm-code")
    code_block.locator("button.glm-copy").wait_for(timeout=30_000)
    cells_before = nb.cells().count()
    code_block.locator("button.glm-copy").click()
    poll(lambda: "Copied" in code_block.inner_text(), timeout=5)
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "def fibonacci(n: int)" in copied
    page.evaluate("navigator.clipboard.writeText('')")
    code_block.locator("button.glm-insert").click()
    note = code_block.locator(".glm-note")
    poll(lambda: "not inserted" in note.inner_text(), timeout=5)
    assert "_glm_panel.replies[1].code" in note.inner_text()
    assert page.evaluate("navigator.clipboard.readText()") == copied
    assert nb.cells().count() == cells_before, "Insert never places a cell"
    # The kernel's copy of the reply holds exactly what was copied.
    check = nb.run("import json; print(json.dumps(_glm_panel.replies[1].code_blocks[0].code))")
    check.locator(OUTPUT).first.wait_for()
    assert json.loads(check.locator(OUTPUT).first.inner_text()) == copied
    panel.scroll_into_view_if_needed()
    nb.shot("panel-code-copied", panel)

    # New chat clears the transcript; thinking on shows the reasoning collapsed;
    # picking a context shows its size and cost before sending.
    panel.locator("button.glm-new").click()
    poll(lambda: panel.locator(".glm-reply").count() == 0, timeout=5)
    assert "0 turns" in panel.locator(".glm-header").inner_text()
    panel.locator(".glm-thinking-toggle button", has_text="on").click()
    panel.locator(".glm-context select").select_option(label="last N cells")
    estimate = panel.locator(".glm-estimate")
    poll(lambda: "last:3" in estimate.inner_text(), timeout=5)
    assert re.search(r"~\d+ tokens · (<\$0\.0001|~\$0\.\d{4})", estimate.inner_text())
    prompt.click()
    page.keyboard.insert_text("Write a function for Fibonacci numbers")
    panel.locator("button.glm-send").click()
    last = panel.locator(".glm-reply").last
    last.locator("button.glm-copy").wait_for(timeout=30_000)
    details = last.locator("details")
    assert details.count() == 1 and details.get_attribute("open") is None, "thinking is collapsed"
    assert "Thinking (" in details.inner_text()
    assert "context: last:3" in panel.locator(".glm-user").last.locator("..").inner_text()
    assert "Session: 3 replies" in panel.locator(".glm-totals").inner_text()
    nb.shot("panel-thinking-context", panel)
    if server.app == "lab":
        # The README's picture; copied into docs/ only when asked, so a test run
        # leaves the work tree clean.
        page.set_viewport_size({"width": 1100, "height": 1400})
        panel.scroll_into_view_if_needed()
        shot = nb.shot("readme-panel", panel)
        if os.environ.get("GLM_UPDATE_DOCS"):
            DOCS.mkdir(exist_ok=True)
            shutil.copyfile(shot, DOCS / "panel.png")


def test_failure_buttons_explain_under_the_traceback(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = open_notebook(page, server, "buttons.ipynb")
    # A paced model, so the explanation visibly streams (about 90 pieces, 2 s).
    nb.run("%config GlmMagics.model = 'glm-4.7+delay=0.025'\n%glm buttons on")
    nb.run("prices = {'apple': 1.5}\ntotal = 0")
    cell = nb.run("total = total + price['apple']")
    buttons = cell.locator(".glm-failure-buttons")
    buttons.wait_for()
    outputs = cell.locator(OUTPUT)
    texts = outputs.all_inner_texts()
    assert "NameError" in texts[0] and "Traceback" in texts[0], texts
    assert outputs.nth(len(texts) - 1).locator(".glm-failure-buttons").count() == 1, (
        "the buttons come after the traceback, in the failing cell's output"
    )
    nb.shot("buttons-under-traceback", cell)

    buttons.locator("button.glm-explain").click()
    reply = buttons.locator(".glm-reply")
    poll(lambda: "streaming" in reply.inner_text() and "Root cause" in reply.inner_text())
    assert "Next step" not in reply.inner_text(), "part of the text, before the end"
    assert buttons.locator("button.glm-stop").is_visible()
    nb.shot("buttons-explaining", cell)
    poll(lambda: "Next step" in reply.inner_text() and " out" in reply.inner_text(), timeout=30)
    poll(lambda: not buttons.locator("button.glm-stop").is_visible(), timeout=5)
    assert "NameError" in reply.inner_text()
    assert "Traceback" in outputs.first.inner_text(), "the traceback is unchanged"
    nb.shot("buttons-explained", cell)

    buttons.locator("button.glm-fix").click()
    code = buttons.locator(".glm-code")
    code.locator("button.glm-copy").wait_for(timeout=30_000)
    assert "prices['apple']" in code.inner_text()
    nb.shot("buttons-fixed", cell)


def test_inserted_cells_errors_and_interrupt_as_a_person_sees_them(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = open_notebook(page, server, "insert.ipynb")
    nb.run("%config GlmMagics.max_retries = 0")
    nb.wait_idle(nb.run("total = 3"))
    failing = nb.run("print(totl + 1)")
    nb.wait_idle(failing)
    # %glm fix: the corrected cell appears directly below, once the fix cell has finished.
    fix = nb.run("%glm fix")
    nb.wait_idle(fix)
    texts = [c.locator(".cm-content").inner_text() for c in nb.cells().all()]
    at = next(i for i, t in enumerate(texts) if t.strip() == "%glm fix")
    inserted = texts[at + 1]
    assert inserted.startswith("# generated by glm-5.1 via glm-magic"), texts
    assert "print(total + 1)" in inserted
    nb.shot("fix-inserted-below", nb.cell(at + 1))
    # An API error is one line, no traceback.
    err = nb.run("%%glm -m glm-4.7+fault=429-1302\nhello")
    nb.wait_idle(err)
    out = err.locator(OUTPUT).last.inner_text()
    assert out.startswith("Rate limited:") and "Traceback" not in out, out
    assert len(out.strip().splitlines()) == 1
    everything = "\n".join(err.locator(OUTPUT).all_inner_texts())
    assert everything.count("Rate limit reached") == 1, "the error shows once"
    assert "working" not in everything, "the placeholder is gone"
    nb.shot("error-one-line", err)
    # Interrupting a streaming reply: the partial text stays, with one "Stopped" line.
    cell = nb.run(f"%%glm -m {LONG}\nwrite a lot")
    poll(lambda: "streaming" in (cell.locator(OUTPUT).first.inner_text() or ""), timeout=30)
    kernel = server.api("GET", "/api/kernels")[0]["id"]
    server.api("POST", f"/api/kernels/{kernel}/interrupt")
    nb.wait_idle(cell)
    shown = cell.locator(OUTPUT).all_inner_texts()
    assert any("Lor" in t for t in shown), shown
    assert shown[-1].startswith("Stopped:"), shown
    assert "\n".join(shown).count("Stopped:") == 1, "the stop note shows once"
    assert "incomplete" in shown[0], "the footer says the reply is partial"
    nb.shot("interrupted", cell)
