"""The notebook agent through LiteLLM's proxy: tool calls survive a third-party server.

The bundled endpoint is LiteLLM's upstream (``glm/<model>``), scripting the tool calls; the
kernel's ``%%glm --agent`` talks to the proxy. LiteLLM re-encodes every chunk, so the calls
reach the client in LiteLLM's own streamed form (whole, or in fragments when the upstream
fragments them), and the tool results go back through it in the next request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from glm_magic.testing import EndpointServer

from ..kernel.harness import Kernel
from .litellm_proxy import UPSTREAM_PREFIX, Proxy

pytestmark = pytest.mark.peer


def _task(model: str) -> str:
    turns: list[Any] = [
        {"text": "Looking first.", "calls": [{"name": "list_variables", "arguments": {}}]},
        {
            "text": "",
            "calls": [
                {"name": "describe_variable", "arguments": {"name": "peer_rows"}},
                {"name": "run_python", "arguments": {"code": "peer_total = sum(peer_rows)"}},
            ],
        },
        {"text": "", "calls": [{"name": "run_python", "arguments": {"code": "print(peer_total)"}}]},
        "The total is {last_result}",
    ]
    return f"%%glm --agent --yes -m {model}\nagent-script: {json.dumps(turns)}"


@pytest.mark.parametrize("fragments", [False, True], ids=["whole-calls", "tool_stream"])
def test_an_agent_task_runs_through_litellm(
    peer_kernel: Kernel, fresh_proxy: Proxy, fresh_endpoint: EndpointServer, fragments: bool
) -> None:
    peer_kernel.run("peer_rows = [3, 4, 5]")
    model = UPSTREAM_PREFIX + "glm-4.7" + ("+tool_stream=1" if fragments else "")
    ex = peer_kernel.run(_task(model))
    assert ex.status == "ok", ex.everything()
    check = peer_kernel.run(
        "print(peer_total, [(s.tool, s.status) for s in _glm.steps], _glm.requests)"
    )
    assert check.stdout.strip() == (
        "12 [('list_variables', 'ok'), ('describe_variable', 'ok'), ('run_python', 'ok'), "
        "('run_python', 'ok')] 4"
    )
    assert "The total is" in peer_kernel.run("print(_glm.text)").stdout
    # Upstream, the last request carried every tool result, paired with its call.
    last = [r.body for r in fresh_endpoint.requests if r.path.endswith("/chat/completions")][-1]
    calls = [
        c["id"]
        for m in last["messages"]
        if m["role"] == "assistant"
        for c in m.get("tool_calls") or []
    ]
    results = [m["tool_call_id"] for m in last["messages"] if m["role"] == "tool"]
    assert calls == results and len(calls) == 4
    assert "12" in [m for m in last["messages"] if m["role"] == "tool"][-1]["content"]
