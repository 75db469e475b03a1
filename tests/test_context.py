"""Tests for glm_magic.context: real nbformat notebooks, real masking, no mocks of our code."""

from __future__ import annotations

import base64
import re
import string
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.history import HistoryOutput
from nbformat import v4

from glm_magic import context as ctx
from glm_magic.context import (
    NO_OUTPUTS_NOTE,
    CellRecord,
    ContextSpec,
    build_context,
    build_context_from_cells,
    build_context_from_notebook,
    cells_from_notebook,
    cells_from_shell,
    dry_run_report,
    parse_spec,
    summarize_variable,
)
from glm_magic.context.cells import shorten
from glm_magic.errors import ConfigError
from glm_magic.failures import Failure, failure_log
from glm_magic.models import estimate_tokens, model_info

OPENAI_STYLE = "sk-proj-Zq8vR2xLmN4pT6wY0bC3dF5gH7jK9aS1"
API_VALUE = "p7Qw9xZr2LmV4nB8"
USAGE = "use cells ranges (3-5, last:4), error, vars:a,b, notebook or none"


# ----------------------------------------------------------------------------- spec


def test_public_names_exist() -> None:
    import importlib

    for name in (
        "context",
        "context.cells",
        "context.fit",
        "context.report",
        "context.spec",
        "context.vars",
    ):
        module = importlib.import_module(f"glm_magic.{name}")
        for public in module.__all__:
            assert hasattr(module, public), (name, public)
    assert {
        "ContextSpec",
        "parse_spec",
        "CellRecord",
        "ContextBlock",
        "build_context",
        "build_context_from_cells",
        "build_context_from_notebook",
        "cells_from_shell",
        "cells_from_notebook",
        "summarize_variable",
        "dry_run_report",
    } <= set(ctx.__all__)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("3", ContextSpec(cells=(3,))),
        ("3-5", ContextSpec(cells=(3, 4, 5))),
        ("cells:3-5,8", ContextSpec(cells=(3, 4, 5, 8))),
        ("cells: 3-5, 8", ContextSpec(cells=(3, 4, 5, 8))),
        ("last:4", ContextSpec(last=4)),
        ("last", ContextSpec(last=1)),
        ("error", ContextSpec(error=True)),
        ("ERROR", ContextSpec(error=True)),
        ("vars:df,model", ContextSpec(variables=("df", "model"))),
        ("vars: df, model", ContextSpec(variables=("df", "model"))),
        ("notebook", ContextSpec(notebook=True)),
        ("last:4 error vars:x", ContextSpec(last=4, error=True, variables=("x",))),
        ("last:2+error+3", ContextSpec(cells=(3,), last=2, error=True)),
        ("last:2 last:6 last:3", ContextSpec(last=6)),
        ("vars:a vars:b,a 5 2-3", ContextSpec(cells=(2, 3, 5), variables=("a", "b"))),
        ("none", ContextSpec()),
        ("", ContextSpec()),
        ("   ", ContextSpec()),
    ],
)
def test_parse_spec_accepts(words: str, expected: ContextSpec) -> None:
    assert parse_spec(words) == expected


