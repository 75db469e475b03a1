"""Browser settle time: how long JupyterLab takes to show a streamed reply's final text.

Needs Playwright (``pip install playwright jupyterlab``; never ``playwright
install``) and ``/usr/bin/chromium`` (``apt-get install chromium``); without them it
prints ``skipped: browser tests not set up`` and measures nothing.

Steps (see ``/work/shared/TESTING.md`` for the flags and pitfalls):

1. start the bundled endpoint, and JupyterLab on a free loopback port with a token,
   scratch config/data/runtime dirs and ``GLM_BASE_URL`` pointing at the endpoint;
2. open a prepared notebook by URL in headless Chromium and run a probe cell
   (``%load_ext glm_magic`` + ``print``) until it prints, since a cell run before
   the kernel connection is open is silently dropped;
3. per repetition, run a ``%%glm`` cell streaming 2,000 tokens at 1 ms/token, timing
   from the Shift+Enter until the cell's output shows the final update (the footer
   with ``2,000 out`` and no ``streaming`` status), polled every animation frame;
4. read each reply's own ``elapsed`` (the generation time) from the kernel.

Reported: settle time, generation time, their ratio and the lag between them
(the design notes quote 4-6 s to settle with per-token updates vs ~2.5 s coalesced).

Run: ``.venv/bin/python benchmarks/bench_browser.py [--reps 3]``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

# The browser tests' own JupyterLab launcher and Chromium flags: one copy of the pitfalls.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import (
    Table,
    endpoint,
    median,
    progress,
    ratio,
    secs,
)

from tests.browser.jupyter import CHROMIUM, CHROMIUM_ARGS, jupyter_server

TOKENS = 2000
MODEL = f"glm-4.7+tokens={TOKENS}+delay=0.001"
FINAL_MARK = f"{TOKENS:,} out"  # in the footer of the final update only

#: True once the output of cell ``index`` shows the final update.
SETTLED_JS = """
([index, mark]) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const out = cell && cell.querySelector('.jp-OutputArea-output');
  if (!out) return false;
  const text = out.innerText;
  return text.includes(mark) && !text.includes('streaming');
}
"""

#: The text of cell ``index``'s output area, or ''.
OUTPUT_JS = """
(index) => {
  const cell = document.querySelectorAll('.jp-Notebook .jp-Cell')[index];
  const out = cell && cell.querySelector('.jp-OutputArea');
  return out ? out.innerText : '';
}
"""


def output_has(text: str) -> str:
    """JS: true once the output of the cell passed as the argument contains ``text``."""
    return f"(i) => ({OUTPUT_JS.strip()})(i).includes({json.dumps(text)})"


def unavailable() -> str:
    """What is missing for this benchmark ('' when it can run)."""
    missing = [name for name in ("playwright", "jupyterlab") if not importlib.util.find_spec(name)]
    if not Path(CHROMIUM).exists():
        missing.append(CHROMIUM)
    return ", ".join(missing)


def write_notebook(path: Path, reps: int) -> None:
    """Cell 0: the probe; cells 1..reps: one ``%%glm`` each; last: print the timings."""
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    # Without a kernelspec JupyterLab opens a "Select Kernel" dialog first.
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells.append(v4.new_code_cell("%load_ext glm_magic\nprint('ready')"))
    for k in range(reps):
        nb.cells.append(
            v4.new_code_cell(f"%%glm --new -o _bench_{k} -m {MODEL}\nStream the reply, run {k}")
        )
    names = ", ".join(f"_bench_{k}" for k in range(reps))
    nb.cells.append(
        v4.new_code_cell(f"import json\nprint(json.dumps([r.elapsed for r in ({names},)]))")
    )
    nbformat.write(nb, str(path))


def run_cell(page: Any, index: int) -> None:
    """Focus cell ``index``'s editor and run it (Shift+Enter)."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count():  # a kernel or announcement prompt: take its default
        progress(f"browser: accepting dialog {dialog.first.inner_text()[:80]!r}")
        dialog.locator(".jp-mod-accept").first.click()
    page.locator(".jp-Notebook .jp-Cell .cm-content").nth(index).click()
    page.keyboard.press("Shift+Enter")


def wait_ready(page: Any, timeout: float = 90) -> None:
    """Run the probe cell until it prints (runs before the kernel is connected are lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_cell(page, 0)
        with contextlib.suppress(Exception):
            page.wait_for_function(output_has("ready"), arg=0, timeout=4000)
            return
    raise TimeoutError("the kernel never ran the probe cell")


def measure(url: str, reps: int) -> tuple[list[float], list[float]]:
    """Settle times (browser) and generation times (the replies' own elapsed)."""
    from playwright.sync_api import sync_playwright

    settles: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
            progress("browser: waiting for the kernel")
            wait_ready(page)
            for k in range(reps):
                progress(f"browser: run {k + 1}/{reps}")
                index = k + 1
                t0 = time.perf_counter()
                run_cell(page, index)
                page.wait_for_function(
                    SETTLED_JS, arg=[index, FINAL_MARK], polling="raf", timeout=180_000
                )
                settles.append(time.perf_counter() - t0)
            last = reps + 1
            run_cell(page, last)
            page.wait_for_function(output_has("]"), arg=last, timeout=30_000)
            printed = str(page.evaluate(OUTPUT_JS, last)).strip()
            generations = [float(x) for x in json.loads(printed[printed.index("[") :])]
        finally:
            browser.close()
    return settles, generations


def run(argv: list[str] | None = None) -> list[Table]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="streamed replies to time")
    args = parser.parse_args(argv)

    table = Table(
        f"Browser settle time: {TOKENS:,} tokens at 1 ms/token in JupyterLab (headless Chromium)",
        ["measure", "median", "vs generation"],
    )
    missing = unavailable()
    if missing:
        message = f"skipped: browser tests not set up (missing: {missing})"
        print(message)
        table.note(message)
        return [table]

    with endpoint() as base_url, jupyter_server("lab", {"GLM_BASE_URL": base_url}) as server:
        write_notebook(server.root / "bench.ipynb", args.reps)
        settles, generations = measure(server.notebook_url("bench.ipynb"), args.reps)

    settle, generation = median(settles), median(generations)
    table.add("generation (reply.elapsed in the kernel)", secs(generation), "1.00x")
    table.add("settle (Shift+Enter -> final text shown)", secs(settle), ratio(settle, generation))
    table.add("lag (settle - generation)", secs(settle - generation), "")
    table.note(f"{args.reps} runs; settle polled every animation frame")
    table.show()
    return [table]


def main() -> int:
    run(sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
