"""Run every benchmark in order, print the tables, and write them to ``benchmarks/RESULTS.md``.

``make bench`` runs this. A benchmark that crashes is reported (and makes the exit
status 1) without stopping the others; none of them asserts a time.

Run: ``.venv/bin/python benchmarks/run_all.py [bench_load bench_context ...]``.
"""

from __future__ import annotations

import datetime
import importlib
import sys
import time
import traceback
from pathlib import Path

from _common import Table, machine_summary, package_versions

BENCHMARKS = (
    "bench_load",
    "bench_kernel_stream",
    "bench_network",
    "bench_context",
    "bench_render",
    "bench_replay",
    "bench_agent",
    "bench_browser",
)
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 2
    started = datetime.datetime.now(datetime.timezone.utc)
    machine = machine_summary()
    print("glm-magic benchmarks, " + started.strftime("%Y-%m-%d %H:%M UTC"))
    for line in machine:
        print("  " + line)
    sections: list[tuple[str, list[Table], float]] = []
    failed = False
    t_all = time.perf_counter()
    for name in names:
        print(f"\n#### {name}", flush=True)
        t0 = time.perf_counter()
        try:
            tables = importlib.import_module(name).run([])
        except Exception:
            failed = True
            message = traceback.format_exc()
            print(message, file=sys.stderr)
            crashed = Table(f"{name}: crashed", [])
            crashed.note(message.strip().splitlines()[-1])
            tables = [crashed]
        sections.append((name, tables, time.perf_counter() - t0))
    total = time.perf_counter() - t_all

    lines = [
        "# glm-magic benchmark results",
        "",
        f"Run on {started.strftime('%Y-%m-%d %H:%M')} UTC by `benchmarks/run_all.py` "
        f"(`make bench`) in {total:.0f} s. Medians over repeated runs; ratios are against "
        "baselines measured in the same run (absolute times vary on shared machines).",
        "",
        *(f"- {line}" for line in machine),
        "- packages: "
        + package_versions("ipython", "ipykernel", "jupyter_client", "httpx", "nbformat"),
        "",
    ]
    for name, tables, seconds in sections:
        lines += [f"## {name} ({seconds:.0f} s)", ""]
        lines += [t.markdown() for t in tables]
    RESULTS.write_text("\n".join(lines).rstrip() + "\n")
    print(f"\nall benchmarks: {total:.0f} s; tables written to {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