def test_parse_spec_takes_a_sequence_of_items() -> None:
    spec = parse_spec(["last:3", "error", "vars:df", "vars:model,df"])
    assert spec == ContextSpec(last=3, error=True, variables=("df", "model"))
    assert parse_spec([]) == ContextSpec()
    assert parse_spec([]).empty and parse_spec("none").empty
    assert not spec.empty


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("cels:3", f"unknown context 'cels:3'; {USAGE}"),
        ("everything", f"unknown context 'everything'; {USAGE}"),
        ("3-x", f"unknown context '3-x'; {USAGE}"),
        ("cells:", f"unknown context 'cells:'; {USAGE}"),
        ("last:x", "bad context 'last:x': last needs a number of cells, e.g. last:4"),
        ("last:0", "bad context 'last:0': last needs a number of cells, e.g. last:4"),
        ("5-3", "bad cell range '5-3': it ends before it starts"),
        ("0", "bad cell number in '0': execution counts start at 1"),
        ("1-20000", "cell range '1-20000' is too large (at most 10,000 cells)"),
        ("vars:1a", f"bad variable name '1a' in 'vars:1a'; {USAGE}"),
        ("vars:", f"bad variable name '' in 'vars:'; {USAGE}"),
        ("none error", "context 'none' cannot be combined with 'error'"),
    ],
)
def test_parse_spec_rejects_with_one_clear_line(words: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(words)
    assert info.value.message == message
    assert "\n" not in info.value.one_line()


def test_parse_spec_rejects_non_text() -> None:
    with pytest.raises(ConfigError, match="must be text"):
        parse_spec([3])  # type: ignore[list-item]


specs = st.builds(
    ContextSpec,
    cells=st.lists(st.integers(1, 500), max_size=8).map(lambda xs: tuple(sorted(set(xs)))),
    last=st.integers(0, 50),
    error=st.booleans(),
    variables=st.lists(
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), max_size=4, unique=True
    ).map(tuple),
    notebook=st.booleans(),
)


@given(specs)
def test_spec_words_round_trip(spec: ContextSpec) -> None:
    assert parse_spec(str(spec)) == spec


# ----------------------------------------------------------------------------- notebooks

ANSI_TRACEBACK = [
    "\x1b[31m---------------------------------------------------------------------------\x1b[39m",
    "\x1b[31mNameError\x1b[39m                                 Traceback (most recent call last)",
    "\x1b[36mCell\x1b[39m \x1b[32mIn[4]\x1b[39m, line 1\n\x1b[32m----> 1\x1b[39m undefined_name\n",
    "\x1b[31mNameError\x1b[39m: name 'undefined_name' is not defined",
]


def png_b64(kib: int) -> str:
    return base64.b64encode(b"\x89PNG" + b"\0" * (kib * 1024 - 4)).decode()


def make_notebook() -> Any:
    nb = v4.new_notebook()
    first = v4.new_code_cell("x = [1, 2, 3]\nprint(len(x))", execution_count=1)
    first.outputs = [v4.new_output("stream", name="stdout", text="3\n")]
    second = v4.new_code_cell("%matplotlib inline\nplot(x)\nx", execution_count=2)
    second.outputs = [
        v4.new_output(
            "display_data", data={"image/png": png_b64(34), "text/plain": "<Figure size 640x480>"}
        ),
        v4.new_output("display_data", data={"text/html": "<b>only html</b>" * 100}),
        v4.new_output("execute_result", data={"text/plain": "[1, 2, 3]"}, execution_count=2),
    ]
    third = v4.new_code_cell("for i in tqdm(x): pass", execution_count=3)
    third.outputs = [
        v4.new_output("stream", name="stderr", text="\x1b[32m 10%\r 50%\r100%\x1b[0m\ndone\n")
    ]
    failing = v4.new_code_cell("print('before')\nundefined_name", execution_count=4)
    failing.outputs = [
        v4.new_output("stream", name="stdout", text="before\n"),
        v4.new_output(
            "error",
            ename="NameError",
            evalue="name 'undefined_name' is not defined",
            traceback=ANSI_TRACEBACK,
        ),
    ]
    never_run = v4.new_code_cell("print('never run')")
    nb.cells = [v4.new_markdown_cell("# Title"), first, second, third, failing, never_run]
    return nb


def test_cells_from_notebook_renders_outputs_as_plain_text() -> None:
    cells = cells_from_notebook(make_notebook())
    assert sorted(cells) == [1, 2, 3, 4]  # markdown and never-run cells are skipped
    assert cells[1] == CellRecord(1, "x = [1, 2, 3]\nprint(len(x))", ["3\n"])
    assert cells[2].outputs == [
        "[image/png output, 34 KB] <Figure size 640x480>",
        "[text/html output, 2 KB]",
        "[1, 2, 3]",
    ]
    assert cells[3].outputs == ["100%\ndone\n"]  # colours and overwritten progress gone
    assert cells[4].outputs == ["before\n"]
    error = cells[4].error or ""
    assert "\x1b" not in error
    assert error.splitlines()[-1] == "NameError: name 'undefined_name' is not defined"


