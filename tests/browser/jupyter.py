"""JupyterLab 4 / Notebook 7 servers and a Chromium page driven by Playwright.

Helpers for ``tests/browser``; the recipe and its pitfalls are in
``shared/TESTING.md``: a private config/data/runtime dir per server, the
news pop-up disabled, notebooks opened by URL (Notebook 7's tree tab would
steal the widget comms), a probe cell until the kernel answers, and kernels
shut down between tests.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..helpers import clean_env

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Selectors shared by both frontends (Notebook 7 is built from JupyterLab's parts).
CELL = ".jp-Notebook .jp-Cell"
EDITOR = ".jp-Notebook .jp-Cell .cm-content"
OUTPUT = ".jp-OutputArea-output"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_requirements() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing: run scripts/browser-setup.sh"
    for module in ("playwright", "jupyterlab", "notebook"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed: run scripts/browser-setup.sh"
    built = Path(__file__).resolve().parents[2] / "glm_magic" / "labextension" / "package.json"
    if not built.exists():
        return "the notebook bridge is not built: run scripts/labextension-build.sh"
    return None


@dataclass
class JupyterServer:
    """One running ``jupyter lab`` or ``jupyter notebook`` process."""

    app: str  # "lab" or "notebook"
    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def notebook_url(self, name: str) -> str:
        if self.app == "lab":
            return f"{self.url}/lab/tree/{name}?reset&token={self.token}"
        return f"{self.url}/notebooks/{name}?token={self.token}"

    def write_notebook(self, name: str, cells: list[str] | None = None) -> None:
        """Write a notebook with code cells (nbformat 4.5, with cell ids)."""
        nb = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "cells": [
                {
                    "cell_type": "code",
                    "id": secrets.token_hex(4),
                    "metadata": {},
                    "source": src,
                    "outputs": [],
                    "execution_count": None,
                }
                for src in (cells or [""])
            ],
        }
        (self.root / name).write_text(json.dumps(nb, indent=1))

    def read_notebook(self, name: str) -> dict[str, Any]:
        return dict(json.loads((self.root / name).read_text()))

    def shutdown_kernels(self) -> None:
        # Sessions first: deleting one also shuts its kernel down.
        for session in self.api("GET", "/api/sessions") or []:
            with suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels") or []:
            with suppress(urllib.error.HTTPError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def jupyter_server(
    app: str, env_extra: dict[str, str], disable: tuple[str, ...] = ()
) -> Iterator[JupyterServer]:
    """Start JupyterLab (``app="lab"``) or Notebook 7 (``"notebook"``) on 127.0.0.1.

    ``disable`` names extensions turned off with ``jupyter labextension disable``
    in this server's private config (e.g. the glm-magic bridge).
    """
    tmp = Path(tempfile.mkdtemp(prefix=f"glm-browser-{app}-"))
    root = tmp / "notebooks"
    root.mkdir()
    config = tmp / "config"
    (config / "labconfig").mkdir(parents=True)
    # What `jupyter labextension disable` writes: no news pop-up over the notebook.
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    )
    env = clean_env()
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(tmp / "data"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env.update(env_extra)
    for name in disable:
        subprocess.run(
            # --level=user: this server's private JUPYTER_CONFIG_DIR, not the venv's.
            [sys.executable, "-m", "jupyterlab.labextensions", "disable", "--level=user", name],
            env=env,
            check=True,
            capture_output=True,
        )
    token = secrets.token_hex(16)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab" if app == "lab" else "notebook",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    server = JupyterServer(app, f"http://127.0.0.1:{port}", token, root, process, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter {app} exited:\n{server.log()[-3000:]}")
            try:
                server.api("GET", "/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"jupyter {app} did not start:\n{server.log()[-3000:]}"
                    ) from exc
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


class NotebookPage:
    """A notebook open in a browser page, with the operations a person does."""

    def __init__(self, page: Any, server: JupyterServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name

    # -- opening -----------------------------------------------------------------

    def open(self) -> NotebookPage:
        self.page.goto(self.server.notebook_url(self.name))
        self.page.locator(EDITOR).first.wait_for(timeout=60_000)
        self.wait_kernel_ready()
        return self

    def wait_kernel_ready(self, timeout: float = 60) -> None:
        """Run a probe cell until it prints: cells run too early are silently dropped."""
        deadline = time.monotonic() + timeout
        i = 0
        self.cells().first.wait_for()
        while True:
            i += 1
            self.set_cell(0, f"print('ready', {i})")
            self.run_cell(0)
            try:
                self.cell(0).locator(OUTPUT).filter(has_text=f"ready {i}").wait_for(timeout=4000)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                self.shot("probe-timeout")

    # -- cells -------------------------------------------------------------------

    def cells(self) -> Any:
        return self.page.locator(CELL)

    def cell(self, index: int) -> Any:
        return self.cells().nth(index)

    def set_cell(self, index: int, code: str) -> None:
        editor = self.cell(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Delete")
        # One input event: no auto-indent or bracket completion mangles the code.
        self.page.keyboard.insert_text(code)

    def run_cell(self, index: int) -> None:
        self.cell(index).locator(".cm-content").click()
        self.page.keyboard.press("Shift+Enter")

    def add_cell(self, code: str) -> int:
        """Put ``code`` in the empty last cell (Shift+Enter leaves one), else a new one."""
        n = self.cells().count()
        last = self.cell(n - 1)
        if last.locator(".cm-content").inner_text().strip():
            last.locator(".cm-content").click()
            self.page.keyboard.press("Escape")
            self.page.keyboard.press("b")
            self.cells().nth(n).wait_for()
        else:
            n -= 1
        self.set_cell(n, code)
        return n

    def run(self, code: str) -> Any:
        """Append ``code`` as a new cell, run it, and return the cell's locator."""
        index = self.add_cell(code)
        self.run_cell(index)
        return self.cell(index)

    def outputs(self, index: int) -> Any:
        return self.cell(index).locator(OUTPUT)

    def wait_idle(self, cell: Any, timeout: float = 60) -> None:
        """Wait until ``cell`` (a locator or an index) shows an execution count (it finished)."""
        if isinstance(cell, int):
            cell = self.cell(cell)
        prompt = cell.locator(".jp-InputArea-prompt")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = prompt.inner_text()
            if re.search(r"\[\d+\]", text):
                return
            time.sleep(0.1)
        raise TimeoutError(f"cell did not finish: prompt {prompt.inner_text()!r}")

    def save(self, timeout: float = 30) -> None:
        """Save with Ctrl+S and wait until the file on disk has changed (its mtime moves)."""
        path = self.server.root / self.name
        before = path.stat().st_mtime_ns if path.exists() else None
        self.page.keyboard.press("Control+s")
        deadline = time.monotonic() + timeout
        while not path.exists() or path.stat().st_mtime_ns == before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} was not saved within {timeout} s")
            time.sleep(0.05)
        # The server writes to a temporary file and renames it, so a changed file is complete.

    def shot(self, name: str, locator: Any = None) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{self.server.app}-{name}.png"
        if locator is not None:
            locator.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path))
        return path
