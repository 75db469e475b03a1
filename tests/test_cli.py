"""End-to-end tests of the ``glm-magic`` command line.

Notebooks are real files run by nbclient in real kernels; the model is the
bundled endpoint over loopback. Each test starts one or two kernels (~1-2 s).
"""

from __future__ import annotations

import io
import itertools
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest

from glm_magic import __version__, cli
from glm_magic.cli import main
from glm_magic.cli import report as cli_report
from glm_magic.cli.report import Console, stream_reply
from glm_magic.client.chat import ChatClient
from glm_magic.config import resolve_settings
from glm_magic.markdown import close_open_fence, without_code
from glm_magic.testing import EndpointServer

from .helpers import clear_glm_env

CLI_KEY = "sk-clitest-FAKE-0123456789"

PASSING = "import math\nprint(math.sqrt(16))"
DEFINES = "values = [1, 2, 3]"
FAILING = "print(sum(valuez))"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_glm_env(monkeypatch)


def make_notebook(path: Path, sources: list[str], *, minor: int | None = None) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook with a typo")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    if minor is not None:  # an nbformat 4.4 notebook: no cell ids
        nb.nbformat_minor = minor
        for cell in nb.cells:
            del cell["id"]
    nbformat.write(nb, path)
    return path


def typo_notebook(tmp_path: Path, name: str = "typo.ipynb", failing: str = FAILING) -> Path:
    return make_notebook(tmp_path / name, [PASSING, DEFINES, failing, "print('after')"])


def read(path: Path) -> Any:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def user_prompt(endpoint: EndpointServer) -> str:
    messages = endpoint.requests[-1].body["messages"]
    return str(next(m["content"] for m in messages if m["role"] == "user"))


def err_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith("glm-magic:")]


# --------------------------------------------------------------------------- no kernel


def test_version_help_and_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"glm-magic {__version__}"
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "glm-magic fix analysis.ipynb --verify" in out
    assert main(["fix", "-h"]) == 0
    assert "--verify" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["explain", "x.ipynb", "-o", "y.ipynb", "--in-place"]) == 2
    assert "not allowed with" in capsys.readouterr().err