def test_cells_from_notebook_reads_raw_json_lists_too(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_notebook(), str(path))
    import json

    raw = json.loads(path.read_text())  # sources and texts stored as lists of lines
    assert cells_from_notebook(raw) == cells_from_notebook(nbformat.read(str(path), 4))


def test_duplicate_execution_counts_keep_the_later_cell() -> None:
    nb = v4.new_notebook()
    nb.cells = [v4.new_code_cell("a", execution_count=1), v4.new_code_cell("b", execution_count=1)]
    assert cells_from_notebook(nb)[1].source == "b"


def test_build_from_notebook_file_with_error_and_image(tmp_path: Path) -> None:
    path = tmp_path / "nb.ipynb"
    nbformat.write(make_notebook(), str(path))
    block = build_context_from_notebook(path, parse_spec("notebook error"), budget_tokens=4000)
    text = block.text
    assert text.startswith("## Notebook context\n")
    assert "### Cell In [1]\n```python\nx = [1, 2, 3]\nprint(len(x))\n```\nOutput:\n" in text
    assert "[image/png output, 34 KB]" in text and png_b64(34)[:40] not in text
    # The failing cell appears once, as the failure, with what it printed first.
    assert "### Cell In [4]" not in text
    assert "### Failure in In [4]: NameError: name 'undefined_name' is not defined" in text
    assert "Output before the error:\n```text\nbefore\n```" in text
    assert "Traceback:" in text
    assert block.cells == [1, 2, 3, 4]
    assert block.notes == []
    assert block.tokens == estimate_tokens(text) <= 4000
    # The same through build_context with a path, and with a LoadedNotebook.
    assert build_context(str(path), "notebook error", 4000).text == text
    from glm_magic.notebook import read_notebook

    assert (
        build_context_from_notebook(
            read_notebook(path), parse_spec("notebook error"), budget_tokens=4000
        ).text
        == text
    )


def test_notebook_has_no_live_variables() -> None:
    block = build_context_from_notebook(make_notebook(), parse_spec("vars:x"), budget_tokens=500)
    assert block.text == ""
    assert block.notes == ["variables are not available from a notebook file"]


# ----------------------------------------------------------------------------- selection


def records(n: int, output: str = "out {n}\n") -> dict[int, CellRecord]:
    return {i: CellRecord(i, f"step_{i} = {i}", [output.format(n=i)]) for i in range(1, n + 1)}


def test_last_takes_the_cells_before_the_current_one_and_never_it() -> None:
    cells = records(8)
    block = build_context_from_cells(
        cells, parse_spec("last:3"), budget_tokens=2000, current_count=6
    )
    assert block.cells == [3, 4, 5]
    assert "step_6" not in block.text
    for spec in ("notebook", "cells:6", "6 last:10"):
        block = build_context_from_cells(
            cells, parse_spec(spec), budget_tokens=9000, current_count=6
        )
        assert 6 not in block.cells and "step_6 " not in block.text
    assert build_context_from_cells(
        cells, parse_spec("notebook"), budget_tokens=9000, current_count=6
    ).cells == [1, 2, 3, 4, 5]


def test_missing_cells_and_failure_and_variables_give_notes() -> None:
    block = build_context_from_cells(
        records(3), parse_spec("cells:2,9,10 error vars:nope"), budget_tokens=2000
    )
    assert block.cells == [2]
    assert block.notes == [
        "not in this session's history: In [9], In [10]",
        "no failure recorded yet",
        "variable 'nope' does not exist here, so nothing was sent for it",
    ]


