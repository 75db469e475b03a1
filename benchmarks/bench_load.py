"""Load cost: ``%load_ext glm_magic`` in a fresh IPython process, and the first ``%%glm``.

Each sample is a fresh ``python -c`` process that creates
``InteractiveShell.instance()`` and then times one step with ``time.perf_counter``,
reading resident memory from ``/proc/self/statm`` before and after:

- ``%load_ext glm_magic`` (the thing measured; goal: at most 15 ms and 3 MB);
- ``%load_ext storemagic``: a trivial builtin extension, the floor of ``%load_ext``;
- ``import httpx`` after the shell exists, and in a bare interpreter: what loading
  would cost if the client were imported eagerly.

The same ``glm_magic`` processes then run ``%%glm`` twice against the bundled
endpoint (``GLM_BASE_URL`` in the child's environment): the first call pays for the
lazy imports (httpx, the client, the renderer) and the connection; the second is
the steady state. Samples rotate through the kinds so machine noise hits all alike.

Run: ``.venv/bin/python benchmarks/bench_load.py [--runs 15]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from typing import Any

from _common import (
    PYTHON,
    ROOT,
    Table,
    child_env,
    endpoint,
    median,
    mib,
    ms,
    progress,
    ratio,
    scratch_dir,
    verdict,
)

GOAL_SECONDS = 0.015
GOAL_BYTES = 3 * 2**20
REPLY_TOKENS = 50

#: The child process. argv[1] is the kind of sample; it prints one JSON line.
CHILD = r"""
import json, os, sys, time

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def step(func):
    before = set(sys.modules)
    r0 = rss()
    t0 = time.perf_counter()
    value = func()
    t1 = time.perf_counter()
    r1 = rss()
    return {"s": t1 - t0, "rss": r1 - r0, "modules": len(set(sys.modules) - before)}, value


kind = sys.argv[1]
out = {}
mark = lambda name: print("@@MARK " + name, file=sys.stderr, flush=True)
if kind == "httpx-bare":
    out["load"], _ = step(lambda: __import__("httpx"))
else:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    if kind == "httpx":
        out["load"], _ = step(lambda: __import__("httpx"))
    else:
        name = "glm_magic" if kind == "glm" else "storemagic"
        mark("load")
        out["load"], _ = step(lambda: shell.run_line_magic("load_ext", name))
    if kind == "glm":
        import contextlib, io

        cell = sys.argv[2]
        for call in ("first", "second"):
            sink = io.StringIO()

            def run():
                with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                    return shell.run_cell(cell, store_history=False)

            mark(call)
            out[call], result = step(run)
            out[call]["ok"] = bool(result.success)
            out[call]["output_tail"] = sink.getvalue()[-300:]
print("@@RESULT " + json.dumps(out))
"""

KINDS = {
    "glm": "%load_ext glm_magic",
    "storemagic": "%load_ext storemagic (trivial builtin extension)",
    "httpx": "import httpx (after the shell)",
    "httpx-bare": "import httpx (bare interpreter)",
}


def sample(kind: str, env: dict[str, str], cell: str) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-c", CHILD, kind, cell],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    for row in done.stdout.splitlines():
        if row.startswith("@@RESULT "):
            result: dict[str, Any] = json.loads(row[len("@@RESULT ") :])
            return result
    raise RuntimeError(f"{kind} sample failed (exit {done.returncode}):\n{done.stderr[-2000:]}")


def import_profile(env: dict[str, str], cell: str, top: int = 8) -> Table:
    """One ``glm`` sample under ``python -X importtime``: the heaviest imports per step."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", CHILD, "glm", cell],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    segments: dict[str, list[tuple[int, int, str]]] = {}
    current: list[tuple[int, int, str]] | None = None
    for row in done.stderr.splitlines():
        if row.startswith("@@MARK "):
            current = segments.setdefault(row.split()[1], [])
        elif current is not None and row.startswith("import time:") and "|" in row:
            _, cum_field, name_field = row.split("|", 2)
            depth = len(name_field) - len(name_field.lstrip())
            with contextlib.suppress(ValueError):
                current.append((depth, int(cum_field), name_field.strip()))
    table = Table(
        "Where the time goes: heaviest imports per step, two levels deep "
        "(one process, python -X importtime)",
        ["step", "import (parent > child)", "cumulative", "share of the step's imports"],
    )
    labels = {"load": "%load_ext glm_magic", "first": "first %%glm", "second": "second %%glm"}
    for step, label in labels.items():
        rows = segments.get(step, [])
        if not rows:
            table.add(label, "(no imports)", "-", "-")
            continue
        shallowest = min(d for d, _, _ in rows)
        total = sum(c for d, c, _ in rows if d == shallowest)
        shown: list[tuple[int, str]] = []
        for i, (depth, cumulative, name) in enumerate(rows):
            if depth == shallowest:
                shown.append((cumulative, name))
            elif depth == shallowest + 2:  # a direct child: named after its parent
                parent = next(n for d, _, n in rows[i + 1 :] if d < depth)
                shown.append((cumulative, f"{parent} > {name}"))
        shown.sort(key=lambda r: -r[0])
        for cumulative, name in shown[:top]:
            table.add(label, name, ms(cumulative / 1e6), f"{cumulative / total:.0%}")
    table.note("-X importtime adds its own overhead; read the shares, not the absolute times")
    return table