def test_importing_the_cli_stays_light() -> None:
    code = (
        "import sys, glm_magic.cli\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "heavy = roots & {'IPython', 'nbclient', 'nbformat'}\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_key_fails_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = typo_notebook(tmp_path)

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the CLI touched the network")

    def no_kernel(*args: object, **kwargs: object) -> None:
        raise AssertionError("the CLI started a kernel")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(cli, "execute_notebook", no_kernel)
    assert main(["explain", str(nb), "--base-url", "https://runapi.ai/v1"]) == 2
    captured = capsys.readouterr()
    assert err_lines(captured.err) == captured.err.strip().splitlines()
    assert len(err_lines(captured.err)) == 1
    assert "Missing API key" in captured.err and "RUNAPI_KEY" in captured.err
    assert main(["fix", str(nb), "--key-env", "MY_GLM_KEY"]) == 2  # default base URL: RunAPI
    assert "MY_GLM_KEY" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typo.ipynb"]


def test_output_path_rules_are_checked_before_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_kernel(*args: object, **kwargs: object) -> None:
        raise AssertionError("the CLI started a kernel")

    monkeypatch.setattr(cli, "execute_notebook", no_kernel)
    nb = typo_notebook(tmp_path)
    url = ["--base-url", "http://127.0.0.1:9/v1"]
    assert main(["fix", str(nb), "-o", str(nb), *url]) == 2
    assert "--in-place" in capsys.readouterr().err
    existing = tmp_path / "typo.explained.ipynb"
    existing.write_text("mine")
    assert main(["explain", str(nb), *url]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err and len(err.strip().splitlines()) == 1
    assert main(["explain", str(nb), "-o", str(tmp_path / "no" / "out.ipynb"), *url]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert existing.read_text() == "mine"
    assert main(["run", str(tmp_path / "missing.ipynb")]) == 2
    assert "not found" in capsys.readouterr().err


def test_without_code_keeps_prose_and_other_languages() -> None:
    text = "**Diagnosis:** typo.\n\n```python\nprint(1)\n```\n\n```text\nout\n```\n\nRun it."
    assert without_code(text) == "**Diagnosis:** typo.\n\n```text\nout\n```\n\nRun it."
    assert without_code("just prose") == "just prose"


def test_without_code_keeps_a_cut_block_and_it_can_be_closed() -> None:
    text = "Fix:\n\n```python\nprint(1)\n```\n\nMore:\n\n~~~~python\nfor i in x:\n    pri"
    kept = without_code(text, closed_only=True)
    assert kept == "Fix:\n\nMore:\n\n~~~~python\nfor i in x:\n    pri"
    assert close_open_fence(kept) == kept + "\n~~~~"
    closed = "Fix:\n\n```python\nprint(1)\n```"
    assert close_open_fence(closed) == closed
    assert without_code(text) == "Fix:\n\nMore:"  # complete: the open block is code too


def test_progress_lines_off_a_terminal_at_a_fixed_pace(fresh_endpoint: EndpointServer) -> None:
    settings = resolve_settings(
        base_url=fresh_endpoint.base_url, model="glm-4.7+tokens=40+delay=0.05"
    )
    messages = [{"role": "user", "content": "hi"}]
    plain_err, tty_err = io.StringIO(), io.StringIO()
    with ChatClient(settings) as client:
        plain = Console(err=plain_err, tty=False, progress_every=0.1)
        reply = stream_reply(client, messages, "In [3] explain", plain)
        terminal = Console(err=tty_err, tty=True, progress_every=0.1)
        stream_reply(client, messages, "In [3] explain", terminal)
    assert len(reply.text) == 160
    lines = plain_err.getvalue().splitlines()
    assert lines, "a 2 s reply at a 0.1 s pace printed no progress line"
    pattern = re.compile(r"In \[3\] explain: (\d+) tokens so far, \d+ s elapsed")
    counts = [int(m.group(1)) for m in map(pattern.fullmatch, lines) if m is not None]
    assert len(counts) == len(lines), lines  # whole lines, nothing else
    assert counts == sorted(counts) and counts[-1] <= 40
    assert "\r" not in plain_err.getvalue()
    assert "tokens so far" not in tty_err.getvalue()  # a terminal has its status line


def test_cli_progress_while_cells_run_and_replies_stream(
    tmp_path: Path,
    fresh_endpoint: EndpointServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli_report, "PROGRESS_EVERY", 0.1)
    nb = make_notebook(tmp_path / "slow.ipynb", ["import time\ntime.sleep(1)", FAILING])
    model = "glm-4.7+tokens=30+delay=0.05"
    args = ["explain", str(nb), "--model", model, "--base-url", fresh_endpoint.base_url]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert re.search(r"^running cell 1/2, \d+ s elapsed$", err, re.MULTILINE), err
    assert re.search(r"^In \[2\] explain: \d+ tokens so far, \d+ s elapsed$", err, re.MULTILINE)


def test_streaming_status_is_throttled_on_a_tty(fresh_endpoint: EndpointServer) -> None:
    settings = resolve_settings(
        base_url=fresh_endpoint.base_url, model="glm-4.7+tokens=60+delay=0.02"
    )
    messages = [{"role": "user", "content": "hi"}]

    class Timed(io.StringIO):
        """Notes when each status line was written."""

        def __init__(self) -> None:
            super().__init__()
            self.at: list[tuple[float, str]] = []

        def write(self, text: str) -> int:
            self.at.append((time.monotonic(), text))
            return super().write(text)

    tty_err, plain_err = Timed(), io.StringIO()
    with ChatClient(settings) as client:
        reply = stream_reply(client, messages, "In [1] explain", Console(err=tty_err, tty=True))
        stream_reply(client, messages, "In [1] explain", Console(err=plain_err, tty=False))
    assert len(reply.text) == 240
    written = tty_err.getvalue()
    counts = [t for t, text in tty_err.at if " tokens, " in text]
    # The stream lasts at least 60 x 0.02 s, so the count is shown more than once.
    assert len(counts) >= 2, written
    # Throttled to 4 a second: consecutive counts are at least 0.25 s apart (a lower bound the
    # console guarantees; a slow machine only spreads them further), so never one per token.
    gaps = [b - a for a, b in itertools.pairwise(counts)]
    assert all(gap >= 0.25 - 0.01 for gap in gaps), gaps
    assert written.startswith("\rIn [1] explain: waiting for the first token")
    assert "In [1] explain: " in written and " tokens, " in written
    assert written.endswith("\r\x1b[K")  # the status line is erased at the end
    assert plain_err.getvalue() == ""  # not a terminal: the caller prints one final line


def test_public_names() -> None:
    from glm_magic.cli import args as cli_args
    from glm_magic.cli import cells as cli_cells
    from glm_magic.cli import exec as cli_exec

    assert set(cli.__all__) == {"CliError", "build_parser", "main"}
    for module in (cli, cli_args, cli_cells, cli_exec, cli_report):
        for name in module.__all__:
            assert getattr(module, name).__doc__, f"{module.__name__}.{name} has no docstring"


# --------------------------------------------------------------------------- with kernels


def test_run_names_the_failing_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nb = typo_notebook(tmp_path)
    before = nb.read_bytes()
    assert main(["run", str(nb)]) == 1
    captured = capsys.readouterr()
    cell_id = read(nb).cells[3].id
    assert captured.out.splitlines() == [
        f"In [3] (cell 4, id {cell_id}): NameError: name 'valuez' is not defined"
    ]
    assert "1 failed" in captured.err
    assert nb.read_bytes() == before
    clean = make_notebook(tmp_path / "clean.ipynb", [PASSING, DEFINES])
    assert main(["run", str(clean), "--timeout", "60"]) == 0
    assert capsys.readouterr().out == ""


def test_explain_writes_a_cell_below_the_failure(
    tmp_path: Path, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = typo_notebook(tmp_path)
    before = nb.read_bytes()
    out = tmp_path / "out.ipynb"
    args = ["explain", str(nb), "-o", str(out), "--base-url", fresh_endpoint.base_url, "--show"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert nb.read_bytes() == before
    cells = read(out).cells
    assert [c.cell_type for c in cells] == ["markdown", "code", "code", "code", "markdown", "code"]
    explanation = cells[4]
    assert explanation.source.startswith("**glm-magic: why In [3] failed**")
    assert "Root cause" in explanation.source and "<sub>glm-5.1" in explanation.source
    assert explanation.metadata["glm_magic"]["generated"] is True
    assert cells[1].outputs[0]["text"] == "4.0\n"  # the executed notebook, outputs kept
    assert cells[3].outputs[0]["ename"] == "NameError"
    assert "Root cause" in captured.out  # --show
    assert f"wrote {out}" in captured.out
    assert "In [3] explain: glm-5.1" in captured.err and "total: 1 reply" in captured.err
    prompt = user_prompt(fresh_endpoint)
    assert FAILING in prompt
    assert "Traceback" in prompt and "NameError: name 'valuez' is not defined" in prompt
    # A second run refuses to replace the file it wrote, unless --force.
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    assert read(out).cells[4].source == explanation.source


def test_fix_in_place_verify(
    tmp_path: Path, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The failing line also uses the right name, so the scripted endpoint can repair it today.
    nb = typo_notebook(tmp_path, failing="print(sum(valuez), len(values))")
    args = ["fix", str(nb), "--in-place", "--verify", "--base-url", fresh_endpoint.base_url]
    assert main([*args, "--model", "glm-4.7"]) == 0
    captured = capsys.readouterr()
    cells = read(nb).cells
    assert [c.cell_type for c in cells][3:6] == ["code", "markdown", "code"]
    diagnosis, fixed = cells[4], cells[5]
    assert diagnosis.source.startswith("**glm-magic: fix for In [3]**")
    assert "Diagnosis" in diagnosis.source and "```" not in diagnosis.source
    assert fixed.source.splitlines()[0] == "# fixed by glm-4.7 via glm-magic"
    assert "print(sum(values), len(values))" in fixed.source
    assert "In [3]: fix works" in captured.out.splitlines()
    prompt = user_prompt(fresh_endpoint)
    assert "### Earlier cell In [2]" in prompt and DEFINES in prompt  # the defining cell
    assert "print(sum(valuez), len(values))" in prompt and "Traceback" in prompt


def test_fix_verify_repairs_a_name_defined_earlier(
    tmp_path: Path, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = typo_notebook(tmp_path)
    assert main(["fix", str(nb), "--verify", "--base-url", fresh_endpoint.base_url]) == 0
    fixed = read(tmp_path / "typo.fixed.ipynb").cells[5]
    assert fixed.source.splitlines()[0] == "# fixed by glm-5.1 via glm-magic"
    assert "In [3]: fix works" in capsys.readouterr().out
    assert DEFINES in user_prompt(fresh_endpoint)


def test_fix_that_still_fails_is_reported(
    tmp_path: Path, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = make_notebook(tmp_path / "bad.ipynb", ["int('x')"])
    assert main(["fix", str(nb), "--verify", "--base-url", fresh_endpoint.base_url]) == 1
    out = capsys.readouterr().out
    assert "In [1]: fix still fails: ValueError: invalid literal" in out
    assert (tmp_path / "bad.fixed.ipynb").exists()


def test_in_place_refuses_a_concurrent_change(
    tmp_path: Path, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first cell rewrites the notebook's own file while the notebook runs.
    touch = "import pathlib\np = pathlib.Path('busy.ipynb')\np.write_bytes(p.read_bytes() + b'\\n')"
    nb = make_notebook(tmp_path / "busy.ipynb", [touch, DEFINES, FAILING])
    before = nb.read_bytes()
    assert main(["explain", str(nb), "--in-place", "--base-url", fresh_endpoint.base_url]) == 2
    err = capsys.readouterr().err
    assert len(err_lines(err)) == 1
    assert "Notebook changed" in err_lines(err)[0] and "changed on disk" in err_lines(err)[0]
    assert nb.read_bytes() == before + b"\n"  # the concurrent change is kept
    assert fresh_endpoint.requests == []  # refused before paying for a reply


@pytest.mark.parametrize(
    ("model", "status", "label"),
    [("glm-4.7+fault=401", 2, "Authentication failed"), ("glm-4.7+fault=cut", 1, "Stream broken")],
)
def test_model_errors_give_one_line_and_write_nothing(
    tmp_path: Path,
    fresh_endpoint: EndpointServer,
    capsys: pytest.CaptureFixture[str],
    model: str,
    status: int,
    label: str,
) -> None:
    nb = typo_notebook(tmp_path)
    args = ["explain", str(nb), "--model", model, "--base-url", fresh_endpoint.base_url]
    assert main(args) == status
    err = capsys.readouterr().err
    assert len(err_lines(err)) == 1 and label in err_lines(err)[0]
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["typo.ipynb"]


def test_old_notebook_cascade_and_max_fixes(
    tmp_path: Path, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # In [1] fails before binding `data`, so In [2] fails only because of it.
    sources = ["data = load_data()", "print(len(data))", "1 / 0"]
    nb = make_notebook(tmp_path / "old.ipynb", sources, minor=4)
    out = tmp_path / "old.out.ipynb"
    args = ["explain", str(nb), "-o", str(out), "--max-fixes", "2"]
    assert main([*args, "--base-url", fresh_endpoint.base_url]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[:3] == [
        "In [1] (cell 2): NameError: name 'load_data' is not defined",
        "In [2] (cell 3): NameError: name 'data' is not defined "
        "(may only follow from In [1], which failed first)",
        "In [3] (cell 4): ZeroDivisionError: division by zero",
    ]
    assert "In [2]: skipped (--max-fixes 2)" in captured.err  # the dependent one waits
    assert "later failures may only follow" in captured.err
    assert len(fresh_endpoint.requests) == 2
    written = read(out)
    assert (written.nbformat, written.nbformat_minor) == (4, 4)
    kinds = [c.cell_type for c in written.cells]
    assert kinds == ["markdown", "code", "markdown", "code", "code", "markdown"]
    assert all("id" not in c for c in written.cells)
    assert written.cells[2].source.startswith("**glm-magic: why In [1] failed**")
    assert written.cells[5].source.startswith("**glm-magic: why In [3] failed**")


def test_a_cut_explanation_is_written_with_its_note(
    tmp_path: Path, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = typo_notebook(tmp_path)
    args = ["explain", str(nb), "--max-tokens", "30", "--base-url", fresh_endpoint.base_url]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "nothing inserted" not in err and "nothing written" not in err
    assert "In [3] explain: warning: Cut at 30 tokens: your max_tokens cap (30)" in err
    assert fresh_endpoint.requests[-1].body["max_tokens"] == 30
    cell = read(tmp_path / "typo.explained.ipynb").cells[4]
    assert cell.source.startswith("**glm-magic: why In [3] failed**")
    assert "Root cause" in cell.source  # the text that arrived is kept
    note = "**⚠ Cut at 30 tokens: your max\\_tokens cap (30) was reached; allow more"
    assert note in cell.source and "finish: length" in cell.source


def test_a_fix_cut_inside_a_later_block_inserts_only_the_closed_one(
    tmp_path: Path, fresh_endpoint: EndpointServer, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = typo_notebook(tmp_path)
    model = "glm-4.7+fault=length_in_code"
    assert main(["fix", str(nb), "--model", model, "--base-url", fresh_endpoint.base_url]) == 0
    err = capsys.readouterr().err
    assert "In [3] fix: the reply was cut inside a code block, which was left out" in err
    cells = read(tmp_path / "typo.fixed.ipynb").cells
    diagnosis, fixed = cells[4], cells[5]
    assert fixed.cell_type == "code" and "print(sum(values))" in fixed.source
    assert "running_totals" not in fixed.source
    # The unfinished block stays readable in the diagnosis, closed, before the note.
    assert "def running_totals(values):" in diagnosis.source
    head = diagnosis.source.split("**⚠ Cut at")[0]
    assert head.count("```") % 2 == 0 and "left out of it" in head


def test_subprocess_never_shows_the_key(tmp_path: Path, endpoint: EndpointServer) -> None:
    leak = "import os\nprint('key:', os.environ.get('RUNAPI_KEY'))"
    nb = make_notebook(tmp_path / "leaky.ipynb", [leak, DEFINES, FAILING])
    env = {**os.environ, "RUNAPI_KEY": CLI_KEY, "PYTHONIOENCODING": "utf-8"}
    for name in ("GLM_API_KEY", "GLM_BASE_URL", "GLM_MODEL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "glm_magic.cli", "explain", str(nb), "--show"]
    done = subprocess.run(
        [*command, "--base-url", endpoint.base_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "leaky.explained.ipynb"
    assert f"wrote {out}" in done.stdout
    assert "masked the API key in 1 place of outputs" in done.stderr
    assert CLI_KEY not in done.stdout + done.stderr
    assert CLI_KEY not in out.read_text()
    assert "key: ***" in read(out).cells[1].outputs[0]["text"]
    assert CLI_KEY not in str(endpoint.requests[-1].body)