def test_outputs_note_only_when_cells_are_selected() -> None:
    cells = records(2)
    with_cells = build_context_from_cells(
        cells, parse_spec("last:1"), budget_tokens=500, outputs_note=NO_OUTPUTS_NOTE
    )
    assert with_cells.notes == [NO_OUTPUTS_NOTE]
    only_vars = build_context_from_cells(
        cells,
        parse_spec("vars:a"),
        budget_tokens=500,
        variables={"a": 1},
        outputs_note=NO_OUTPUTS_NOTE,
    )
    assert only_vars.notes == []
    assert "- `a`: int = 1" in only_vars.text


def test_empty_spec_gives_an_empty_block() -> None:
    block = build_context_from_cells(records(3), parse_spec("none"), budget_tokens=1000)
    assert block == ctx.ContextBlock() and block.empty


def failure_of(count: int, source: str = "boom()") -> Failure:
    return Failure(
        count,
        source,
        "ValueError",
        "bad value",
        f"Traceback (most recent call last):\n  Cell In[{count}], line 1\nValueError: bad value",
    )


def test_failure_is_kept_with_recent_cells_when_older_ones_must_go() -> None:
    cells = records(60, output="{n} " + "x" * 800)
    cells[55] = CellRecord(55, "boom()", ["partial output"])
    block = build_context_from_cells(
        cells,
        parse_spec("notebook error"),
        budget_tokens=1500,
        failure=failure_of(55),
        current_count=61,
    )
    assert block.tokens <= 1500
    assert "### Failure in In [55]: ValueError: bad value" in block.text
    assert "ValueError: bad value\n```" in block.text  # the traceback's last line survives
    assert "### Cell In [60]" in block.text  # the most recent cell is kept
    assert "### Cell In [1]\n" not in block.text
    kept = block.cells
    assert kept == sorted(kept) and kept[-1] == 60 and 55 in kept
    cell_counts = [n for n in kept if n != 55]
    assert cell_counts == [n for n in range(cell_counts[0], 61) if n != 55]  # newest, unbroken
    [note] = block.notes
    left_out = 59 - len(cell_counts)
    assert re.fullmatch(
        rf"context trimmed to fit 1,500 tokens: \d+ outputs? shortened, {left_out} older cells "
        r"left out",
        note,
    ), note


# ----------------------------------------------------------------------------- budgeting


def test_long_output_is_cut_in_the_middle_with_a_marker() -> None:
    lines = "".join(f"line {i:05d}\n" for i in range(5000))
    cells = {1: CellRecord(1, "for i in range(5000): print(f'line {i:05d}')", [lines])}
    block = build_context_from_cells(cells, parse_spec("1"), budget_tokens=1000)
    assert block.tokens <= 1000
    text = block.text
    assert "line 00000\n" in text and "line 04999" in text  # head and tail kept
    assert "line 02500" not in text
    marker = re.search(r"…\[truncated (\d+) chars\]…\n", text)
    assert marker is not None
    before, after = text[: marker.start()], text[marker.end() :]
    assert before.endswith("\n") and re.match(r"line \d{5}\n", after)  # cut at line breaks
    assert block.notes == ["context trimmed to fit 1,000 tokens: 1 output shortened"]
    dropped = int(marker.group(1))
    kept = len(re.findall(r"line \d{5}", text))
    assert dropped == len(lines) - kept * len("line 00000\n")


def test_short_outputs_stay_whole_while_a_long_one_is_cut() -> None:
    cells = {
        1: CellRecord(1, "a", ["short one"]),
        2: CellRecord(2, "b", ["y" * 50_000]),
        3: CellRecord(3, "c", ["short three"]),
    }
    block = build_context_from_cells(cells, parse_spec("1-3"), budget_tokens=800)
    assert "short one" in block.text and "short three" in block.text
    assert block.text.count("…[truncated") == 1
    assert block.tokens <= 800


def test_a_budget_too_small_for_anything_gives_no_text() -> None:
    block = build_context_from_cells(records(3), parse_spec("last:3"), budget_tokens=5)
    assert block.text == "" and block.tokens == 0 and block.cells == []
    assert block.notes == ["context trimmed to fit 5 tokens: 3 older cells left out"]


