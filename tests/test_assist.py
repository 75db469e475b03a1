"""Finding the cells behind a failure, and the explain/fix prompts."""

from __future__ import annotations

import pytest

from glm_magic.core.assist import build_assist_prompt, defined_names, defining_cells, used_names
from glm_magic.failures import Failure
from glm_magic.models import ModelInfo, model_info

CELLS = {
    1: "import pandas as pd\nimport numpy as np",
    2: "%matplotlib inline\ndf = pd.DataFrame({'amount': [1, 2]})\nrate = 0.2",
    3: "print('unrelated')",
    4: "df['total'] = df['amount'] * (1 + rate)",
    5: "rate = 0.25  # redefined later",
    6: "summary = df.groupby('region').totl.sum()",
}

FAIL = Failure(
    execution_count=6,
    source=CELLS[6],
    ename="AttributeError",
    evalue="'DataFrameGroupBy' object has no attribute 'totl'",
    traceback="Traceback (most recent call last):\n  Cell In[6], line 1\nAttributeError: ...",
)


def test_defined_names_cover_common_bindings() -> None:
    src = (
        "import os.path as osp\nfrom x import y as z\nfor i, j in []: pass\n"
        "with open('f') as fh: pass\ndef f(): pass\nclass C: pass\n"
        "df['col'] = 1\nobj.attr = 2\n(w := 3)\n!ls\n%time a = 1"
    )
    assert {"osp", "z", "i", "j", "fh", "f", "C", "df", "col", "attr", "w"} <= defined_names(src)
    assert defined_names("def broken(:") == set()


def test_used_names_puts_quoted_names_first_and_skips_builtins() -> None:
    names = used_names(FAIL)
    assert names[0] == "DataFrameGroupBy" or "totl" in names[:2]
    assert "summary" not in names  # stored, not used
    assert "df" in names and "print" not in names


def test_defining_cells_picks_the_latest_earlier_definition() -> None:
    assert defining_cells(FAIL, CELLS) == [4]  # df last bound (a column added) in In [4]
    f2 = Failure(7, "print(df.total * rate)", "NameError", "x", "tb")
    assert defining_cells(f2, {**CELLS, 7: f2.source}) == [4, 5]
    # Later cells never count, nor the failing cell itself.
    f3 = Failure(3, "print(rate)", "NameError", "x", "tb")
    assert defining_cells(f3, CELLS) == [2]


@pytest.mark.parametrize("kind", ["explain", "fix"])
def test_prompt_has_source_traceback_and_related_cells(kind: str) -> None:
    p = build_assist_prompt(kind, FAIL, CELLS, model_info("glm-4.7"))
    assert CELLS[6] in p.user and FAIL.traceback in p.user
    assert CELLS[4] in p.user and CELLS[3] not in p.user
    assert p.related == [4]
    msgs = p.messages()
    assert [m["role"] for m in msgs] == ["system", "user"]
    if kind == "fix":
        assert "ONE fenced" in p.system
    else:
        assert "root cause" in p.system.lower()


def test_prompt_masks_secrets_and_respects_the_budget() -> None:
    cells = {
        1: 'TOKEN = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"\nx = 1',
        2: "print(x, TOKEN, y)",
    }
    f = Failure(2, cells[2], "NameError", "name 'y' is not defined", "tb")
    p = build_assist_prompt("explain", f, cells, model_info("glm-4.7"), secrets=["zz-key-123456"])
    assert "ghp_" not in p.user and any("masked" in n for n in p.notes)
    tiny = ModelInfo("tiny", context_window=130, max_output=10, default_output=10)
    small = build_assist_prompt("explain", f, cells, tiny)
    assert small.related == [] and any("left out" in n for n in small.notes)
    with pytest.raises(ValueError):
        build_assist_prompt("poem", f, cells, tiny)


def test_fences_inside_cells_do_not_break_the_prompt() -> None:
    cells = {1: 'doc = """\n```\nnot code\n```\n"""', 2: "print(doc.upper(1))"}
    f = Failure(2, cells[2], "TypeError", "bad", "tb")
    p = build_assist_prompt("explain", f, cells, model_info("glm-4.7"))
    assert "````python" in p.user  # a longer fence around content that has ```


def test_a_misspelt_name_finds_the_cell_defining_the_right_one() -> None:
    cells = {1: "import math", 2: "values = [1, 2, 3]", 3: "other = 1", 4: "print(sum(valuez))"}
    f = Failure(4, cells[4], "NameError", "name 'valuez' is not defined", "tb")
    assert defining_cells(f, cells) == [2]
