"""A reply cut by the token limit (finish_reason ``length``), in a real kernel and under nbclient.

It is a reply, not an error: the cell succeeds, the text and a one-line note
stay, the next cell runs, and code insertion takes only the closed blocks.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from glm_magic.testing import EndpointServer, serve

from ..conftest import FAKE_KEY
from .harness import Execution, Kernel

pytestmark = pytest.mark.kernel

CAP_NOTE = "Cut at 20 tokens: your max_tokens cap (20) was reached; allow more with --max-tokens"
LEFT_OUT = "the reply was cut inside a code block, which was left out"


def shown(ex: Execution) -> str:
    """The reply's HTML output with entities decoded (the text a reader sees)."""
    return html.unescape(ex.html)


def set_input(ex: object) -> list[dict[str, object]]:
    return [p for p in ex.payloads if p.get("source") == "set_next_input"]  # type: ignore[attr-defined]


def test_a_user_cap_keeps_the_reply_and_the_next_cell_runs(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    ex = kernel.run("%%glm --new -o capped --max-tokens 20\nhello")
    assert ex.status == "ok", ex.messages
    assert not ex.of("error") and not ex.stderr
    assert len(ex.answer.split("\n[")[0]) == 20 * 4  # every piece that arrived is shown
    assert f"[{CAP_NOTE}" in ex.final_bundle()["text/plain"]
    assert f'<div class="glm-error">⚠ {CAP_NOTE}' in shown(ex)
    meta = ex.displays[-1]["content"]["metadata"]["glm_magic"]
    assert meta["truncated"] is True and meta["complete"] is False
    assert fresh_endpoint.requests[-1].body["max_tokens"] == 20
    after = kernel.run("print(capped.complete, capped.truncated, len(capped.text), 'after')")
    assert after.stdout.split() == ["False", "True", "80", "after"]
    # The configured cap, as in the report: %config, then a plain cell, then Run All goes on.
    kernel.run("%config GlmMagics.max_tokens = 20")
    try:
        configured = kernel.run("%%glm\nhello again")
        assert configured.status == "ok" and CAP_NOTE in shown(configured)
    finally:
        kernel.run("%config GlmMagics.max_tokens = None")


@pytest.fixture(scope="module")
def limited() -> Iterator[EndpointServer]:
    """An endpoint that stops replies without max_tokens at 16,384 tokens (glm-4.5v's maximum)."""
    server = serve(tokens=16_400, max_output=16_384)
    try:
        yield server
    finally:
        server.close()


def test_the_catalog_maximum_is_named_when_no_cap_was_set(
    kernel: Kernel, limited: EndpointServer
) -> None:
    kernel.run(f"%config GlmMagics.base_url = {limited.base_url!r}")
    try:
        ex = kernel.run("%%glm --new -m glm-4.5v -o longest\nwrite everything", timeout=120)
    finally:
        kernel.run("%config GlmMagics.base_url = ''")
    assert ex.status == "ok", ex.messages
    note = (
        "Cut at 16,384 tokens: glm-4.5v's maximum output (16,384 tokens in the catalog) was "
        "reached, no max_tokens was set"
    )
    assert note in shown(ex)
    assert "max_tokens" not in limited.requests[-1].body
    check = kernel.run("print(len(longest.text), longest.max_tokens)")
    assert check.stdout.split() == [str(16_384 * 4), "None"]


def test_insert_takes_only_closed_blocks(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    model = "glm-4.7+fault=length_in_code"
    ex = kernel.run(f"%%glm --new --insert -m {model}\nwrite a function", cell_id="cell-1")
    assert ex.status == "ok", ex.messages
    (payload,) = set_input(ex)
    assert "def fibonacci" in str(payload["text"]) and "running_totals" not in str(payload["text"])
    assert LEFT_OUT in ex.stdout and "new cell below" in ex.stdout
    compile(str(payload["text"]), "<inserted>", "exec")
    # Cut inside the only block: nothing is inserted, and the user is told why.
    only = kernel.run("%%glm --new --insert --max-tokens 20\nwrite a function", cell_id="cell-2")
    assert only.status == "ok" and not set_input(only)
    assert f"{LEFT_OUT} (unfinished): nothing to insert" in only.stdout


def test_fix_and_insert_leave_out_an_unclosed_block(
    kernel: Kernel, fresh_endpoint: EndpointServer, tmp_path: Path
) -> None:
    kernel.run("print(sum(valuez))")
    ex = kernel.run("%glm fix -o cutfix -m glm-4.7+fault=length_in_code", cell_id="cell-3")
    assert ex.status == "ok", ex.messages
    (payload,) = set_input(ex)
    assert "running_totals" not in str(payload["text"])
    assert "# fixed by the scripted endpoint" in str(payload["text"])
    assert LEFT_OUT in ex.stdout
    # The cut block is shown whole, then the note (outside it), then the footer.
    head, _, tail = shown(ex).partition('<div class="glm-error">⚠ Cut at')
    assert "running_totals" in head and head.count("<pre") == head.count("</pre>") and tail
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = f"{tmp_path}/target.ipynb"
    nbformat.write(nb, path)
    inserted = kernel.run(f"%glm insert --file {path} --reply cutfix")
    assert inserted.status == "ok", inserted.stderr
    assert LEFT_OUT in inserted.stdout
    source = nbformat.read(path, as_version=4).cells[-1].source
    assert "# fixed by the scripted endpoint" in source and "running_totals" not in source


def test_an_nbclient_run_goes_past_a_cut_reply(
    endpoint: EndpointServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLM_BASE_URL", endpoint.base_url)
    monkeypatch.setenv("RUNAPI_KEY", FAKE_KEY)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext glm_magic\n%config GlmMagics.max_tokens = 20"),
        nbformat.v4.new_code_cell("%%glm -o first\nhello"),
        nbformat.v4.new_code_cell("%glm --max-tokens 10 and once more"),
        nbformat.v4.new_code_cell("print('after', first.truncated)"),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()  # raises on a cell error
    outputs = [o for c in nb.cells for o in c.outputs]
    assert not [o for o in outputs if o["output_type"] == "error"]
    glm = [o for o in outputs if "glm_magic" in o.get("metadata", {})]
    assert len(glm) == 2
    assert CAP_NOTE in html.unescape(glm[0]["data"]["text/html"])
    assert "Cut at 10 tokens" in glm[1]["data"]["text/html"]
    assert nb.cells[3].outputs[0]["text"] == "after True\n"
    assert FAKE_KEY not in nbformat.writes(nb)