def test_fences_outgrow_backticks_in_the_text() -> None:
    source = 'doc = """\n```python\nprint(1)\n```\n"""'
    block = build_context_from_cells(
        {1: CellRecord(1, source, [])}, parse_spec("1"), budget_tokens=500
    )
    assert "````python\n" + source + "\n````" in block.text


alphabet = string.ascii_letters + string.digits + " \n=:'\"`-_{}"
cell_records = st.dictionaries(
    st.integers(1, 40),
    st.tuples(
        st.text(alphabet, max_size=300),
        st.lists(st.text(alphabet, max_size=3000), max_size=3),
        st.one_of(st.none(), st.text(alphabet, max_size=500)),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell_records, st.integers(0, 3000), st.sampled_from(["notebook", "last:3", "1-20", "2"]))
def test_context_always_fits_the_budget(
    raw: dict[int, tuple[str, list[str], str | None]], budget: int, words: str
) -> None:
    cells = {n: CellRecord(n, src, outs, err) for n, (src, outs, err) in raw.items()}
    failure = failure_of(max(raw)) if raw else None
    spec = parse_spec(words + " error vars:v")
    block = build_context_from_cells(
        cells, spec, budget_tokens=budget, failure=failure, variables={"v": list(range(500))}
    )
    assert block.tokens == estimate_tokens(block.text) <= budget
    assert set(block.cells) <= set(cells)
    assert block.text == "" or block.text.startswith("## Notebook context\n")


# ----------------------------------------------------------------------------- masking


def test_secrets_in_sources_and_outputs_never_appear() -> None:
    cells = {
        1: CellRecord(1, f'API_KEY = "{API_VALUE}"\nclient = Client(API_KEY)', []),
        2: CellRecord(2, "print(client.token)", [f"token is {OPENAI_STYLE}\n"]),
        3: CellRecord(3, "connect()", ["connected with hunter2-correct-horse-battery\n"]),
    }
    block = build_context_from_cells(
        cells,
        parse_spec("notebook"),
        budget_tokens=2000,
        secrets=["hunter2-correct-horse-battery", None],
    )
    for secret in (API_VALUE, OPENAI_STYLE, "hunter2-correct-horse-battery"):
        assert secret not in block.text
    assert 'API_KEY = "***"' in block.text and "token is ***" in block.text
    assert block.masked == 3
    assert block.notes == ["3 secrets masked"]
    plain = build_context_from_cells(cells, parse_spec("notebook"), budget_tokens=2000, mask=False)
    assert OPENAI_STYLE in plain.text and plain.masked == 0 and plain.notes == []


def test_a_secret_in_a_failure_message_is_masked_too() -> None:
    failure = Failure(
        7,
        "call()",
        "AuthError",
        f"bad key {OPENAI_STYLE}",
        f"Traceback...\nAuthError: bad key {OPENAI_STYLE}",
    )
    block = build_context_from_cells({}, parse_spec("error"), budget_tokens=500, failure=failure)
    assert OPENAI_STYLE not in block.text and "AuthError: bad key ***" in block.text


def test_shortening_never_leaves_half_a_secret() -> None:
    # Whatever the cut, a token is either whole (and masked later) or absent:
    # a half would no longer look like a secret to the masking.
    text = " ".join(["filler"] * 300) + f" key={OPENAI_STYLE} " + " ".join(["words"] * 300)
    for max_chars in range(60, len(text), 7):
        cut = shorten(text, max_chars)
        assert len(cut) <= max_chars + 32
        for fragment in (OPENAI_STYLE[:10], OPENAI_STYLE[-10:]):
            assert fragment not in cut or OPENAI_STYLE in cut, max_chars


secret_words = st.text("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", min_size=12, max_size=80)
filler_words = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(filler_words, secret_words), st.sampled_from(" \n,'\":;()")),
        min_size=1,
        max_size=120,
    ),
    st.integers(1, 3000),
)
def test_shortening_cuts_between_tokens(words: list[tuple[str, str]], max_chars: int) -> None:
    text = "".join(word + sep for word, sep in words)
    cut = shorten(text, max_chars)
    assert len(cut) <= max(max_chars, 0) + 32
    if len(text) <= max_chars:
        assert cut == text
        return
    assert "…[truncated " in cut
    # Secrets are the only upper-case/digit runs: each one kept must be kept whole.
    secrets = {word for word, _ in words if not word.islower()}
    body = re.sub(r"…\[truncated \d+ chars\]…", " ", cut)
    for run in re.findall(r"[A-Z0-9]+", body):
        assert run in secrets, (run, cut)


