"""LiteLLM's proxy as a test peer: its config (mock models), an offline environment, start and stop.

The proxy runs from its own virtualenv (``.peer-venv``, made by ``scripts/peer-setup.sh``) as a
separate process on 127.0.0.1. Every model uses LiteLLM's ``mock_response``, so no upstream
provider is needed. The knobs, read from ``litellm/main.py`` and ``litellm/utils.py`` of the pinned
release (1.108.7):

- ``mock_response: "<text>"``: the reply; streamed as 3-character deltas, then a chunk with
  ``finish_reason: "stop"`` and ``data: [DONE]``.
- ``mock_response: "litellm.RateLimitError"`` (HTTP 429), ``"litellm.InternalServerError"``
  (500), ``"litellm.ContextWindowExceededError"`` (400): raised before anything is sent.
- ``mock_response: "Exception: mock_streaming_error"``: a MockException with status 529. The
  proxy pulls the first chunk before it answers, so this too is an HTTP error, not a broken stream.
- ``mock_delay: S``: sleep S seconds before the reply (the proxy sends no header before the first
  chunk, so this is a slow first byte).
- ``mock_timeout: true`` with ``timeout: S``: sleep S seconds, then raise ``litellm.Timeout``
  (HTTP 408).

A client hanging up mid-stream does not stop a mock: the proxy computes the rest of it anyway
(a real upstream is hung up on, see ``test_litellm_upstream``). Hence the modest ``LONG_REPLY``.

Besides the mocks, ``glm/<model>`` is routed (a LiteLLM wildcard route, ``openai/*``) to an
upstream: the bundled endpoint, so ``glm/glm-4.7+fault=429-1113`` shows what a GLM failure looks
like once LiteLLM has passed it on.

Offline: at import LiteLLM fetches its model cost map from raw.githubusercontent.com (three tries,
with backoff); ``LITELLM_LOCAL_MODEL_COST_MAP=True`` makes it use the copy in the package. The rest
of :data:`OFFLINE_ENV` keeps everything else local: no telemetry, no ``.env`` loading, no
database (its URL variables are removed, so no Prisma engine download either).

``python -m tests.peer.litellm_proxy [PORT]`` runs the same proxy in the foreground, for poking.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
PEER_VENV = ROOT / ".peer-venv"
SETUP_SCRIPT = ROOT / "scripts" / "peer-setup.sh"

#: What the ordinary models answer: Markdown with a code block and non-ASCII text, so 3-character
#: slices cut through multi-byte characters and the fence.
REPLY = (
    "Hello from the LiteLLM peer \u2014 \u00e7a marche.\n\n"
    "```python\ndef add(a, b):\n    return a + b\n```\n\n"
    "That is all."
)
#: The code block of :data:`REPLY`, as ``Reply.code`` should return it.
REPLY_CODE = "def add(a, b):\n    return a + b"
#: Seconds before the first byte of ``peer-slow``.
SLOW_DELAY = 2.0
#: Seconds ``peer-timeout`` waits before the proxy gives up with its own 408.
TIMEOUT_AFTER = 1.0
#: A reply long enough (6,400 chunks, ~1.5 s) to be still streaming when a test stops it.
LONG_REPLY = "".join(f"Line {i:04d} of a long reply that keeps streaming.\n" for i in range(400))

#: model name -> LiteLLM params beyond ``model``; see the module docstring for the knobs.
MODELS: dict[str, dict[str, Any]] = {
    "peer-ok": {"mock_response": REPLY},
    "peer-slow": {"mock_response": REPLY, "mock_delay": SLOW_DELAY},
    "peer-long": {"mock_response": LONG_REPLY},
    "peer-429": {"mock_response": "litellm.RateLimitError"},
    "peer-500": {"mock_response": "litellm.InternalServerError"},
    "peer-context": {"mock_response": "litellm.ContextWindowExceededError"},
    "peer-529": {"mock_response": "Exception: mock_streaming_error"},
    "peer-timeout": {"mock_response": REPLY, "mock_timeout": True, "timeout": TIMEOUT_AFTER},
}

#: ``glm/<id>`` goes to the upstream (the bundled endpoint) as ``<id>``.
UPSTREAM_PREFIX = "glm/"

#: Set for the proxy process: no network at start, no stray files read.
OFFLINE_ENV = {
    # The Python code paths, not the native (Rust) bridge: the proxy segfaulted once in a full
    # suite run here (a NULL type pointer in libpython, i.e. a native extension's refcount bug).
    "LITELLM_RUST": "false",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else: GET raw.githubusercontent.com (3 tries)
    "LITELLM_TELEMETRY": "False",  # the old switch
    "LITELLM_TELEMETRY_DISABLED": "true",  # the switch of the 1.10x telemetry module
    "LITELLM_MODE": "PRODUCTION",  # "DEV" (the default) loads a .env from the working directory
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
    "LITELLM_LOG": "INFO",
    "PYTHONUNBUFFERED": "1",  # the access log is read by tests to count requests
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
#: Removed from the proxy's environment: a database (Prisma would download its engines and run
#: migrations), real provider keys and HTTP proxies.
SCRUBBED_ENV_PREFIXES = ("DATABASE_URL", "DIRECT_URL", "LITELLM_", "OPENAI_", "ZAI_")
SCRUBBED_ENV = {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"}

_CHAT_LINE = re.compile(r'"POST /v1/chat/completions HTTP/1\.[01]" (\d{3})')
#: What the proxy logs when a client hangs up before the first chunk (it then cancels upstream).
#: Such a request has no access-log line: uvicorn logs nothing for a reply it cannot send.
HUNG_UP = "client disconnected before the first streamed chunk"


def config(upstream: str | None = None) -> dict[str, Any]:
    """The proxy config (JSON is YAML, so it is written as JSON).

    ``upstream`` is the base URL that ``glm/*`` models are sent to (no such route without it).
    """
    model_list: list[dict[str, Any]] = [
        {
            "model_name": name,
            # openai/<name> with a dummy key: the mock answers before any provider is used.
            "litellm_params": {"model": f"openai/{name}", "api_key": "unused", **params},
        }
        for name, params in MODELS.items()
    ]
    if upstream is not None:
        model_list.append(
            {
                "model_name": f"{UPSTREAM_PREFIX}*",
                "litellm_params": {"model": "openai/*", "api_base": upstream, "api_key": "unused"},
            }
        )
    return {
        "model_list": model_list,
        # The router retries twice by default (with backoff, ~5 s per error) and may cool a
        # failing deployment down; our client must be the only one retrying.
        "router_settings": {"num_retries": 0, "disable_cooldowns": True},
        "litellm_settings": {"num_retries": 0, "request_timeout": 600},
        # The master key comes from LITELLM_MASTER_KEY; no database, no UI login needed.
        "general_settings": {},
    }


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned_version() -> str:
    """The LiteLLM release ``scripts/peer-setup.sh`` installs (its ``LITELLM_VERSION=``)."""
    found = re.search(r"^LITELLM_VERSION=(\S+)$", SETUP_SCRIPT.read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no LITELLM_VERSION= line in {SETUP_SCRIPT}")
    return found.group(1)


def installed_litellm() -> Path | None:
    """The ``litellm`` executable in ``.peer-venv`` once setup has installed the pinned release."""
    exe = PEER_VENV / "bin" / "litellm"
    done = (PEER_VENV / f".installed-litellm-{pinned_version()}").is_file()
    return exe if exe.is_file() and done else None


def install_litellm(timeout: float = 600) -> Path:
    """Run ``scripts/peer-setup.sh``; return the executable it prints (raises on failure)."""
    result = subprocess.run(
        ["bash", str(SETUP_SCRIPT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"scripts/peer-setup.sh failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    return Path(result.stdout.strip().splitlines()[-1])


def proxy_env(master_key: str) -> dict[str, str]:
    """The environment for the proxy process."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SCRUBBED_ENV and not k.startswith(SCRUBBED_ENV_PREFIXES)
    }
    env.update(OFFLINE_ENV)
    env["LITELLM_MASTER_KEY"] = master_key
    return env


@dataclass
class Proxy:
    """A running LiteLLM proxy: where it listens, its master key, its log."""

    process: subprocess.Popen[bytes]
    port: int
    master_key: str = field(repr=False)
    log_path: Path
    #: How it was started, so :meth:`restart` can start it again on the same port and key.
    litellm: Path | None = None
    workdir: Path | None = None
    upstream: str | None = None
    restarts: int = 0

    def crashed(self) -> bool:
        """Whether the process died from a signal (a crash, not a shutdown we asked for)."""
        code = self.process.poll()
        return code is not None and code < 0

    def restart(self) -> None:
        """Start the proxy again after it died: same port, key and config, so URLs stay valid."""
        assert self.litellm is not None and self.workdir is not None
        self.stop()
        again = start(
            self.litellm,
            self.workdir,
            upstream=self.upstream,
            port=self.port,
            master_key=self.master_key,
            log_name=f"proxy-{self.restarts + 1}.log",
        )
        self.process, self.log_path = again.process, again.log_path
        self.restarts += 1

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client uses as its base URL (LiteLLM serves ``/v1/chat/completions``)."""
        return f"{self.origin}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def chat_statuses(self) -> list[int]:
        """The status of every ``POST /v1/chat/completions`` so far, from the access log."""
        return [int(m.group(1)) for m in _CHAT_LINE.finditer(self.log())]

    def wait_for_chat_count(self, count: int, timeout: float = 5.0) -> list[int]:
        """Statuses once at least ``count`` chat requests are logged (or at the timeout)."""
        deadline = time.monotonic() + timeout
        statuses = self.chat_statuses()
        while len(statuses) < count and time.monotonic() < deadline:
            time.sleep(0.05)
            statuses = self.chat_statuses()
        return statuses

    def wait_for_log(self, text: str, count: int, timeout: float = 5.0) -> int:
        """How often ``text`` is in the log, once that is ``count`` times (or at the timeout)."""
        deadline = time.monotonic() + timeout
        seen = self.log().count(text)
        while seen < count and time.monotonic() < deadline:
            time.sleep(0.05)
            seen = self.log().count(text)
        return seen

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(grace)


def start(
    litellm: Path,
    workdir: Path,
    *,
    upstream: str | None = None,
    port: int | None = None,
    ready: float = 120,
    master_key: str | None = None,
    log_name: str = "proxy.log",
) -> Proxy:
    """Start the proxy on 127.0.0.1 and wait until ``/health/liveliness`` answers.

    ``workdir`` holds the config and the log and is the proxy's working directory (LiteLLM puts
    it on ``sys.path`` and may write there). ``upstream``: see :func:`config`. Raises
    ``RuntimeError`` with the log's tail if the proxy exits or is not ready within ``ready``
    seconds.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = workdir / "litellm_config.yaml"
    cfg.write_text(json.dumps(config(upstream), indent=1))
    port = port or free_port()
    master_key = master_key or "sk-peer-" + secrets.token_hex(12)
    log_path = workdir / log_name
    cmd = [str(litellm), "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=proxy_env(master_key),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as one
        )
    proxy = Proxy(process, port, master_key, log_path, litellm, workdir, upstream)
    deadline = time.monotonic() + ready
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the LiteLLM proxy exited with {process.returncode}:\n{proxy.log()[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{proxy.origin}/health/liveliness", timeout=2).status_code == 200:
                    return proxy
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the LiteLLM proxy was not ready after {ready:g} s:\n{proxy.log()[-3000:]}"
                )
            time.sleep(0.25)
    except BaseException:
        proxy.stop()
        raise


def main(argv: list[str]) -> int:
    """Run the peer proxy in the foreground until Ctrl-C."""
    import tempfile

    from glm_magic.testing import serve

    litellm = installed_litellm() or install_litellm()
    with serve(port=0) as endpoint, tempfile.TemporaryDirectory(prefix="glm-peer-") as tmp:
        proxy = start(
            litellm, Path(tmp), upstream=endpoint.base_url, port=int(argv[0]) if argv else None
        )
        print(f"GLM_BASE_URL={proxy.base_url}\nRUNAPI_KEY={proxy.master_key}")
        print(f"models: {', '.join(MODELS)}, {UPSTREAM_PREFIX}<bundled endpoint model>")
        print(f"log: {proxy.log_path}; Ctrl-C stops")
        try:
            proxy.process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