def run(argv: list[str] | None = None) -> list[Table]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per kind")
    args = parser.parse_args(argv)

    samples: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    cell = f"%%glm --new -m glm-4.7+tokens={REPLY_TOKENS}\nSay hello"
    with endpoint() as base_url, scratch_dir("glm-bench-load-") as tmp:
        env = child_env(base_url, IPYTHONDIR=str(tmp / "ipython"))
        for kind in KINDS:  # one unmeasured round: profile dir, history db, disk cache
            sample(kind, env, cell)
        for i in range(args.runs):
            progress(f"load: round {i + 1}/{args.runs}")
            for kind in KINDS:
                samples[kind].append(sample(kind, env, cell))
        profile = import_profile(env, cell)

    def med(kind: str, step: str, key: str) -> float:
        return median([float(s[step][key]) for s in samples[kind]])

    base_ext = med("storemagic", "load", "s")
    base_httpx = med("httpx", "load", "s")
    load = Table(
        f"Load cost: one step in a fresh IPython process (median of {args.runs} processes)",
        ["step", "wall", "RSS added", "modules imported", "vs storemagic", "vs import httpx"],
    )
    for kind, label in KINDS.items():
        wall = med(kind, "load", "s")
        load.add(
            label,
            ms(wall),
            mib(med(kind, "load", "rss")),
            f"{med(kind, 'load', 'modules'):.0f}",
            ratio(wall, base_ext),
            ratio(wall, base_httpx),
        )
    glm_wall, glm_rss = med("glm", "load", "s"), med("glm", "load", "rss")
    load.note(
        f"goal: %load_ext glm_magic at most {ms(GOAL_SECONDS)}: {ms(glm_wall)} "
        f"-> {verdict(glm_wall <= GOAL_SECONDS)}"
    )
    load.note(
        f"goal: %load_ext glm_magic adds at most {mib(GOAL_BYTES)} resident: {mib(glm_rss)} "
        f"-> {verdict(glm_rss <= GOAL_BYTES)}"
    )
    load.note(
        "RSS added = resident set from /proc/self/statm after minus before (may be 0 when "
        "the allocator reuses free pages)"
    )
    load.show()

    failed = [s[c] for s in samples["glm"] for c in ("first", "second") if not s[c]["ok"]]
    first = Table(
        f"First %%glm call vs second ({REPLY_TOKENS}-token streamed reply from the bundled "
        f"endpoint, terminal shell, median of {args.runs} processes)",
        ["call", "wall", "RSS added", "modules imported", "vs second call"],
    )
    second_wall = med("glm", "second", "s")
    for call in ("first", "second"):
        wall = med("glm", call, "s")
        first.add(
            f"{call} %%glm",
            ms(wall),
            mib(med("glm", call, "rss")),
            f"{med('glm', call, 'modules'):.0f}",
            ratio(wall, second_wall),
        )
    first.note(
        "the first call pays for the lazy imports (httpx, client, renderer) and a new "
        "connection; the difference first - second is the deferred load cost: "
        f"{ms(med('glm', 'first', 's') - second_wall)}"
    )
    if failed:
        first.note(f"WARNING: {len(failed)} calls did not succeed; last output: {failed[-1]}")
    first.show()
    profile.show()
    return [load, first, profile]


def main() -> int:
    run(sys.argv[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
