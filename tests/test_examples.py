"""The example notebooks run headlessly under nbclient against the bundled endpoint."""

from __future__ import annotations

import nbformat
import pytest

from glm_magic.testing import EndpointServer

from .helpers import EXAMPLES, run_example


def glm_outputs(nb: object) -> list[dict[str, object]]:
    found = []
    for cell in nb.cells:  # type: ignore[attr-defined]
        for out in cell.get("outputs", []):
            if "glm_magic" in out.get("metadata", {}):
                found.append(out)
    return found


def test_quickstart_runs_and_keeps_the_streamed_replies(
    endpoint: EndpointServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (EXAMPLES / "quickstart.ipynb").read_bytes()
    nb = run_example("quickstart.ipynb", endpoint.base_url, monkeypatch)
    replies = glm_outputs(nb)
    assert len(replies) == 3
    for out in replies:
        meta = out["metadata"]["glm_magic"]  # type: ignore[index]
        assert meta["complete"] is True
        data = out["data"]  # type: ignore[index]
        assert "text/html" in data and "text/plain" in data
        assert "working" not in data["text/html"]  # the final update was applied
    code_cell = next(c for c in nb.cells if "primes_reply.code" in c.source)  # type: ignore[attr-defined]
    printed = "".join(o.get("text", "") for o in code_cell.outputs)
    assert "def " in printed
    nbformat.validate(nb)
    assert (EXAMPLES / "quickstart.ipynb").read_bytes() == before


def test_explain_and_fix_example_runs_with_scripted_replies(
    endpoint: EndpointServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.reset()
    nb = run_example("explain-and-fix.ipynb", endpoint.base_url, monkeypatch)
    replies = glm_outputs(nb)
    assert len(replies) == 2
    explain_md = replies[0]["data"]["text/html"]  # type: ignore[index]
    assert "TypeError" in explain_md
    bodies = [r.body for r in endpoint.requests if r.path.endswith("/chat/completions")]
    explain_user = bodies[0]["messages"][-1]["content"]
    assert "statistics.mean(values)" in explain_user  # the failing source
    assert "TypeError" in explain_user  # its traceback
    assert "csv.DictReader" in explain_user  # the earlier cell where the cause is
    printed = "".join(
        o.get("text", "")
        for c in nb.cells  # type: ignore[attr-defined]
        if c.source == "print(fix.code)"
        for o in c.outputs
    )
    compile(printed, "<fix>", "exec")
    assert "statistics" in printed


def test_agent_example_inspects_fails_fixes_and_answers(
    endpoint: EndpointServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint.reset()
    before = (EXAMPLES / "agent.ipynb").read_bytes()
    nb = run_example("agent.ipynb", endpoint.base_url, monkeypatch)
    nbformat.validate(nb)
    printed = "".join(
        o.get("text", "")
        for c in nb.cells  # type: ignore[attr-defined]
        if c.source.startswith("for step in analysis.steps")
        for o in c.outputs
    )
    lines = [
        line.split()
        for line in printed.splitlines()
        if line.startswith(("run_", "list", "desc", "note", "read"))
    ]
    runs = [status for tool, status, *_ in lines if tool == "run_python"]
    assert runs[:2] == ["error", "ok"]  # the first attempt fails, the fix runs
    assert any(tool == "describe_variable" for tool, *_ in lines)  # it looked before it ran
    task_cell = next(c for c in nb.cells if c.source.startswith("%%glm --agent"))  # type: ignore[attr-defined]
    shown = str(task_cell.outputs)
    assert "KeyError" in shown and "revenue" in shown
    # The model read the real output of the fixed code: its answer quotes the table.
    requests = [r.body for r in endpoint.requests if r.path.endswith("/chat/completions")]
    last_tool = [m for m in requests[-1]["messages"] if m["role"] == "tool"][-1]["content"]
    assert "north" in last_tool and "ran as In [" in last_tool
    ran = "".join(
        o.get("text", "")
        for c in nb.cells  # type: ignore[attr-defined]
        if c.source == "print(analysis.ran_code)"
        for o in c.outputs
    )
    compile(ran, "<ran>", "exec")
    assert "revenue" in ran
    assert (EXAMPLES / "agent.ipynb").read_bytes() == before
