"""Key-leak sweep: a recognisable key, every path that talks or fails, and a search for it.

The endpoint requires the key (so it really was sent), then every iopub
message, execute reply, log line, saved notebook, CLI output, error message
and public repr is searched for it. It must be found nowhere.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from glm_magic.testing import EndpointServer, bearer_digest, serve

from ..conftest import PLAIN_KEY
from ..helpers import EXAMPLES, run_example
from .harness import Execution, Kernel, kernel_env

pytestmark = pytest.mark.kernel

KEY = "sk-leaksweep-SHOULDNEVERAPPEAR-9f8e7d6c5b4a"


@pytest.fixture(scope="module")
def keyed() -> Iterator[EndpointServer]:
    with serve(port=0, require_key=KEY) as server:
        yield server


def assert_clean(text: str, where: str) -> None:
    assert KEY not in text, f"the key leaked into {where}"
    assert KEY[10:30] not in text, f"part of the key leaked into {where}"


def test_magics_in_a_kernel_never_show_the_key(keyed: EndpointServer, tmp_path: Path) -> None:
    log_file = tmp_path / "kernel.log"
    k = Kernel(kernel_env(keyed.base_url, RUNAPI_KEY=KEY))
    runs: list[Execution] = []
    try:
        setup = (
            "import logging\n"
            f"logging.basicConfig(filename={str(log_file)!r}, level=logging.DEBUG, force=True)\n"
            "get_ipython().run_line_magic('load_ext', 'glm_magic')\n"
            "get_ipython().run_line_magic('config', 'GlmMagics.max_retries = 1')"
        )
        runs.append(k.run(setup))
        cells = [
            "%%glm -o ok\nWrite a function for squares",
            "%%glm --think\nhello",
            "%%glm --no-stream\nhello",
            "%%glm -m glm-4.7+fault=401\nhello",
            "%%glm -m glm-4.7+fault=429-1302+retry_after=0.05\nhello",
            "%%glm -m glm-4.7+fault=500\nhello",
            "%%glm -m glm-4.7+fault=cut\nhello",
            "%%glm -m glm-4.7+fault=malformed\nhello",
            "%config GlmMagics.read_timeout = 0.5",
            "%%glm -m glm-4.7+fault=stall\nhello",
            "%config GlmMagics.read_timeout = 300.0",
            "%%glm --dry-run --context notebook\nwhat is in here?",
            "%glm config",
            "%glm models",
            "%glm history",
            "%config GlmMagics",
            "x = undefined_thing",
            "%glm explain",
            "%glm fix",
            "%glm fix --dry-run",
            "import glm_magic, glm_magic.ipython.extension as gm\n"
            "m = gm.current()\n"
            "s = m.settings()\n"
            "print(repr(m), repr(s), str(s), repr(s.api_key), repr(m.client(s)), repr(ok),"
            " vars(s), ok._repr_html_())",
            "import pickle; print(pickle.dumps(s))",
            "try:\n    glm_magic.ask('hi', model='glm-4.7+fault=401')\n"
            "except Exception as e:\n    print(repr(e), str(e), e.one_line())",
        ]
        for cell in cells:
            runs.append(k.run(cell))
        # An interrupt mid-reply.
        msg_id = k.start("%%glm -m glm-4.7+tokens=2000+delay=0.01\nlong")
        early = k.wait_for(msg_id, lambda m: m["msg_type"] == "update_display_data")
        k.km.interrupt_kernel()
        stopped = k.collect(msg_id)
        stopped.messages[:0] = early
        runs.append(stopped)
        runs.append(k.run("import logging; logging.shutdown()"))
    finally:
        k.shutdown()
    assert runs[1].status == "ok", runs[1].messages  # the key was sent and accepted
    assert any(r.status == "error" for r in runs)  # and failures were exercised
    assert "Stopped" in json.dumps(stopped.error)
    for i, run in enumerate(runs):
        assert_clean(run.everything(), f"the iopub messages of run {i}")
    assert log_file.exists()
    assert_clean(log_file.read_text(), "the kernel's log file")
    for request in keyed.requests:
        assert_clean(json.dumps(request.to_dict()), "the endpoint's request log")


def test_example_notebooks_and_cli_never_save_the_key(
    keyed: EndpointServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in sorted(EXAMPLES.glob("*.ipynb")):
        nb = run_example(path.name, keyed.base_url, monkeypatch, RUNAPI_KEY=KEY)
        assert_clean(nbformat.writes(nb), f"the executed {path.name}")
    failing = nbformat.v4.new_notebook()
    failing.cells = [
        nbformat.v4.new_code_cell("values = [1, 2]"),
        nbformat.v4.new_code_cell("print(sum(valuez))"),
    ]
    nb_path = tmp_path / "fails.ipynb"
    nbformat.write(failing, nb_path)
    env = dict(os.environ)
    for args in (
        ["run", str(nb_path)],
        ["explain", str(nb_path), "-o", str(tmp_path / "e.ipynb")],
        ["fix", str(nb_path), "--verify", "-o", str(tmp_path / "f.ipynb")],
        ["explain", str(nb_path), "-o", str(tmp_path / "x.ipynb"), "-m", "glm-4.7+fault=401"],
        ["explain", str(nb_path), "-o", str(tmp_path / "y.ipynb"), "-m", "glm-4.7+fault=429"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "glm_magic.cli", *args],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            check=False,
        )
        assert_clean(proc.stdout + proc.stderr, f"glm-magic {args[0]} output")
    written = list(tmp_path.glob("*.ipynb"))
    assert len(written) >= 3
    for path in written:
        assert_clean(path.read_text(), f"the CLI's {path.name}")


def test_public_objects_never_show_the_key(keyed: EndpointServer) -> None:
    import glm_magic
    from glm_magic import errors
    from glm_magic.client.chat import ChatClient
    from glm_magic.config import Secret, resolve_settings

    settings = resolve_settings(base_url=keyed.base_url, environ={"RUNAPI_KEY": KEY})
    assert settings.api_key == Secret(KEY)
    client = ChatClient(settings.with_changes(model="glm-4.7+fault=401", max_retries=0))
    seen: list[str] = [repr(settings), str(settings), repr(client), repr(settings.api_key)]
    seen.append(pickle.dumps(settings).decode("latin-1"))
    for name in glm_magic.__all__:
        seen.append(repr(getattr(glm_magic, name)))
    logger = logging.getLogger("glm_magic")
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        with pytest.raises(errors.AuthenticationError) as info:
            list(client.stream([{"role": "user", "content": "hi"}]))
    finally:
        logger.removeHandler(handler)
        client.close()
    err = info.value
    seen += [repr(err), str(err), err.one_line(), repr(err.partial), *err._render_traceback_()]
    seen += records
    for i, text in enumerate(seen):
        assert_clean(text, f"public object #{i}")


@pytest.fixture(scope="module")
def plain_keyed() -> Iterator[EndpointServer]:
    server = serve(port=0, require_key=PLAIN_KEY)
    try:
        yield server
    finally:
        server.close()


def assert_sent_masked(server: EndpointServer, where: str, *words: str) -> None:
    """Every chat request since the last reset carried the exact key and no copy of it."""
    chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert chats, f"{where}: nothing was sent"
    for request in chats:
        assert request.auth_digest == bearer_digest(PLAIN_KEY), f"{where}: not the exact key"
        body = json.dumps(request.body)
        assert PLAIN_KEY not in body, f"{where}: the configured key reached the endpoint"
        assert PLAIN_KEY[10:] not in body, f"{where}: part of the key reached the endpoint"
    sent = json.dumps([r.body for r in chats])
    for word in words:  # the masked text really was part of what was sent
        assert word in sent, f"{where}: {word!r} was not sent"
    server.reset()


def test_a_key_no_pattern_matches_is_masked_on_every_path(
    plain_keyed: EndpointServer, tmp_path: Path
) -> None:
    # "localproxy-Key-7f3a9c2e" looks like no known key format: only masking the configured
    # key hides it. The cell output and the traceback both carry it.
    k = Kernel(kernel_env(plain_keyed.base_url, RUNAPI_KEY=PLAIN_KEY))
    try:
        assert k.run("%load_ext glm_magic\n%glm buttons on").status == "ok"
        assert k.run("import os\nlabel = os.environ['RUNAPI_KEY']").status == "ok"
        shown = k.run("print('the key is', label)")
        assert PLAIN_KEY in shown.stdout  # the user printed it: it is in the notebook
        failing = k.run("raise ValueError('rejected ' + label)")
        assert failing.status == "error" and PLAIN_KEY in json.dumps(failing.error)
        plain_keyed.reset()
        runs: dict[str, Execution] = {}
        for spec, word in [("notebook", "the key is"), ("error", "rejected"), ("vars", "label")]:
            where = f"--context {spec}"
            cell = f"%%glm --context {spec if spec != 'vars' else 'vars:label'}\nsum up"
            runs[where] = run = k.run(cell)
            assert run.status == "ok", (where, run.messages)
            assert_sent_masked(plain_keyed, where, word)
        for command, word in [
            ("explain", "ValueError: rejected"),
            ("fix", "ValueError: rejected"),
            ("explain -c vars:label", "More context the user selected"),
        ]:
            run = k.run(f"%glm {command}")
            assert run.status == "ok", run.messages
            runs[command] = run
            assert_sent_masked(plain_keyed, f"%glm {command}", word, "label")
        panel = k.run(
            "%glm panel -m glm-4.7 --context notebook\n"
            "_glm_panel.send('what happened?'); _glm_panel.wait(30)"
        )
        assert panel.status == "ok", panel.messages
        runs["panel"] = panel
        assert_sent_masked(plain_keyed, "the panel", "the key is", "rejected")
        count = failing.reply["content"]["execution_count"]
        for kind in ("explain", "fix"):
            button = k.run(
                f"import glm_magic.widgets.buttons as b\nrow = b.rows[{count}]\n"
                f"assert row.start({kind!r})\nrow.wait(30)"
            )
            done = k.run("print(row.reply is not None and row.reply.complete)").stdout
            assert button.status == "ok" and done.strip() == "True", (button.error, done)
            runs[f"{kind} button"] = button
            assert_sent_masked(plain_keyed, f"the {kind} button", "ValueError: rejected")
    finally:
        k.shutdown()
    for where, run in runs.items():
        assert PLAIN_KEY not in run.everything(), f"the key leaked into the output of {where}"

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [
        nbformat.v4.new_code_cell("import os\nprint('the key is', os.environ['RUNAPI_KEY'])"),
        nbformat.v4.new_code_cell("raise ValueError('rejected ' + os.environ['RUNAPI_KEY'])"),
    ]
    path = tmp_path / "keyed.ipynb"
    nbformat.write(nb, path)
    env = {**kernel_env(plain_keyed.base_url, RUNAPI_KEY=PLAIN_KEY), "GLM_MODEL": "glm-4.7"}
    for command in ("explain", "fix"):
        out = tmp_path / f"{command}.ipynb"
        proc = subprocess.run(
            [sys.executable, "-m", "glm_magic.cli", command, str(path), "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=180,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert_sent_masked(plain_keyed, f"glm-magic {command}", "ValueError: rejected")
        assert PLAIN_KEY not in out.read_text(), f"glm-magic {command} saved the key"
        # What the CLI prints (the failing cell's error line) is issue 15's to mask.
