"""Notebooks carry their answers: nbclient runs, saved outputs replayed, provenance listing."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from glm_magic.cli import main
from glm_magic.testing import EndpointServer

from .conftest import FAKE_KEY

pytestmark = pytest.mark.kernel

CELLS = [
    "%load_ext glm_magic",
    "%%glm --new\nName three primes.",
    "%%glm\nAnd what is their sum?",
    "%%glm --new --insert\nWrite a function that returns the first primes.",
]


def notebook() -> Any:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    return nb


def env(endpoint: EndpointServer, store: Path, **extra: str) -> dict[str, str]:
    full = {k: v for k, v in os.environ.items() if k not in ("GLM_MAGIC_CACHE", "RUNAPI_KEY")}
    full.update(GLM_BASE_URL=endpoint.base_url, RUNAPI_KEY=FAKE_KEY)
    full.update(GLM_MAGIC_CACHE_DIR=str(store), **extra)
    return full


def execute(nb: Any, environ: dict[str, str], folder: Path) -> Any:
    NotebookClient(nb, timeout=120, kernel_name="python3").execute(cwd=str(folder), env=environ)
    return nb


def answers(nb: Any) -> list[str]:
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if "glm_magic" in out.get("metadata", {}):
                meta = out["metadata"]["glm_magic"]
                found.append(out["data"]["text/plain"][: meta["text_chars"]])
    return found


def replayed(nb: Any) -> list[bool]:
    return [
        out["metadata"]["glm_magic"]["replayed"]
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if "glm_magic" in out.get("metadata", {})
    ]


def stderr_of(nb: Any) -> str:
    return "".join(
        out.get("text", "")
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if out.get("name") == "stderr"
    )


def test_nbclient_twice_asks_only_the_first_time(endpoint: EndpointServer, tmp_path: Path) -> None:
    store = tmp_path / "store"
    before = len(endpoint.requests)
    first = execute(notebook(), env(endpoint, store), tmp_path)
    assert len(endpoint.requests) - before == 3
    assert len(answers(first)) == 3 and not any(replayed(first))
    second = execute(notebook(), env(endpoint, store), tmp_path)
    assert len(endpoint.requests) - before == 3, "the second run made requests"
    assert answers(second) == answers(first)
    assert all(replayed(second))


def test_a_copied_notebook_replays_from_its_saved_outputs(
    endpoint: EndpointServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = execute(notebook(), env(endpoint, tmp_path / "store-a"), tmp_path)
    path = tmp_path / "shared.ipynb"
    nbformat.write(first, path)
    before = len(endpoint.requests)
    # Elsewhere: a fresh store, and the notebook named for the kernel (as glm-magic run does).
    again = execute(
        nbformat.read(path, as_version=4),
        env(endpoint, tmp_path / "store-b", GLM_MAGIC_NOTEBOOK=str(path), RUNAPI_KEY=""),
        tmp_path,
    )
    assert len(endpoint.requests) == before, "a saved answer was asked again"
    assert answers(again) == answers(first)
    assert all(replayed(again))
    # The CLI names the notebook itself: a third store, still no request.
    for name, value in env(endpoint, tmp_path / "store-c").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GLM_MAGIC_CACHE", raising=False)
    assert main(["run", str(path)]) == 0
    assert len(endpoint.requests) == before, "glm-magic run asked a saved answer again"


def test_tampered_metadata_is_ignored_with_one_line(
    endpoint: EndpointServer, tmp_path: Path
) -> None:
    first = execute(notebook(), env(endpoint, tmp_path / "store-a"), tmp_path)
    tampered = copy.deepcopy(first)
    out = next(o for o in tampered.cells[1].outputs if "glm_magic" in o.get("metadata", {}))
    out["data"]["text/plain"] = "import os; os.system('echo owned')" + out["data"]["text/plain"][5:]
    bad = tampered.cells[2].outputs[-1]
    bad["metadata"]["glm_magic"] = "not an object"
    path = tmp_path / "tampered.ipynb"
    nbformat.write(tampered, path)
    before = len(endpoint.requests)
    again = execute(
        nbformat.read(path, as_version=4),
        env(endpoint, tmp_path / "store-b", GLM_MAGIC_NOTEBOOK=str(path)),
        tmp_path,
    )
    # Cell 2's answer was edited and cell 3's entry is no object: both asked again;
    # cell 4's intact entry replays. One line each, once.
    assert len(endpoint.requests) - before == 2
    assert replayed(again) == [False, False, True]
    lines = [t for t in stderr_of(again).splitlines() if "malformed" in t]
    assert len(lines) == 2, stderr_of(again)
    assert "owned" not in json.dumps(answers(again))


def test_provenance_lists_outputs_and_inserted_cells(
    endpoint: EndpointServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = execute(notebook(), env(endpoint, tmp_path / "store"), tmp_path)
    inserted = next(
        o for o in nb.cells[3].outputs if "glm_magic" in o.get("metadata", {})
    )  # the reply whose code --insert asked the frontend to insert
    from glm_magic.ipython.cells import code_cell_source

    source = code_cell_source("def primes():\n    return [2, 3, 5]", "glm-5.1", "a" * 64)
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nb.cells.append(nbformat.v4.new_code_cell(source.replace("[2, 3, 5]", "[2, 3, 5, 7]")))
    path = tmp_path / "listed.ipynb"
    nbformat.write(nb, path)
    capsys.readouterr()
    assert main(["provenance", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    outputs = [line for line in out if ": output" in line]
    assert len(outputs) == 3 and all("glm-5.1" in line for line in outputs)
    assert inserted["metadata"]["glm_magic"]["key"][:12] in outputs[2]
    cells = [line for line in out if ": cell" in line]
    assert len(cells) == 2
    assert cells[0].endswith("unedited") and cells[1].endswith("edited since")
    nb.cells[1].outputs[-1]["metadata"]["glm_magic"]["text_sha256"] = "0" * 64
    nbformat.write(nb, path)
    assert main(["provenance", str(path)]) == 1
    assert "malformed" in capsys.readouterr().err


def test_the_cli_budget_refuses_explain_requests(
    endpoint: EndpointServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(sum(valuez))")]
    path = tmp_path / "typo.ipynb"
    nbformat.write(nb, path)
    before = len(endpoint.requests)
    args = ["explain", str(path), "--base-url", endpoint.base_url, "--budget-usd", "0.00001"]
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "spending limit" in line]
    assert len(lines) == 1 and "--budget-usd" in lines[0] and "spent so far" in lines[0], err
    assert len(endpoint.requests) == before
    assert not (tmp_path / "typo.explained.ipynb").exists()
