"""Shared helpers for the benchmarks: result tables, medians, the endpoint, machine facts.

Every benchmark module has ``run(argv) -> list[Table]``, which prints its tables as
it goes and returns them so ``run_all.py`` can collect them into ``RESULTS.md``.
Benchmarks measure and report; none asserts a time.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class Table:
    """One result table: a title, column names, rows of cells and notes below."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([str(c) for c in cells])

    def note(self, text: str) -> None:
        self.notes.append(text)

    def text(self) -> str:
        """The table as aligned plain text (what the benchmark prints)."""
        lines = [self.title, "=" * len(self.title)]
        if self.rows:
            widths = [
                max(len(col), *(len(r[i]) for r in self.rows)) for i, col in enumerate(self.columns)
            ]

            def line(cells: Sequence[str]) -> str:
                first = cells[0].ljust(widths[0])
                rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
                return "  ".join([first, *rest]).rstrip()

            lines.append(line(self.columns))
            lines.append("  ".join("-" * w for w in widths))
            lines.extend(line(r) for r in self.rows)
        lines.extend(f"  * {n}" for n in self.notes)
        return "\n".join(lines)

    def markdown(self) -> str:
        """The table as GitHub Markdown (for ``RESULTS.md``)."""
        out = [f"### {self.title}", ""]
        if self.rows:
            out.append("| " + " | ".join(self.columns) + " |")
            out.append(
                "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|"
            )
            out.extend(
                "| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows
            )
            out.append("")
        out.extend(f"- {n}" for n in self.notes)
        if self.notes:
            out.append("")
        return "\n".join(out)

    def show(self) -> None:
        print()
        print(self.text(), flush=True)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:.2f} MB"


def kib(nbytes: float) -> str:
    return f"{nbytes / 1024:,.0f} KB"


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline > 0 else "-"


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def progress(text: str) -> None:
    """A progress line on stderr (tables go to stdout)."""
    print(f"  .. {text}", file=sys.stderr, flush=True)


def child_env(base_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment for a child process: no keys, no model override, our endpoint."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RUNAPI_KEY", "GLM_API_KEY", "GLM_MODEL", "GLM_BASE_URL")
    }
    if base_url is not None:
        env["GLM_BASE_URL"] = base_url
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # Streaming benchmarks ask the same prompt many times: the reply store would replay
    # them. bench_replay turns it on with its own folder.
    env["GLM_MAGIC_CACHE"] = "off"
    env.update(extra)
    return env


@contextlib.contextmanager
def endpoint() -> Iterator[str]:
    """Run the bundled endpoint in its own process; yield its base URL.

    A separate process keeps the server's threads from competing for the GIL
    with whatever the benchmark measures in this process.
    """
    proc = subprocess.Popen(
        [PYTHON, "-m", "glm_magic.testing", "--port", "0", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=child_env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        prefix = "GLM test endpoint listening on "
        if not first.startswith(prefix):
            raise RuntimeError(f"the bundled endpoint did not start: {first!r}")
        yield first[len(prefix) :]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def machine_summary() -> list[str]:
    """Facts that make absolute figures comparable: CPUs, CPU model, Python, load."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = ""
    with contextlib.suppress(OSError):
        for row in Path("/proc/cpuinfo").read_text().splitlines():
            if row.startswith("model name"):
                model = row.split(":", 1)[1].strip()
                break
    load = ""
    with contextlib.suppress(OSError):
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return [
        f"nproc: {cpus}" + (f" ({model})" if model else ""),
        f"Python: {platform.python_implementation()} {platform.python_version()}",
        f"platform: {platform.platform()}",
        f"load average at start: {load}" if load else "load average: unknown",
    ]


def package_versions(*names: str) -> str:
    from importlib import metadata

    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (absent)")
    return ", ".join(found)
