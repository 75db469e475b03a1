"""Terminal IPython (no kernel): replies print as plain text, errors are one line."""

from __future__ import annotations

import os
import subprocess
import sys

from glm_magic.testing import EndpointServer

from .conftest import FAKE_KEY
from .helpers import clean_env


def run_ipython(
    code: str, base_url: str | None, *, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Terminal IPython running ``code``; ``stdin`` is what the user types."""
    full = clean_env(base_url, **env)
    full["IPYTHONDIR"] = os.path.join(os.environ.get("TMPDIR", "/tmp"), "glm-term-ipython")
    return subprocess.run(
        [sys.executable, "-m", "IPython", "--no-banner", "--colors=nocolor", "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=full,
        check=False,
    )


def test_terminal_streams_plain_text(endpoint: EndpointServer) -> None:
    code = (
        "get_ipython().run_line_magic('load_ext', 'glm_magic')\n"
        "get_ipython().run_cell_magic('glm', '-o r --think', 'Write a function for squares')\n"
        "print('CODE?', 'def ' in r.code)"
    )
    proc = run_ipython(code, endpoint.base_url, RUNAPI_KEY=FAKE_KEY)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "[thinking]" in out
    assert "```python" in out  # the Markdown source as plain text, no HTML
    assert "<details>" not in out and "<sub>" not in out
    assert "-- glm-5.1 · " in out  # the footer
    assert "CODE? True" in out
    assert FAKE_KEY not in out + proc.stderr


def test_terminal_error_is_one_line(endpoint: EndpointServer) -> None:
    code = (
        "get_ipython().run_line_magic('load_ext', 'glm_magic')\n"
        "get_ipython().run_line_magic('config', 'GlmMagics.max_retries = 0')\n"
        "get_ipython().run_cell_magic('glm', '-m glm-4.7+fault=429', 'hi')\n"
    )
    proc = run_ipython(code, endpoint.base_url)
    text = proc.stdout + proc.stderr
    assert "Rate limited:" in text
    assert "Traceback" not in text


def test_terminal_missing_key(endpoint: EndpointServer) -> None:
    code = (
        "get_ipython().run_line_magic('load_ext', 'glm_magic')\n"
        "get_ipython().run_cell_magic('glm', '', 'hi')\n"
    )
    proc = run_ipython(code, None)
    text = proc.stdout + proc.stderr
    assert "UsageError" in text and "%glm key" in text and "RUNAPI_KEY" in text
    assert "Traceback" not in text


def test_terminal_cut_reply_prints_its_note_and_goes_on(endpoint: EndpointServer) -> None:
    code = (
        "get_ipython().run_line_magic('load_ext', 'glm_magic')\n"
        "get_ipython().run_cell_magic('glm', '--max-tokens 10', 'hi')\n"
        "print('AFTER', _glm.truncated)"
    )
    proc = run_ipython(code, endpoint.base_url)
    assert proc.returncode == 0, proc.stderr
    assert "\n[Cut at 10 tokens: your max_tokens cap (10) was reached" in proc.stdout
    assert "AFTER True" in proc.stdout and "Traceback" not in proc.stderr


def test_terminal_agent_asks_on_stdin_and_runs_approved_steps(endpoint: EndpointServer) -> None:
    import json

    script = [
        {"text": "", "calls": [{"name": "run_python", "arguments": {"code": "term_a = 40"}}]},
        {"text": "", "calls": [{"name": "run_python", "arguments": {"code": "term_b = 2"}}]},
        "total: {last_result}",
    ]
    task = f"agent-script: {json.dumps(script)}"
    code = (
        "get_ipython().run_line_magic('load_ext', 'glm_magic')\n"
        f"get_ipython().run_cell_magic('glm', '--agent -m glm-4.7', {task!r})\n"
        "print('A?', 'term_a' in globals(), 'B?', 'term_b' in globals())\n"
        "print('STATUS', [s.status for s in _glm.steps])"
    )
    # Approve the first step, decline the second.
    proc = run_ipython(code, endpoint.base_url, stdin="y\nn\n", RUNAPI_KEY=FAKE_KEY)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("Run this code? [y]es / [n]o / [a]ll / [q]uit") == 2
    assert "A? True B? False" in out
    assert "STATUS ['ok', 'declined']" in out
    assert "[Step 1 · run_python]" in out  # plain text, no HTML in a terminal
    assert "<div" not in out