# ----------------------------------------------------------------------------- variables


class FakeFrame:
    """DataFrame-like: shape, dtypes and head, and a repr that must not be called."""

    __module__ = "fakepandas.core.frame"
    repr_calls = 0

    def __init__(self, rows: int) -> None:
        self.shape = (rows, 3)
        self.rows = rows

    @property
    def dtypes(self) -> Any:
        return SimpleNamespace(to_string=lambda **_: "a      int64\nb    float64\nc     object")

    def head(self, n: int) -> Any:
        table = "   a    b  c\n" + "\n".join(f"{i}  {i}  {i}.5  s{i}" for i in range(n))
        return SimpleNamespace(to_string=lambda **_: table)

    def __len__(self) -> int:
        return self.rows

    def __repr__(self) -> str:
        FakeFrame.repr_calls += 1
        return "x" * 10_000_000


class FakeArray:
    __module__ = "fakenumpy"

    def __init__(self) -> None:
        self.shape = (2, 3)
        self.dtype = "float32"

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return "fakearray([[0., 0., 0.],\n           [1., 1., 1.]])"


class BadRepr:
    def __repr__(self) -> str:
        raise ValueError("no repr for you")


class HugeRepr:
    def __repr__(self) -> str:
        return "<" + "z" * 5_000_000 + ">"


class HugeLen:
    calls = 0

    def __len__(self) -> int:
        return 10**7

    def __repr__(self) -> str:
        HugeLen.calls += 1
        return "never"


class Proxy:
    """Answers every attribute (like a mock or an RPC proxy): must not look like a frame."""

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: self

    def __repr__(self) -> str:
        return "<Proxy>"


def test_dataframe_like_summary_uses_its_own_methods() -> None:
    FakeFrame.repr_calls = 0
    text = summarize_variable("df", FakeFrame(1000))
    assert text.startswith("fakepandas.core.frame.FakeFrame, shape (1000, 3)\n")
    assert "dtypes:\na      int64\nb    float64" in text
    assert "first 5 rows:\n   a    b  c\n0  0  0.5  s0" in text and "4  4  4.5  s4" in text
    assert FakeFrame.repr_calls == 0


def test_array_like_summary() -> None:
    text = summarize_variable("arr", FakeArray())
    assert text.startswith("fakenumpy.FakeArray, shape (2, 3), dtype float32\nfakearray(")


class FakeSeries:
    __module__ = "fakepandas"

    def __init__(self) -> None:
        self.shape = (1000,)
        self.dtype = "float64"
        self.dtypes = "float64"

    def head(self, n: int) -> Any:
        return SimpleNamespace(to_string=lambda **_: "\n".join(f"{i}    0.5" for i in range(n)))


def test_series_like_summary_and_numpy_like_scalar() -> None:
    assert summarize_variable("s", FakeSeries()) == (
        "fakepandas.FakeSeries, shape (1000,), dtype float64\nfirst 5 rows:\n"
        "0    0.5\n1    0.5\n2    0.5\n3    0.5\n4    0.5"
    )
    scalar = FakeArray()
    scalar.shape = ()  # type: ignore[assignment]
    assert summarize_variable("n", scalar).startswith("fakenumpy.FakeArray = fakearray(")


