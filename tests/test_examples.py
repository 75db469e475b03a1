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
