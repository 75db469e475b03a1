"""Failure capture, %glm explain / fix, --insert, --dry-run and secrets, in a real kernel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from glm_magic.testing import EndpointServer

from .harness import Kernel, kernel_env

pytestmark = pytest.mark.kernel

SECRET = "sk-live-PLANTEDSECRET0123456789abcd"

SETUP = [
    "import json",
    "scores = {'alice': 3, 'bob': 5}\nthreshold = 4",
    f'API_KEY = "{SECRET}"\nprint("configured")',
    "passed = [name for name, s in scores.items() if s > threshold]\nprint(passed)",
    "print(totl_score + threshold)",
]


@pytest.fixture
def kernel(endpoint: EndpointServer) -> Kernel:
    k = Kernel(kernel_env(endpoint.base_url))
    yield k
    k.shutdown()


def run_setup(k: Kernel) -> None:
    k.run("%load_ext glm_magic")
    for cell in SETUP[:-1]:
        assert k.run(cell).status == "ok"


def test_failure_capture_leaves_tracebacks_unchanged(endpoint: EndpointServer) -> None:
    with_ext = Kernel(kernel_env(endpoint.base_url))
    without = Kernel(kernel_env(endpoint.base_url))
    try:
        with_ext.run("%load_ext glm_magic")
        without.run("pass")
        cells = ["x = 1", "def f(v):\n    return v / 0", "f(x)", "print(undefined_name)", "1 +"]
        for cell in cells:
            a, b = with_ext.run(cell), without.run(cell)
            assert a.status == b.status
            if a.error is not None:
                assert a.error["traceback"] == b.error["traceback"]  # type: ignore[index]
        log = with_ext.run(
            "from glm_magic.failures import failure_log\n"
            "import json\n"
            "print(json.dumps([[f.execution_count, f.ename, f.source, f.traceback]"
            " for f in failure_log(get_ipython()).all()]))"
        )
        without.run("pass")  # keep execution counts aligned
        got = json.loads(log.stdout)
        assert [g[:3] for g in got] == [
            [4, "ZeroDivisionError", "f(x)"],
            [5, "NameError", "print(undefined_name)"],
            [6, "SyntaxError", "1 +"],
        ]
        zero_tb = got[0][3]
        assert "\x1b[" not in zero_tb
        assert "Cell In[3], line 2, in f" in zero_tb and "return v / 0" in zero_tb
        assert "interactiveshell" not in zero_tb
        # Unloading removes the hook; tracebacks stay as they were.
        with_ext.run("%unload_ext glm_magic")
        after = with_ext.run(
            "ip = get_ipython()\n"
            "print(any('glm_magic' in getattr(cb, '__module__', '')"
            " for cb in ip.events.callbacks['post_run_cell']))"
        )
        assert after.stdout.strip() == "False"
        without.run("pass")
        without.run("pass")
        a, b = with_ext.run("f(x)"), without.run("f(x)")
        assert a.error["traceback"] == b.error["traceback"]  # type: ignore[index]
    finally:
        with_ext.shutdown()
        without.shutdown()


def test_explain_sends_source_traceback_and_defining_cells(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    run_setup(kernel)
    failed = kernel.run(SETUP[-1])
    assert failed.status == "error"
    ex = kernel.run("%glm explain")
    assert ex.status == "ok", ex.messages
    assert "Root cause" in ex.html
    assert "NameError" in ex.stdout and "In [6]" in ex.stdout  # the one-line note
    body = fresh_endpoint.requests[-1].body
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    assert "root cause" in system.lower()
    assert "print(totl_score + threshold)" in user
    assert "NameError: name 'totl_score' is not defined" in user
    assert "Traceback" in user
    assert "threshold = 4" in user  # the cell defining a name the failing line uses
    assert SECRET not in json.dumps(body)
    assert "configured" not in user  # unrelated cells are not sent


def test_fix_streams_and_inserts_exactly_one_cell(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    run_setup(kernel)
    kernel.run(SETUP[-1])
    # ipykernel keeps only the last payload of a source, so a second set_next_input would not
    # show in the reply: count the calls to IPython's own method instead.
    spy = kernel.run(
        "_glm_calls = []\n"
        "_ip = get_ipython()\n"
        "_ip.set_next_input = (lambda orig: lambda *a, **kw: (_glm_calls.append([a, kw]),"
        " orig(*a, **kw))[1])(_ip.set_next_input)"
    )
    assert spy.status == "ok", spy.messages
    try:
        ex = kernel.run("%glm fix -o fixed", cell_id="cell-fix-1")
        calls = json.loads(kernel.run("print(json.dumps(_glm_calls))").stdout)
    finally:
        kernel.run("del get_ipython().set_next_input")  # back to the class's method
    assert ex.status == "ok", ex.messages
    assert len(ex.updates) >= 1
    assert len(calls) == 1, calls
    (text,), kwargs = calls[0]
    assert kwargs == {"replace": False}
    assert ex.payloads == [{"source": "set_next_input", "text": text, "replace": False}]
    code = kernel.run("print(fixed.code, end='')").stdout
    header, rest = text.split("\n", 1)
    assert re.fullmatch(
        r"# generated by glm-5\.1 via glm-magic, \d{4}-\d\d-\d\d \d\d:\d\d UTC"
        r" \[glm:[0-9a-f]{12}/[0-9a-f]{8}\]",  # the request's key and the code's hash
        header,
    )
    assert rest == code.rstrip("\n") + "\n", (rest, code)
    compile(text, "<fix>", "exec")
    assert ex.stdout == (
        "note: fix: NameError: name 'totl_score' is not defined in In [6]"
        " with earlier cell In [3]\n"
        "note: the code will appear as a new cell below when this cell finishes\n"
    )
    # Nothing generated was run: the failing name is still undefined.
    assert kernel.run("print('totl_score' in globals())").stdout.strip() == "False"


def test_insert_in_headless_frontend_says_it_was_not_inserted(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    kernel.run("%load_ext glm_magic")
    ex = kernel.run("%%glm --insert -o made\nWrite a function for squares")
    assert ex.status == "ok"
    assert len([p for p in ex.payloads if p.get("source") == "set_next_input"]) == 1
    assert "not inserted" in ex.stdout and "print(made.code)" in ex.stdout
    lab = kernel.run("%%glm --insert\nWrite code for cubes", cell_id="abc-123")
    assert "new cell below" in lab.stdout


def test_dry_run_sends_nothing(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    run_setup(kernel)
    kernel.run(SETUP[-1])
    before = len(fresh_endpoint.requests)
    ex = kernel.run("%%glm --dry-run --context notebook\nWhat does my notebook do?")
    assert ex.status == "ok", ex.messages
    assert "What does my notebook do?" in ex.stdout
    assert "token" in ex.stdout.lower() and "$" in ex.stdout
    assert SECRET not in ex.everything()
    fix = kernel.run("%glm fix --dry-run -c vars:scores")
    assert "print(totl_score + threshold)" in fix.stdout
    assert "More context the user selected" in fix.stdout and "'alice'" in fix.stdout
    assert len(fresh_endpoint.requests) == before


def test_secrets_in_context_never_reach_the_endpoint(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    run_setup(kernel)
    kernel.run(SETUP[-1])
    ex = kernel.run(
        "%%glm --context notebook --context error --context vars:API_KEY,scores\nsum up"
    )
    assert ex.status == "ok", ex.messages
    sent = json.dumps(fresh_endpoint.requests[-1].body)
    assert SECRET not in sent
    assert "threshold = 4" in sent and "totl_score" in sent
    assert "secret" in ex.stdout.lower()  # the user is told something was masked


def test_bad_context_and_no_failure_are_usage_errors(kernel: Kernel) -> None:
    kernel.run("%load_ext glm_magic")
    bad = kernel.run("%%glm --context cels:3\nhi")
    assert bad.status == "error" and bad.error["ename"] == "UsageError"  # type: ignore[index]
    none = kernel.run("%glm explain")
    assert none.status == "error" and "no failed cell" in none.stderr
    missing = kernel.run("%glm fix 99")
    assert "did not fail" in missing.stderr


def test_buttons_setting_turns_them_on_and_off(kernel: Kernel) -> None:
    kernel.run("%load_ext glm_magic")
    state = kernel.run("%glm buttons")
    assert "off" in state.stdout
    kernel.run("%config GlmMagics.buttons = True")
    assert " on " in kernel.run("%glm buttons").stdout
    failed = kernel.run("1 / 0")
    views = [
        m for m in failed.of("display_data") if "application/vnd.jupyter.widget-view+json" in str(m)
    ]
    assert len(views) == 1  # the Explain / Fix row under the traceback
    kernel.run("%config GlmMagics.buttons = False")
    assert "off" in kernel.run("%glm buttons").stdout
    again = kernel.run("1 / 0")
    assert not again.of("display_data")


def test_insert_into_a_notebook_file(
    endpoint: EndpointServer, fresh_endpoint: EndpointServer, tmp_path: Path
) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("# notes")]
    first_id, second_id = nb.cells[0].id, nb.cells[1].id
    path = tmp_path / "analysis.ipynb"
    nbformat.write(nb, path)
    # The kernel knows its notebook the way jupyter_server tells it: JPY_SESSION_NAME.
    k = Kernel(kernel_env(endpoint.base_url, JPY_SESSION_NAME=str(path)))
    try:
        k.run("%load_ext glm_magic")
        none = k.run("%glm insert")
        assert none.status == "error" and "no reply yet" in none.stderr
        k.run("%%glm -o made\nWrite a function for squares")
        ex = k.run(f"%glm insert --file {path} --after {first_id}")
        assert ex.status == "ok", ex.messages
        assert f"after cell {first_id}" in ex.stdout
        saved = nbformat.read(path, as_version=4)
        assert saved.cells[0].id == first_id
        assert saved.cells[2].id == second_id  # the new cell went between them
        new = saved.cells[1]
        assert new.cell_type == "code" and "def " in new.source
        assert new.source.startswith("# generated by glm-5.1 via glm-magic")
        assert new.metadata["glm_magic"]["generated"] is True
        assert new.metadata["glm_magic"]["model"] == "glm-5.1"
        nbformat.validate(saved)
        # Without --file: the current notebook, after the running cell (JupyterLab sends its id).
        ex = k.run("%glm insert --reply made", cell_id=second_id)
        assert ex.status == "ok", ex.messages
        saved = nbformat.read(path, as_version=4)
        assert [c.cell_type for c in saved.cells] == ["code", "code", "markdown", "code"]
        bad = k.run("%glm insert --file missing.ipynb")
        assert bad.status == "error" and "missing.ipynb" in bad.stderr
    finally:
        k.shutdown()