def test_huge_containers_are_summarised_cheaply() -> None:
    big = list(range(1_000_000))
    text = summarize_variable("big", big)
    assert text.startswith("list, len 1,000,000: [0, 1, 2,") and text.endswith("...]")
    assert len(text) < 200
    mapping = {f"k{i}": i for i in range(50_000)}
    text = summarize_variable("mapping", mapping)
    assert text.startswith("dict, len 50,000: {") and len(text) < 300
    assert summarize_variable("s", "q" * 1_000_000).startswith("str, len 1,000,000: 'qqq")


def test_reprs_that_raise_or_explode_are_contained() -> None:
    assert summarize_variable("b", BadRepr()) == (
        "tests.test_context.BadRepr (repr failed: ValueError)"
    )
    text = summarize_variable("h", HugeRepr(), max_chars=500)
    assert text.startswith("tests.test_context.HugeRepr: <zzz") and "…[truncated" in text
    assert len(text) < 600
    HugeLen.calls = 0
    assert summarize_variable("n", HugeLen()) == (
        "tests.test_context.HugeLen, len 10,000,000 (too large to show)"
    )
    assert summarize_variable("nested", [HugeLen()]) == (
        "list, len 1: [<tests.test_context.HugeLen with 10,000,000 items>]"
    )
    assert HugeLen.calls == 0
    assert summarize_variable("p", Proxy()) == "tests.test_context.Proxy: <Proxy>"
    assert summarize_variable("i", 10**5000).startswith("int")  # str() limit: no crash


def test_scalars_callables_and_secret_names() -> None:
    assert summarize_variable("x", 3) == "int = 3"
    assert summarize_variable("f", 2.5) == "float = 2.5"

    def area(width: float, height: float = 1.0) -> float:
        """Multiply the sides."""
        return width * height

    assert summarize_variable("area", area) == (
        "function test_scalars_callables_and_secret_names.<locals>.area"
        "(width: 'float', height: 'float' = 1.0) -> 'float': Multiply the sides."
    )
    assert summarize_variable("api_key", OPENAI_STYLE) == "str (value hidden)"
    assert summarize_variable("db_password", FakeFrame(3)) == (
        "fakepandas.core.frame.FakeFrame (value hidden)"
    )


def test_variables_section_in_context_hides_secret_values() -> None:
    block = build_context_from_cells(
        {},
        parse_spec("vars:df,token,x"),
        budget_tokens=1000,
        variables={"df": FakeFrame(10), "token": "abc123secretvalue", "x": [1, 2, 3]},
    )
    text = block.text
    assert "### Variables\n- `df`:\n```text\nfakepandas.core.frame.FakeFrame, shape (10, 3)" in text
    assert "- `token`: str (value hidden)\n" in text and "abc123secretvalue" not in text
    assert "- `x`: list, len 3: [1, 2, 3]\n" in text


# ----------------------------------------------------------------------------- shells


def fake_shell(raw: list[str], **history: Any) -> Any:
    """A stand-in for IPython's shell (not our code): just the attributes we read."""
    hm = SimpleNamespace(input_hist_raw=raw, **history)
    return SimpleNamespace(history_manager=hm, user_ns={"answer": 42}, execution_count=len(raw))


def test_cells_from_shell_reads_history_outputs_and_exceptions() -> None:
    shell = fake_shell(
        ["", "print('hi')\n%time y = 1", "1/0", "x"],
        outputs={
            1: [
                HistoryOutput("out_stream", {"stream": ["hi", "\n"]}),
                HistoryOutput("err_stream", {"stream": ["warn\n"]}),
            ],
            3: [HistoryOutput("execute_result", {"text/plain": "[1, 2, 3]"})],
        },
        exceptions={
            2: {
                "ename": "ZeroDivisionError",
                "evalue": "division by zero",
                "traceback": ["\x1b[31mZeroDivisionError\x1b[39m: division by zero"],
            }
        },
    )
    cells, source = cells_from_shell(shell)
    assert source == "history"
    assert cells[1] == CellRecord(1, "print('hi')\n%time y = 1", ["hi\n", "warn\n"])
    assert cells[2].error == "ZeroDivisionError: division by zero"
    assert cells[3].outputs == ["[1, 2, 3]"]
    failure = ctx.failure_from_shell(shell)
    assert failure is not None and failure.execution_count == 2
    assert failure.source == "1/0" and failure.summary == "ZeroDivisionError: division by zero"


