"""Streaming overhead in a real kernel: ``%%glm`` against a raw httpx loop printing the stream.

One ipykernel, driven through ``jupyter_client`` like a frontend would. The bundled
endpoint (its own process) streams 2,000 pieces of 4 characters, once with no delay
(``-m glm-4.7+tokens=2000``) and once with 10 ms between pieces (``+delay=0.01``).
For each execute_request, timed from sending it until the kernel reports idle:

- total time;
- time to first visible text: the first ``display_data``/``update_display_data``
  whose ``text/plain`` holds reply text (``%%glm``), or the first ``stream``
  message (raw loop);
- the iopub output messages (everything but ``status`` and ``execute_input``) and
  their total size (``len(json.dumps(content))``).

The floor is the minimal loop a user could write in the same kernel
(``httpx.stream`` + ``iter_lines`` + ``print(delta, end='', flush=True)``; ipykernel
batches those prints itself). Runs alternate between the two, after one unmeasured
warm-up of each (imports, connection pool).

Goals: total time at most 1.25x the raw loop; first visible text within 0.2 s at
10 ms/token; iopub messages at most 1 + duration / 100 ms + 3.

Run: ``.venv/bin/python benchmarks/bench_kernel_stream.py [--reps 5] [--delay-reps 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from _common import (
    Table,
    child_env,
    endpoint,
    kib,
    median,
    progress,
    ratio,
    scratch_dir,
    secs,
    verdict,
)

TOKENS = 2000
#: The first piece of the endpoint's filler text (``scripts.filler_text``).
FIRST_WORD = "Lor"
NOT_OUTPUT = ("status", "execute_input")
DELAYED = "10 ms/token"
RAW = "raw httpx loop"
UNFLUSHED = "raw loop, print without flush"

GLM_CELL = "%%glm --new -m {model}\nStream the benchmark reply"

RAW_CELL = """\
import json as _json
import httpx as _httpx

with _httpx.stream(
    "POST",
    {url!r},
    json={{"model": {model!r}, "stream": True,
          "messages": [{{"role": "user", "content": "Stream the benchmark reply"}}]}},
    timeout=60,
) as _r:
    for _line in _r.iter_lines():
        if not _line.startswith("data: ") or _line == "data: [DONE]":
            continue
        for _choice in _json.loads(_line[6:]).get("choices") or []:
            _delta = (_choice.get("delta") or {{}}).get("content")
            if _delta:
                print(_delta, end="", flush={flush})
