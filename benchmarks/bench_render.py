"""Rendering replies as HTML: markdown-it-py (today) against the hand-written renderer it replaced.

Three measures, all in one run:

1. **A 2,000-token reply with code blocks** (prose, lists, a table and four
   fenced blocks): ``glm_magic.htmlrender.render_html`` against the old
   renderer, loaded from git history (commit ``OLD_COMMIT``'s
   ``glm_magic/panel_html.py`` and ``markdown.py``) into a scratch package.
2. **Pathological input** (deep quotes, unclosed links, emphasis runs,
   brackets) at three sizes: the time per character should stay flat (linear),
   and nothing raises. The old renderer is shown where it survives.
3. **The streaming panel's share of time spent rendering**: a 2,000-token
   reply streamed from the bundled endpoint at 10 ms a token into the panel's
   :class:`~glm_magic.widgets.reply.ReplyView` (real widgets, no kernel), with
   rendering timed inside the view. Goal: at most 10 % of the reply's wall time.

Run: ``.venv/bin/python benchmarks/bench_render.py``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import Table, median, ms, progress, ratio, scratch_dir, verdict

ROOT = Path(__file__).resolve().parents[1]
OLD_COMMIT = "56b78ad"  # the last commit with the hand-written renderer
RENDER_SHARE_GOAL = 0.10


def reply_2000_tokens() -> str:
    """About 2,000 tokens (8,000 characters) of a typical analysis answer."""
    block = (
        "```python\nimport pandas as pd\n\ndf = pd.read_csv('sales.csv')\n"
        "monthly = df.groupby('month')['revenue'].sum()\nprint(monthly.describe())\n```\n"
    )
    para = (
        "Revenue rose from $1.2M to $3.4M over the year, driven by **three regions** and a "
        "shift to `online` orders; see the [report](https://example.com/report) for details. "
    )
    parts = ["## Findings\n"]
    for _ in range(4):
        parts.append(para * 4 + "\n")
        parts.append("- first point with *emphasis*\n- second point\n  - nested detail\n")
        parts.append("| region | revenue |\n|---|--:|\n| north | 1.2 |\n| south | 3.4 |\n")
        parts.append(block)
    text = "\n".join(parts)
    while len(text) < 8000:
        text += "\n" + para
    return text[:8000]


def load_old_renderer() -> Callable[[str], str] | None:
    """The replaced renderer from git history, or None outside a git checkout."""

    def show(path: str) -> str | None:
        done = subprocess.run(
            ["git", "show", f"{OLD_COMMIT}:{path}"], cwd=ROOT, capture_output=True, text=True
        )
        return done.stdout if done.returncode == 0 else None

    html_src, md_src = show("glm_magic/panel_html.py"), show("glm_magic/markdown.py")
    if html_src is None or md_src is None:
        return None
    pkg = types.ModuleType("old_glm")
    pkg.__path__ = []
    sys.modules["old_glm"] = pkg
    for name, src in (("markdown", md_src), ("panel_html", html_src)):
        spec = importlib.util.spec_from_loader(f"old_glm.{name}", loader=None)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"old_glm.{name}"] = module
        exec(compile(src, f"{OLD_COMMIT}:{name}.py", "exec"), module.__dict__)
    return sys.modules["old_glm.panel_html"].render_markdown  # type: ignore[no-any-return]


def timed(fn: Callable[[str], str], text: str, reps: int) -> float | str:
    from glm_magic.markdown import tokens

    samples = []
    for _ in range(reps):
        tokens.cache_clear()  # measure parsing too, not the parse cache
        t0 = time.perf_counter()
        try:
            fn(text)
        except RecursionError:
            return "RecursionError"
        samples.append(time.perf_counter() - t0)
    return median(samples)


def show(value: float | str) -> str:
    return value if isinstance(value, str) else ms(value)


def typical(new: Callable[[str], str], old: Callable[[str], str] | None) -> Table:
    text = reply_2000_tokens()
    table = Table(
        "Render a 2,000-token reply with 4 code blocks (HTML)",
        ["renderer", "median", "vs old"],
    )
    new(text)  # first call imports the parser and Pygments
    t_new = timed(new, text, 30)
    t_old = timed(old, text, 30) if old else "n/a"
    table.add(
        "markdown-it-py",
        show(t_new),
        ratio(t_new, t_old) if isinstance(t_new, float) and isinstance(t_old, float) else "-",
    )
    table.add(f"hand-written ({OLD_COMMIT})", show(t_old), "1.00x" if old else "-")
    if old is None:
        table.note("the old renderer is loaded from git history; not a git checkout here")
    return table


PATHOLOGICAL = {
    "nested quotes": ">",
    "unclosed links": "[a](",
    "emphasis runs": "*a ",
    "brackets": "[",
    "underscores": "a_b_ ",
    "image openers": "![x](",
}


def pathological(new: Callable[[str], str], old: Callable[[str], str] | None) -> Table:
    sizes = (10_000, 40_000, 160_000)
    table = Table(
        "Pathological input: time per render (linear means time/char stays flat)",
        ["input", *[f"{n // 1000}K chars" for n in sizes], "us/char @160K", "old @40K"],
    )
    for label, unit in PATHOLOGICAL.items():
        progress(f"render: {label}")
        cells: list[str] = []
        per_char = 0.0
        for n in sizes:
            text = (unit * (n // len(unit) + 1))[:n]
            t = timed(new, text, 3)
            cells.append(show(t))
            if isinstance(t, float):
                per_char = t / n * 1e6
        old_t = timed(old, (unit * (40_000 // len(unit) + 1))[:40_000], 1) if old else "n/a"
        table.add(label, *cells, f"{per_char:.2f}", show(old_t))
    table.note("the parser's nesting limit (glm_magic.markdown.MAX_NESTING) bounds depth")
    return table


def streaming_share() -> Table:
    import glm_magic.widgets.reply as panel_reply
    from glm_magic.config import Settings
    from glm_magic.core.runner import BackgroundRun
    from glm_magic.testing import EndpointServer
    from glm_magic.widgets.reply import ReplyView

    table = Table(
        "Streaming panel: share of wall time spent rendering (2,000 tokens, 10 ms/token)",
        ["reply wall time", "rendering", "share", "updates", "goal <= 10%"],
    )
    spent = [0.0]
    original = panel_reply.reply_html

    def counted(**kwargs: Any) -> str:
        t0 = time.perf_counter()
        try:
            return original(**kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    panel_reply.reply_html = counted  # type: ignore[assignment]
    try:
        with EndpointServer() as server:
            from glm_magic.client.chat import ChatClient

            settings = Settings(base_url=server.base_url, model="glm-4.7+tokens=2000+delay=0.01")
            client = ChatClient(settings)
            view = ReplyView(settings.model)
            done: list[Any] = []
            t0 = time.perf_counter()
            run = BackgroundRun(
                client.stream([{"role": "user", "content": "write code please"}], settings),
                settings.model,
                view.progress,
                lambda reply, error: (view.finish(reply), done.append(reply)),
            ).start()
            run.thread.join(120)
            wall = time.perf_counter() - t0
    finally:
        panel_reply.reply_html = original  # type: ignore[assignment]
    share = spent[0] / wall if wall else 0.0
    table.add(
        ms(wall), ms(spent[0]), f"{share:.1%}", view.updates, verdict(share <= RENDER_SHARE_GOAL)
    )
    return table


def run(argv: list[str] | None = None) -> list[Table]:
    from glm_magic.htmlrender import render_html

    with scratch_dir("glm-bench-render-"):
        old = load_old_renderer()
    tables = [typical(render_html, old), pathological(render_html, old)]
    progress("render: streaming into the panel")
    tables.append(streaming_share())
    return tables


if __name__ == "__main__":
    for t in run(sys.argv[1:]):
        print(t.text() + "\n")
