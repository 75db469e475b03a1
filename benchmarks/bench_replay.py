"""Replaying from the reply store: a replayed reply against streaming it, and store lookups.

1. In one real kernel (driven through ``jupyter_client``), the same
   ``%%glm --new`` cell of a 2,000-token reply from the bundled endpoint with
   no delay: streamed with ``--refresh`` (a request every time) and replayed
   (no request), alternating, after one unmeasured warm-up. Timed from
   sending the execute_request until the kernel reports idle.
   Goal: the replayed cell takes at most 0.2x the streamed one's time.
2. A store of 10,000 entries (about 2 KB each): the median time of
   :meth:`ReplyStore.get` for a present and an absent key, over 2,000 lookups
   each. Goal: under 2 ms median.

Run: ``.venv/bin/python benchmarks/bench_replay.py [--reps 5]``.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from _common import Table, child_env, endpoint, median, progress, ratio, scratch_dir, secs, verdict
from bench_kernel_stream import Kernel

TOKENS = 2000
CELL = "%%glm --new {flag} -m glm-4.7+tokens={tokens}\nReplay benchmark reply"
ENTRIES = 10_000
LOOKUPS = 2_000


def kernel_table(reps: int) -> list[Table]:
    times: dict[str, list[float]] = {"streamed": [], "replayed": []}
    problems: list[str] = []
    with endpoint() as base_url, scratch_dir("glm-bench-replay-") as tmp:
        env = child_env(base_url, GLM_MAGIC_CACHE="replay", GLM_MAGIC_CACHE_DIR=str(tmp / "s"))
        progress("replay: starting ipykernel")
        kernel = Kernel(env, str(tmp))
        try:
            kernel.execute("%load_ext glm_magic")
            kernel.execute(CELL.format(flag="--refresh", tokens=20))
            kernel.execute(CELL.format(flag="", tokens=20))
            for i in range(reps):
                for case, flag in (("streamed", "--refresh"), ("replayed", "")):
                    progress(f"replay: {case}, run {i + 1}/{reps}")
                    done = kernel.execute(CELL.format(flag=flag, tokens=TOKENS))
                    footer = done.shown_text()
                    plain = [
                        str(m["content"]["data"].get("text/plain", ""))
                        for m in done.outputs
                        if m["msg_type"].endswith("display_data")
                    ]
                    is_replay = bool(plain) and "replayed · first answered" in plain[-1]
                    if done.status != "ok" or is_replay != (case == "replayed") or not footer:
                        problems.append(f"{case}, run {i + 1}: status {done.status}")
                    times[case].append(done.total)
        finally:
            kernel.shutdown()
    streamed, replayed = median(times["streamed"]), median(times["replayed"])
    table = Table(
        f"A {TOKENS:,}-token reply in a real kernel: streamed (--refresh) vs replayed "
        "(medians; execute_request to idle)",
        ["case", "runs", "total", "vs streamed"],
    )
    table.add("streamed", len(times["streamed"]), secs(streamed), "1.00x")
    table.add("replayed", len(times["replayed"]), secs(replayed), ratio(replayed, streamed))
    goal = replayed <= 0.2 * streamed and not problems
    table.add("goal", "", "<= 0.2x", verdict(goal))
    for problem in problems:
        table.note(problem)
    return [table]


def store_table() -> list[Table]:
    from glm_magic.core.store import ReplyStore
    from glm_magic.events import Usage
    from glm_magic.provenance import record
    from glm_magic.reply import Reply

    with scratch_dir("glm-bench-store-") as tmp:
        store = ReplyStore(Path(tmp) / "s.sqlite3")
        progress(f"store: writing {ENTRIES:,} entries")
        db = store._connect()  # bulk setup in one transaction (not through the API)
        db.execute("BEGIN")
        for i in range(ENTRIES):
            reply = Reply(
                text=f"answer {i} " + "x" * 2000,
                model="glm-4.7",
                usage=Usage(100, 500, 600),
                finish_reason="stop",
            )
            data = json.dumps(record(reply))
            db.execute(
                "INSERT INTO replies (key, created, size, model, data) VALUES (?, ?, ?, ?, ?)",
                (f"{i:064x}", time.time(), len(data), "glm-4.7", data),
            )
        db.execute("COMMIT")
        rng = random.Random(7)
        results: dict[str, list[float]] = {"present": [], "absent": []}
        for _ in range(LOOKUPS):
            for case in ("present", "absent"):
                key = f"{rng.randrange(ENTRIES):064x}" if case == "present" else "f" * 64
                t0 = time.perf_counter()
                found = store.get(key)
                results[case].append(time.perf_counter() - t0)
                assert (found is not None) == (case == "present")
        store.close()
    table = Table(
        f"Reply store lookups at {ENTRIES:,} entries ({LOOKUPS:,} each, SQLite, one connection)",
        ["key", "median", "goal", "status"],
    )
    for case, values in results.items():
        m = median(values)
        table.add(case, f"{m * 1000:.3f} ms", "< 2 ms", verdict(m < 0.002))
    return [table]


def run(argv: list[str] | None = None) -> list[Table]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="runs of each cell")
    args = parser.parse_args(argv)
    return [*kernel_table(args.reps), *store_table()]


if __name__ == "__main__":
    for table in run():
        table.show()