def test_the_hooks_failure_wins_over_ipython_exceptions_for_the_same_cell() -> None:
    shell = fake_shell(["", "boom()"], outputs={}, exceptions={1: {"ename": "E", "traceback": []}})
    failure_log(shell).add(failure_of(1))
    try:
        cells, _ = cells_from_shell(shell)
        assert cells[1].error == failure_of(1).traceback
        assert ctx.failure_from_shell(shell) == failure_of(1)
    finally:
        failure_log(shell).clear()


def test_old_ipython_reads_outputs_from_the_saved_notebook(tmp_path: Path) -> None:
    path = tmp_path / "analysis.ipynb"
    nbformat.write(make_notebook(), str(path))
    # IPython < 9.1: no outputs in history. Cell 3 was re-run with new code since the save.
    shell = fake_shell(["", "x = [1, 2, 3]\nprint(len(x))", "x", "changed()"])
    shell.user_ns["__session__"] = str(path)
    cells, source = cells_from_shell(shell)
    assert source == "notebook"
    assert cells[1].outputs == ["3\n"]
    assert cells[2].outputs == []  # source differs from the saved cell
    assert cells[3].outputs == []
    unknown = fake_shell(["", "print(1)"])
    assert cells_from_shell(unknown, kernel_id="no-such-kernel")[1] is None
    block = build_context(unknown, parse_spec("last:2"), budget_tokens=500)
    assert block.notes == [NO_OUTPUTS_NOTE] and block.cells == [1]


def test_build_context_on_a_shell_stand_in() -> None:
    shell = fake_shell(
        ["", "a = 1", "print(a)", "%%glm --context last:5\nwhy?"],
        outputs={2: [HistoryOutput("out_stream", {"stream": ["1\n"]})]},
    )
    # Between cells nothing runs: every cell counts unless current_count says otherwise.
    block = build_context(
        shell, parse_spec("last:5 vars:answer"), budget_tokens=800, current_count=3
    )
    assert block.cells == [1, 2]
    assert "### Cell In [2]\n```python\nprint(a)\n```\nOutput:\n```text\n1\n```" in block.text
    assert "- `answer`: int = 42" in block.text
    assert build_context(None, "last:2 error", 100).notes == ["no failure recorded yet"]


# ----------------------------------------------------------------------------- dry run


def test_dry_run_report_shows_messages_tokens_and_cost() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "## Notebook context\n\n### Cell In [1]\n...\n\nWhy?"},
    ]
    report = dry_run_report(messages, model_info("glm-4.7"), max_output=1000)
    assert "----- system (~" in report and "\nBe brief.\n" in report
    assert "\n## Notebook context\n\n### Cell In [1]\n...\n\nWhy?\n" in report
    prompt = sum(estimate_tokens(str(m["content"])) + 4 for m in messages)
    assert f"Estimated prompt: ~{prompt:,} tokens of a 200,000-token window" in report
    assert "reply up to 1,000 tokens" in report
    cost = r"Estimated cost: (<\$0\.0001|\$0\.\d{4}) for the prompt, up to \$0\.\d{4}"
    assert re.search(cost, report)
    assert "nothing was sent" in report


def test_dry_run_report_unknown_model_and_multimodal_parts() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        }
    ]
    report = dry_run_report(messages, model_info("my-local-model"), max_output=None)
    assert "look\n[image_url part]" in report
    assert "cost unknown" in report and "unknown model" in report
    assert "reply up to 4,096 tokens" in report