"""


@dataclass
class Run:
    """What one execute_request produced, with receive times relative to sending it."""

    total: float = 0.0
    first_text: float = float("nan")
    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    status: str = ""

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m["msg_type"] not in NOT_OUTPUT]

    @property
    def output_bytes(self) -> int:
        return sum(len(json.dumps(m["content"])) for m in self.outputs)

    def shown_text(self) -> str:
        """The reply text a frontend ends up showing."""
        stdout = "".join(
            m["content"]["text"]
            for m in self.outputs
            if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
        )
        shown = [m for m in self.outputs if m["msg_type"].endswith("display_data")]
        if shown:
            return str(shown[-1]["content"]["data"].get("text/plain", "")).rsplit("\n-- ", 1)[0]
        return stdout


class Kernel:
    """A python3 ipykernel in scratch Jupyter/IPython dirs, timed per execute_request."""

    def __init__(self, env: dict[str, str], workdir: str) -> None:
        from jupyter_client.manager import start_new_kernel

        env = dict(env)
        env["IPYTHONDIR"] = os.path.join(workdir, "ipython")
        env["JUPYTER_RUNTIME_DIR"] = os.path.join(workdir, "runtime")
        # The kernel's own stderr (its TCP warning, say) goes to a log, not the tables.
        self.log = open(os.path.join(workdir, "kernel.log"), "wb")  # noqa: SIM115
        self.km, self.kc = start_new_kernel(
            kernel_name="python3", startup_timeout=60, env=env, cwd=workdir, stderr=self.log
        )

    def execute(self, code: str, timeout: float = 120) -> Run:
        run = Run()
        t0 = time.perf_counter()
        msg_id = self.kc.execute(code, store_history=False, allow_stdin=False)
        deadline = t0 + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise TimeoutError(f"no idle after {timeout} s for {code[:40]!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=left)
            except queue.Empty:
                continue
            at = time.perf_counter() - t0
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                run.total = at
                break
            run.messages.append((at, msg))
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.perf_counter()))
            if reply["parent_header"].get("msg_id") == msg_id:
                run.status = str(reply["content"]["status"])
                return run

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        self.log.close()


def first_glm_text(run: Run) -> float:
    for at, m in run.messages:
        if m["msg_type"] in ("display_data", "update_display_data"):
            plain = str(m["content"].get("data", {}).get("text/plain", ""))
            if plain.startswith(FIRST_WORD):
                return at
    return float("nan")


def first_stream_text(run: Run) -> float:
    for at, m in run.messages:
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout":
            return at
    return float("nan")


def run(argv: list[str] | None = None) -> list[Table]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="runs per loop without delay")
    parser.add_argument(
        "--delay-reps", type=int, default=3, help="runs per loop at 10 ms/token (20 s each)"
    )
    args = parser.parse_args(argv)

    from glm_magic.testing.scripts import filler_text

    expected = filler_text(TOKENS)
    cases = [("no delay", "", args.reps), (DELAYED, "+delay=0.01", args.delay_reps)]
    cases = [c for c in cases if c[2] > 0]
    results: dict[tuple[str, str], list[Run]] = {}
    problems: list[str] = []
    with endpoint() as base_url, scratch_dir("glm-bench-kernel-") as tmp:
        progress("kernel: starting ipykernel")
        kernel = Kernel(child_env(base_url), str(tmp))
        try:
            warm = kernel.execute("%load_ext glm_magic")
            if warm.status != "ok":
                raise RuntimeError(f"%load_ext glm_magic failed: {warm.outputs}")
            url = base_url + "/chat/completions"
            kernel.execute(GLM_CELL.format(model="glm-4.7+tokens=20"))
            kernel.execute(RAW_CELL.format(url=url, model="glm-4.7+tokens=20", flush=True))
            for case, suffix, reps in cases:
                model = f"glm-4.7+tokens={TOKENS}{suffix}"
                cells = {
                    "%%glm": GLM_CELL.format(model=model),
                    RAW: RAW_CELL.format(url=url, model=model, flush=True),
                }
                if case != DELAYED:  # 20 s a run at 10 ms/token: only where it differs
                    cells[UNFLUSHED] = RAW_CELL.format(url=url, model=model, flush=False)
                for i in range(reps):
                    for loop, cell in cells.items():
                        progress(f"kernel: {case}, {loop}, run {i + 1}/{reps}")
                        done = kernel.execute(cell)
                        done.first_text = (
                            first_glm_text(done) if loop == "%%glm" else first_stream_text(done)
                        )
                        shown = done.shown_text()
                        if done.status != "ok" or shown.rstrip() != expected.rstrip():
                            problems.append(
                                f"{case}, {loop}, run {i + 1}: status {done.status}, showed "
                                f"{len(shown)} of {len(expected)} characters"
                            )
                        results.setdefault((case, loop), []).append(done)
        finally:
            kernel.shutdown()

    def med(case: str, loop: str, what: str) -> float:
        runs = results[(case, loop)]
        values = {
            "total": [r.total for r in runs],
            "first": [r.first_text for r in runs],
            "msgs": [float(len(r.outputs)) for r in runs],
            "bytes": [float(r.output_bytes) for r in runs],
        }[what]
        return median(values)

    table = Table(
        f"Streaming {TOKENS:,} tokens in a real kernel: %%glm vs the raw httpx loop "
        "(medians; times from execute_request to idle)",
        ["case", "loop", "runs", "total", "vs raw", "first text", "iopub msgs", "iopub bytes"],
    )
    goals = Table(
        "Streaming goals",
        ["goal", "case", "measured", "target", "status"],
    )
    for case, _, _ in cases:
        raw_total = med(case, RAW, "total")
        for loop in ("%%glm", RAW, UNFLUSHED):
            if (case, loop) not in results:
                continue
            table.add(
                case,
                loop,
                len(results[(case, loop)]),
                secs(med(case, loop, "total")),
                ratio(med(case, loop, "total"), raw_total),
                secs(med(case, loop, "first")),
                f"{med(case, loop, 'msgs'):.0f}",
                kib(med(case, loop, "bytes")),
            )
        glm_total = med(case, "%%glm", "total")
        goals.add(
            "total time <= 1.25x raw loop",
            case,
            ratio(glm_total, raw_total),
            "1.25x",
            verdict(glm_total <= 1.25 * raw_total),
        )
        limit = 1 + glm_total / 0.1 + 3
        msgs = med(case, "%%glm", "msgs")
        goals.add(
            "iopub msgs <= 1 + duration/100 ms + 3",
            case,
            f"{msgs:.0f}",
            f"{limit:.0f}",
            verdict(msgs <= limit),
        )
        if case == DELAYED:
            first = med(case, "%%glm", "first")
            goals.add(
                "first visible text <= 0.2 s", case, secs(first), "0.20 s", verdict(first <= 0.2)
            )
    table.note(
        f"vs raw: against the '{RAW}' (print(delta, end='', flush=True), the floor); "
        f"'{UNFLUSHED}' lets ipykernel batch the prints (measured without delay only)"
    )
    table.note(
        "first text: %%glm = first display message holding reply text; raw loop = first "
        "stream message"
    )
    table.note(
        "iopub msgs/bytes: output messages (not status/execute_input); bytes = len(json) of content"
    )
    for problem in problems:
        table.note(f"WARNING: {problem}")
    table.show()
    goals.show()
    return [table, goals]


def main() -> int:
    run(sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
