"""The notebook agent's own time per step: from a tool call received to the next request.

A scripted 10-step task runs through the real loop (``glm_magic.core.agent.run_agent``)
against the bundled endpoint in its own process, over real HTTP on loopback, with the
kernel's real tools (``NotebookTools`` + ``KernelActions`` on an in-process IPython
shell): reading tools (summary, variables, describe, read a cell) and ``run_python``
steps, all approved at once by an approver that answers ``run``.

Per step: the time from the end of the model turn that asked for the call (its stream
finished) to the start of the next request, **less** the time inside the user's code
(``KernelActions.run``) and inside the approver. That is parsing, dispatch, the reading
tools, masking, cutting, the view, and building the next request.

Baseline, measured in the same run: one raw ``httpx`` streamed request of a short reply to
the same endpoint (what a turn costs at least). Goal (issue 10): at most 20 ms per step at
the median.

Run: ``.venv/bin/python benchmarks/bench_agent.py [--reps 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from _common import Table, endpoint, median, ms, progress, ratio, verdict

STEPS = 10
GOAL = 0.020


def _script() -> str:
    calls: list[dict[str, Any]] = [
        {"name": "notebook_summary", "arguments": {}},
        {"name": "list_variables", "arguments": {}},
        {"name": "describe_variable", "arguments": {"name": "sales"}},
        {"name": "run_python", "arguments": {"code": "total = sum(r['units'] for r in sales)"}},
        {"name": "read_cell", "arguments": {"cell": 1}},
        {"name": "run_python", "arguments": {"code": "print(total)"}},
        {"name": "describe_variable", "arguments": {"name": "total"}},
        {"name": "list_variables", "arguments": {}},
        {
            "name": "run_python",
            "arguments": {"code": "best = max(sales, key=lambda r: r['units'])"},
        },
        {"name": "describe_variable", "arguments": {"name": "best"}},
    ]
    turns: list[Any] = [{"text": "", "calls": [call]} for call in calls[:STEPS]]
    turns.append("Done.")
    return "agent-script: " + json.dumps(turns)


class _Timing:
    """Marks: when each turn's stream ended and the next began; time in code and approval."""

    def __init__(self) -> None:
        self.turn_end: list[float] = []
        self.turn_start: list[float] = []
        self.excluded: list[float] = []  # per step: user code + approval

    def gaps(self) -> list[float]:
        gaps = []
        for i, end in enumerate(self.turn_end[:-1]):
            gaps.append(self.turn_start[i + 1] - end - self.excluded[i])
        return gaps


class _Renderer:
    def __init__(self, timing: _Timing) -> None:
        self.timing = timing

    def start(self) -> None:
        self.timing.turn_start.append(time.perf_counter())

    def progress(self, builder: Any) -> None:
        pass

    def tick(self) -> None:
        pass

    def finish(self, reply: Any) -> None:
        self.timing.turn_end.append(time.perf_counter())
        self.timing.excluded.append(0.0)


class _View:
    def __init__(self, timing: _Timing) -> None:
        self.timing = timing

    def turn(self) -> _Renderer:
        return _Renderer(self.timing)

    def calling(self, step: int, name: str, arguments: Any) -> None:
        pass

    def done(self, step: int, result: Any) -> None:
        pass

    def note(self, text: str) -> None:
        pass


class _Approver:
    def __init__(self, timing: _Timing) -> None:
        self.timing = timing

    def ask(self, step: int, name: str, arguments: Any) -> str:
        t0 = time.perf_counter()
        decision = "run"
        self.timing.excluded[-1] += time.perf_counter() - t0
        return decision


def agent_steps(base_url: str, reps: int) -> tuple[list[float], int]:
    """Per-step agent time over ``reps`` tasks, and the number of steps each took."""
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from glm_magic.config import resolve_settings
    from glm_magic.core.agent import AGENT_SYSTEM, Limits, run_agent
    from glm_magic.core.agent_tools import NotebookTools
    from glm_magic.core.prompt_masking import clean_text
    from glm_magic.core.session import Defaults, Session
    from glm_magic.ipython.agent import KernelActions

    shell = InteractiveShell.instance()
    shell.run_cell(
        "import random\nrng = random.Random(7)\n"
        "sales = [{'region': r, 'month': m, 'units': rng.randint(1, 40)} "
        "for m in range(1, 7) for r in ('north', 'south', 'east', 'west')]",
        store_history=True,
    )
    settings = resolve_settings(base_url=base_url, model="glm-4.7", api_key_env="GLM_BENCH_NO_KEY")
    session = Session(Defaults(), shell=shell)
    gaps: list[float] = []
    steps = 0
    for rep in range(reps + 1):  # the first task warms up (imports, connection)
        timing = _Timing()
        actions = KernelActions(shell, None, settings.model, settings.redactor())
        inner = actions.run

        def timed_run(code: str, inner: Any = inner, timing: _Timing = timing) -> str:
            t0 = time.perf_counter()
            try:
                with capture_output():  # the in-process shell would print to this terminal
                    return str(inner(code))
            finally:
                timing.excluded[-1] += time.perf_counter() - t0

        actions.run = timed_run  # type: ignore[method-assign]
        messages = [
            {"role": "system", "content": AGENT_SYSTEM},
            {"role": "user", "content": _script()},
        ]
        reply = run_agent(
            session,
            messages,
            settings,
            NotebookTools(shell, actions),
            _Approver(timing),
            _View(timing),
            Limits(max_steps=STEPS, budget_usd=None, approve_all=False),
            clean=lambda text: clean_text(text, settings, mask=True)[0],
        )
        if rep:
            gaps.extend(timing.gaps())
            steps = len(reply.steps)
        progress(f"agent: task {rep + 1}/{reps + 1}, {len(reply.steps)} steps")
    session.close()
    return gaps, steps


def raw_request(base_url: str, reps: int) -> list[float]:
    """One raw httpx streamed request of a short reply, ``reps`` times (after a warm-up)."""
    import httpx

    body = {
        "model": "glm-4.7+tokens=5",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    times = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for i in range(reps + 1):
            t0 = time.perf_counter()
            with client.stream("POST", "/chat/completions", json=body) as response:
                for _ in response.iter_lines():
                    pass
            if i:
                times.append(time.perf_counter() - t0)
    return times


def run(argv: list[str] | None = None) -> list[Table]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="tasks of 10 steps to time")
    args = parser.parse_args(argv)
    os.environ.setdefault("GLM_MAGIC_CACHE", "off")
    with endpoint() as base_url:
        progress("agent: raw httpx baseline")
        baseline = median(raw_request(base_url, args.reps * STEPS))
        gaps, steps = agent_steps(base_url, args.reps)
    step = median(gaps)
    table = Table(
        f"The agent's own time per step ({args.reps} tasks of {steps} steps; medians; the "
        "user's code and approval excluded)",
        ["case", "samples", "median", "vs one raw request", "goal", "status"],
    )
    table.add(
        "raw httpx streamed request (baseline)", args.reps * STEPS, ms(baseline), "1.00x", "", ""
    )
    table.add(
        "agent: tool call received -> next request",
        len(gaps),
        ms(step),
        ratio(step, baseline),
        "<= 20 ms",
        verdict(step <= GOAL and steps == STEPS),
    )
    table.note(f"slowest step: {ms(max(gaps)) if gaps else '?'}")
    return [table]


if __name__ == "__main__":
    for t in run():
        t.show()
