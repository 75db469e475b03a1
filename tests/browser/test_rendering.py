"""What a reply may do to the page: nothing (JupyterLab 4 and Notebook 7, real Chromium).

Outputs of the running session are trusted, so JupyterLab renders their HTML
unsanitized; a reply carrying an ``onerror`` handler used to run script
there. These tests send hostile replies (answer and thinking) through the
bundled endpoint's ``echo:`` script and check that no payload sets its
global, also after the notebook is saved and reopened, while Markdown and
math still render. A control output in raw ``text/markdown`` proves the
payloads do fire when given the chance, so the check can fail.

The dollar tests check JupyterLab's math typesetting: amounts and the
``%glm models`` price table render as text (no MathJax element), real math
renders as math. With ``GLM_UPDATE_DOCS=1`` the models table screenshot
refreshes ``docs/models.png``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from glm_magic.testing import MODELS, EndpointServer

from .jupyter import CELL, OUTPUT, JupyterServer
from .test_browser import open_notebook, poll

DOCS = Path(__file__).resolve().parents[2] / "docs"
MATH = "mjx-container, .MathJax"

#: Each payload bumps window.__glm_pwned when it runs.
RUN = "window.__glm_pwned=(window.__glm_pwned||0)+1"
PAYLOADS = [
    f'<img src=x onerror="{RUN}">',
    f"<svg><image href=x onerror={RUN}></image></svg>",
    f"<details open ontoggle={RUN}><summary>t</summary>d</details>",
    f'<iframe srcdoc="<script>parent.{RUN.replace("window.", "")}</script>"></iframe>',
    f"<script>{RUN}</script>",
    f"[click me](javascript:{RUN})",
]
HOSTILE = "echo: **bold words** and `code` then " + " ".join(PAYLOADS)


def pwned(page: Any) -> Any:
    return page.evaluate("window.__glm_pwned || 0")


def glm_cell(nb: Any, body: str) -> Any:
    cell = nb.run(body)
    nb.wait_idle(cell, timeout=60)
    return cell


def test_hostile_replies_run_nothing_before_and_after_reopen(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = open_notebook(page, server, "hostile.ipynb")
    answer = glm_cell(nb, f"%%glm --new\n{HOSTILE}")
    thinking = glm_cell(nb, f"%%glm --new --think\n{HOSTILE}")
    for cell in (answer, thinking):
        out = cell.locator(OUTPUT).last
        assert out.locator("strong", has_text="bold words").count() >= 1, "Markdown still renders"
        assert "<img src=x onerror=" in out.inner_text(), "the payload shows as text"
        assert out.locator("img, iframe, svg image, script").count() == 0
        assert out.locator("a[href^='javascript']").count() == 0
    details = thinking.locator(OUTPUT).last.locator("details.glm-thinking")
    details.locator("summary").click()  # open the thinking: its payloads must not fire either
    assert "<svg><image" in details.inner_text()
    page.wait_for_timeout(1500)  # let an image error or a toggle event fire, if any could
    assert pwned(page) == 0
    nb.shot("hostile-replies")

    # The control: the same payloads as raw Markdown do fire in this page.
    control = nb.run(
        "from IPython.display import display\n"
        f"display({{'text/markdown': {PAYLOADS[0]!r}}}, raw=True)"
    )
    nb.wait_idle(control)
    poll(lambda: pwned(page) >= 1, timeout=15)
    nb.run("pass")  # clear the control below
    control.locator(".cm-content").click()
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    page.keyboard.press("d")

    nb.save()

    def saved_replies() -> list[dict[str, Any]]:
        saved = server.read_notebook("hostile.ipynb")
        if any("raw=True" in "".join(c["source"]) for c in saved["cells"]):
            return []  # the control cell is not deleted in the file yet
        outs = [o for c in saved["cells"] for o in c.get("outputs", [])]
        return [o for o in outs if "glm_magic" in o.get("metadata", {})]

    replies = poll(lambda: len(saved_replies()) == 2 and saved_replies(), timeout=20)
    assert all(set(o["data"]) == {"text/html", "text/plain"} for o in replies)

    page.reload()  # reopen: the saved outputs are trusted (signed) and render again
    page.locator(CELL).first.wait_for()
    poll(lambda: page.locator(f"{OUTPUT} strong", has_text="bold words").count() >= 2, timeout=30)
    page.wait_for_timeout(1500)
    assert pwned(page) == 0
    nb.shot("hostile-replies-reopened")


def test_dollars_stay_text_and_math_stays_math(
    page: Any, server: JupyterServer, endpoint: EndpointServer
) -> None:
    nb = open_notebook(page, server, "dollars.ipynb")
    amounts = glm_cell(nb, "%%glm --new\necho: revenue rose from $1.2M to $3.4M")
    one = glm_cell(nb, "%%glm --new\necho: it costs $5 today")
    math = glm_cell(nb, "%%glm --new\necho: the circle $x^2 + y^2 = r^2$ is round")
    poll(lambda: math.locator(OUTPUT).last.locator(MATH).count() >= 1, timeout=30)
    for cell, words in ((amounts, "from $1.2M to $3.4M"), (one, "it costs $5 today")):
        out = cell.locator(OUTPUT).last
        assert out.locator(MATH).count() == 0, "an amount became math"
        assert words in out.inner_text()
        assert "$0.0" in out.inner_text(), "the footer's cost shows as text"
    assert math.locator(OUTPUT).last.locator(MATH).count() == 1
    nb.shot("dollars-and-math")


def test_models_table_reads_as_a_table_with_a_hostile_id(page: Any, server: JupyterServer) -> None:
    hostile = f'glm-evil<img src=x onerror="{RUN}">$1'
    with EndpointServer(models=(*MODELS, hostile)) as own:
        own.start()
        nb = open_notebook(page, server, "models.ipynb")
        glm_cell(nb, f"%config GlmMagics.base_url = {own.base_url!r}")
        cell = glm_cell(nb, "%glm models")
        out = cell.locator(OUTPUT).last
        table = out.locator("table")
        table.wait_for()
        page.wait_for_timeout(1000)  # MathJax typesets after the render
        assert out.locator(MATH).count() == 0, "prices became math"
        rows = table.locator("tbody tr")
        assert rows.count() == len(MODELS) + 1
        assert "$ in / out per 1M" in table.locator("thead").inner_text()
        assert "$0.60 / $2.20" in table.inner_text()
        assert hostile in table.inner_text(), "the hostile id shows as text"
        assert out.locator("img").count() == 0 and pwned(page) == 0
        shot = nb.shot("models-table", out)
        if os.environ.get("GLM_UPDATE_DOCS") and server.app == "lab":
            shutil.copy(shot, DOCS / "models.png")
