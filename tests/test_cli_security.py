"""Issue 15 item 3 and the CLI part of item 5: what ``glm-magic`` prints, runs and writes.

Real notebooks run by real kernels; the model is the bundled endpoint over
loopback. The key (``localproxy-Key-7f3a9c2e``) has no token shape, so only
the configured-key rules can mask it.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from glm_magic.cli import main
from glm_magic.cli.args import build_parser
from glm_magic.testing import EndpointServer

from .helpers import clear_glm_env

KEY = "localproxy-Key-7f3a9c2e"
LEAKS = 'import os\nraise RuntimeError("auth failed for key " + os.environ["RUNAPI_KEY"])'
# Records which secret-bearing variables the kernel saw, one line per run of the notebook.
RECORD_ENV = (
    "import os\n"
    "with open('env_seen.txt', 'a') as f:\n"
    "    f.write(' '.join(sorted(k for k in os.environ\n"
    "        if k in ('RUNAPI_KEY', 'GLM_API_KEY', 'MY_KEY') or k.startswith('GLM_'))) + '|\\n')"
)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_glm_env(monkeypatch, RUNAPI_KEY=KEY)


def notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_run_masks_the_key_in_what_it_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = notebook(tmp_path / "leaks.ipynb", LEAKS)
    assert main(["run", str(nb)]) == 1
    captured = capsys.readouterr()
    assert "RuntimeError: auth failed for key ***" in captured.out
    assert KEY not in captured.out + captured.err


def test_fix_masks_printed_lines_and_verify_runs_without_the_key(
    tmp_path: Path,
    fresh_endpoint: EndpointServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GLM_MODEL", "glm-4.7")
    monkeypatch.setenv("GLM_API_KEY", KEY + "-second")
    monkeypatch.setenv("MY_KEY", "other-Key-0b1c2d3e4f")
    nb = notebook(tmp_path / "leaks.ipynb", RECORD_ENV, LEAKS)
    args = ["fix", str(nb), "--verify", "--show", "--key-env", "MY_KEY"]
    assert main([*args, "--base-url", fresh_endpoint.base_url]) == 1  # the fix still fails
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "fix still fails" in captured.out
    assert KEY not in printed and "other-Key-0b1c2d3e4f" not in printed
    runs = (tmp_path / "env_seen.txt").read_text().splitlines()
    assert len(runs) == 2  # the first run, then the verifying run
    assert "RUNAPI_KEY" in runs[0] and "MY_KEY" in runs[0]
    assert runs[1] == "|", runs[1]  # no key variable, no GLM_* setting
    written = (tmp_path / "leaks.fixed.ipynb").read_text()
    assert KEY not in written


def test_a_symlink_at_the_output_path_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = notebook(tmp_path / "nb.ipynb", "1/0")
    elsewhere = tmp_path / "elsewhere" / "loot.ipynb"
    elsewhere.parent.mkdir()
    (tmp_path / "nb.explained.ipynb").symlink_to(elsewhere)  # dangling
    url = ["--base-url", "http://127.0.0.1:9/v1"]
    assert main(["explain", str(nb), *url]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert not elsewhere.exists()
    real = tmp_path / "real.ipynb"
    real.write_text("{}")
    (tmp_path / "out.ipynb").symlink_to(real)
    assert main(["fix", str(nb), "-o", str(tmp_path / "out.ipynb"), "--force", *url]) == 2
    assert real.read_text() == "{}"


def test_help_says_verify_runs_model_code_unsandboxed() -> None:
    fix = build_parser()._subparsers._group_actions[0].choices["fix"]  # type: ignore[union-attr]
    text = " ".join(fix.format_help().split())
    assert "executes code the model wrote, unsandboxed" in text
    assert "unsandboxed" in " ".join(build_parser().format_help().split()).lower()
