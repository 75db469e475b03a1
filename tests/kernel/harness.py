"""A real IPython kernel driven through jupyter_client, with iopub capture."""

from __future__ import annotations

import os
import queue
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.manager import KernelManager, start_new_kernel

from ..helpers import clean_env


@dataclass
class Execution:
    """Everything one execute_request produced."""

    msg_id: str
    messages: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)
    #: The kernel's ``input_request`` messages (:meth:`Kernel.run_answering`), in order.
    stdin: list[dict[str, Any]] = field(default_factory=list)

    def of(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["msg_type"] in types]

    @property
    def displays(self) -> list[dict[str, Any]]:
        return self.of("display_data", "update_display_data")

    @property
    def updates(self) -> list[dict[str, Any]]:
        return self.of("update_display_data")

    def final_bundle(self) -> dict[str, Any]:
        shown = self.displays
        assert shown, f"no display messages: {[m['msg_type'] for m in self.messages]}"
        return shown[-1]["content"]["data"]

    @property
    def answer(self) -> str:
        """The final reply's text, from its text/plain (before the "-- footer" line)."""
        return str(self.final_bundle()["text/plain"]).rsplit("\n-- ", 1)[0]

    @property
    def footer(self) -> str:
        """The final reply's one-line footer."""
        return str(self.final_bundle()["text/plain"]).rsplit("\n-- ", 1)[1]

    @property
    def html(self) -> str:
        """The final reply's HTML (the rendered Markdown, never the model's raw text)."""
        return self.final_bundle().get("text/html", "")

    @property
    def stdout(self) -> str:
        return "".join(
            m["content"]["text"] for m in self.of("stream") if m["content"]["name"] == "stdout"
        )

    @property
    def stderr(self) -> str:
        return "".join(
            m["content"]["text"] for m in self.of("stream") if m["content"]["name"] == "stderr"
        )

    @property
    def error(self) -> dict[str, Any] | None:
        errors = self.of("error")
        if errors:
            return errors[-1]["content"]
        # UsageError is printed to stderr; only the reply says which error it was.
        content = self.reply.get("content", {})
        return content if content.get("status") == "error" else None

    @property
    def status(self) -> str:
        return str(self.reply.get("content", {}).get("status"))

    @property
    def payloads(self) -> list[dict[str, Any]]:
        return list(self.reply.get("content", {}).get("payload", []))

    def everything(self) -> str:
        """Every message and the reply as text (for leak searches)."""
        import json

        return json.dumps([self.messages, self.reply], default=str)


class Kernel:
    """A python3 kernel in a scratch IPython/Jupyter dir with a chosen environment."""

    def __init__(self, env: dict[str, str], cwd: str | None = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="glm-kernel-")
        full = dict(env)
        full.setdefault("IPYTHONDIR", os.path.join(self.tmp.name, "ipython"))
        full.setdefault("JUPYTER_RUNTIME_DIR", os.path.join(self.tmp.name, "runtime"))
        full.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        self.km: KernelManager
        self.km, self.kc = start_new_kernel(
            kernel_name="python3", startup_timeout=60, env=full, cwd=cwd or self.tmp.name
        )

    def start(self, code: str, cell_id: str | None = None, *, allow_stdin: bool = False) -> str:
        if cell_id is None:
            return str(self.kc.execute(code, store_history=True, allow_stdin=allow_stdin))
        # What JupyterLab and Notebook 7 send: the cell's id in the request metadata.
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        }
        msg = self.kc.session.msg("execute_request", content)
        msg["metadata"]["cellId"] = cell_id
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def collect(self, msg_id: str, timeout: float = 60) -> Execution:
        ex = Execution(msg_id)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no idle for {msg_id}: {[m['msg_type'] for m in ex.messages]}")
            try:
                msg = self.kc.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status":
                if msg["content"]["execution_state"] == "idle":
                    break
                continue
            ex.messages.append(msg)
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                ex.reply = reply
                return ex

    def run_answering(
        self,
        code: str,
        answers: list[str],
        *,
        timeout: float = 60,
        cell_id: str | None = None,
    ) -> tuple[Execution, list[str]]:
        """Run ``code`` with stdin allowed (as JupyterLab does), answering each ``input()``.

        Answers come from ``answers`` in order; returns the execution (its ``stdin``
        holds the requests) and the prompts asked. A prompt beyond the answers fails
        the test (the kernel would wait forever).
        """
        msg_id = self.start(code, cell_id, allow_stdin=True)
        ex = Execution(msg_id)
        prompts: list[str] = []
        deadline = time.monotonic() + timeout
        idle = False
        while not idle:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no idle for {msg_id}; prompts so far: {prompts}")
            try:
                request = self.kc.get_stdin_msg(timeout=0.05)
            except queue.Empty:
                pass
            else:
                if request["msg_type"] == "input_request":
                    ex.stdin.append(request)
                    prompts.append(request["content"]["prompt"])
                    if len(prompts) > len(answers):
                        raise AssertionError(f"asked more than {len(answers)} times: {prompts}")
                    self.kc.input(answers[len(prompts) - 1])
            while True:
                try:
                    msg = self.kc.get_iopub_msg(timeout=0.05)
                except queue.Empty:
                    break
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "status":
                    idle = idle or msg["content"]["execution_state"] == "idle"
                    continue
                ex.messages.append(msg)
        while True:
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                ex.reply = reply
                return ex, prompts

    def run(self, code: str, timeout: float = 60, cell_id: str | None = None) -> Execution:
        return self.collect(self.start(code, cell_id), timeout)

    def wait_for(self, msg_id: str, predicate: Any, timeout: float = 30) -> list[dict[str, Any]]:
        """Read iopub until predicate(msg) is true; return what was read (kept for collect)."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.5)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            seen.append(msg)
            if predicate(msg):
                return seen
        raise TimeoutError("condition not seen on iopub")

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        self.tmp.cleanup()


def kernel_env(base_url: str, **extra: str) -> dict[str, str]:
    """A kernel's environment: clean (:func:`tests.helpers.clean_env`), on ``base_url``."""
    return clean_env(base_url, **extra)
