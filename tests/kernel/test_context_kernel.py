"""glm_magic.context in a real ipykernel: raw sources, history outputs, failures, variables."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from glm_magic.testing import EndpointServer

from ..conftest import FAKE_KEY
from .harness import Kernel, kernel_env

pytestmark = pytest.mark.kernel

BUILD = """# {tag}
import dataclasses, json
from glm_magic.context import build_context, parse_spec
_block = build_context(get_ipython(), parse_spec({spec!r}), budget_tokens={budget}{extra})
print(json.dumps(dataclasses.asdict(_block)))
"""


@pytest.fixture(scope="module")
def session(endpoint: EndpointServer) -> Iterator[tuple[Kernel, dict[str, int]]]:
    """A kernel with the extension loaded and a few cells run: counts by name."""
    k = Kernel(kernel_env(endpoint.base_url, RUNAPI_KEY=FAKE_KEY))
    try:
        counts: dict[str, int] = {}
        cells = {
            "load": "%load_ext glm_magic",
            "data": "x = [1, 2, 3]\napi_key = 'shh-not-for-the-model'",
            "timed": "%time total = sum(x)\nprint('hello from the cell', total)",
            "leak": f"print('key is {FAKE_KEY}')",
            "fail": "print('about to fail')\nundefined_name + 1",
        }
        for name, code in cells.items():
            ex = k.run(code)
            assert ex.status == ("error" if name == "fail" else "ok"), ex.messages
            counts[name] = int(ex.reply["content"]["execution_count"])
        yield k, counts
    finally:
        k.shutdown()


def build(k: Kernel, spec: str, budget: int = 4000, extra: str = "") -> tuple[dict[str, Any], int]:
    """Run build_context in the kernel; the block, checked to leave out its own cell."""
    tag = f"asking cell {uuid.uuid4().hex}"
    ex = k.run(BUILD.format(tag=tag, spec=spec, budget=budget, extra=extra))
    assert ex.status == "ok", ex.messages
    block = json.loads(ex.stdout)
    current = int(ex.reply["content"]["execution_count"])
    assert tag not in block["text"] and current not in block["cells"]
    return block, current


def test_last_cells_error_and_variables(session: tuple[Kernel, dict[str, int]]) -> None:
    k, counts = session
    block, _ = build(
        k, "last:3 error vars:x,api_key", extra=", current_count=get_ipython().execution_count - 1"
    )
    text = block["text"]
    # Raw sources: the line magic as typed, not IPython's transformed call.
    assert f"### Cell In [{counts['timed']}]\n```python\n%time total = sum(x)\n" in text
    assert "run_line_magic" not in text
    # Outputs come from IPython's history (>= 9.1).
    assert "hello from the cell 6" in text and "Wall time" in text
    # The failing cell is shown once, as the failure, with our hook's clean traceback.
    assert f"### Failure in In [{counts['fail']}]: NameError: name 'undefined_name'" in text
    assert f"### Cell In [{counts['fail']}]" not in text
    assert "Output before the error:\n```text\nabout to fail\n```" in text
    assert f"Cell In[{counts['fail']}], line 2" in text and "\x1b[" not in text
    assert "NameError: name 'undefined_name' is not defined\n```" in text
    # Variables: a cheap summary; a secret-named one by type only.
    assert "- `x`: list, len 3: [1, 2, 3]\n" in text
    assert "- `api_key`: str (value hidden)\n" in text and "shh-not-for-the-model" not in text
    # The asking cell itself is never included; the leaked key is masked.
    assert block["cells"] == [counts["timed"], counts["leak"], counts["fail"]]
    assert FAKE_KEY not in text and "key is ***" in text
    assert block["masked"] == 2 and "2 secrets masked" in block["notes"]  # source and output
    assert block["tokens"] <= 4000


def test_the_running_cell_is_found_without_current_count(
    session: tuple[Kernel, dict[str, int]],
) -> None:
    k, counts = session
    # Passing shell.execution_count (one past the running cell) is safe as well.
    for extra in ("", ", current_count=get_ipython().execution_count"):
        block, current = build(k, "notebook", extra=extra)
        assert block["cells"][: len(counts)] == sorted(counts.values())
        assert block["cells"][-1] == current - 1  # everything up to the asking cell
        assert "%load_ext glm_magic" in block["text"]
        block, current = build(k, "last:2", extra=extra)
        assert block["cells"] == [current - 2, current - 1]


def test_a_tight_budget_keeps_the_failure_and_says_what_was_trimmed(
    session: tuple[Kernel, dict[str, int]],
) -> None:
    k, counts = session
    k.run("print('\\n'.join(f'row {i}' for i in range(20000)))")
    block, _ = build(k, "notebook error", budget=600)
    assert block["tokens"] <= 600
    assert f"### Failure in In [{counts['fail']}]" in block["text"]
    assert any(n.startswith("context trimmed to fit 600 tokens: ") for n in block["notes"])
