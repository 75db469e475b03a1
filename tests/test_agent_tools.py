"""The agent's reading tools over a real in-process IPython shell, and the loop's helpers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from glm_magic.core.agent import parse_arguments, sum_usage
from glm_magic.core.agent_tools import ACTING, TOOL_SCHEMAS, NotebookTools
from glm_magic.errors import ToolError
from glm_magic.events import Usage
from glm_magic.reply import AgentStep, Reply


class _Actions:
    """Records what the acting tools were asked (the kernel's are tested in tests/kernel)."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.inserted: list[tuple[str, str]] = []

    def run(self, code: str) -> str:
        self.ran.append(code)
        return "ran"

    def insert(self, cell_type: str, source: str) -> str:
        self.inserted.append((cell_type, source))
        return "inserted"


class Frame:
    """A DataFrame-like object (duck typing is what the tools rely on; pandas is not needed)."""

    shape = (3, 2)

    class _Dtypes:
        def to_string(self, **_: Any) -> str:
            return "region    object\nunits      int64"

    class _Rows:
        def __init__(self, text: str) -> None:
            self.text = text

        def to_string(self, **_: Any) -> str:
            return self.text

        def sum(self) -> Frame._Rows:
            return Frame._Rows("region    0\nunits     1")

    dtypes = _Dtypes()

    def head(self, n: int) -> Frame._Rows:
        return Frame._Rows("  region  units\n0  north     3\n1  south   NaN")

    def isna(self) -> Frame._Rows:
        return Frame._Rows("")


@pytest.fixture
def tools(ipshell: Any) -> NotebookTools:
    return NotebookTools(ipshell, _Actions())


def test_the_schemas_are_valid_function_tools() -> None:
    names = [t["function"]["name"] for t in TOOL_SCHEMAS]
    assert names == [
        "notebook_summary",
        "read_cell",
        "list_variables",
        "describe_variable",
        "run_python",
        "insert_cell",
    ]
    for tool in TOOL_SCHEMAS:
        assert tool["type"] == "function"
        params = tool["function"]["parameters"]
        assert params["type"] == "object"
        assert set(params["required"]) <= set(params["properties"])
        json.dumps(tool)  # sent as JSON
    assert {"run_python"} == ACTING


def test_only_running_code_needs_approval(tools: NotebookTools) -> None:
    assert [n for n in tools.names() if tools.needs_approval(n)] == ["run_python"]


def test_list_and_describe_variables(ipshell: Any, tools: NotebookTools) -> None:
    ipshell.run_cell("import os\nsales = [{'region': 'north', 'units': 3}] * 4\n_private = 1")
    ipshell.user_ns["frame"] = Frame()
    listing = tools.call("list_variables", {})
    assert "- sales: list, len 4" in listing
    assert "frame" in listing
    assert "os" not in listing.split("\n", 1)[1]  # modules are not the user's data
    assert "_private" not in listing and "In" not in listing.split()
    described = tools.call("describe_variable", {"name": "frame"})
    assert "shape (3, 2)" in described and "dtypes" in described
    assert "first 5 rows" in described and "missing values per column" in described
    assert "units     1" in described
    with pytest.raises(ToolError, match="no variable named 'nope'"):
        tools.call("describe_variable", {"name": "nope"})


def test_a_secret_looking_variable_is_described_by_type_only(
    ipshell: Any, tools: NotebookTools
) -> None:
    ipshell.user_ns["db_password"] = "Hq7-violet-ostrich-plum"
    assert "Hq7" not in tools.call("describe_variable", {"name": "db_password"})
    assert "Hq7" not in tools.call("list_variables", {})


def test_read_cell_and_summary_from_the_history(ipshell: Any, tools: NotebookTools) -> None:
    for code in ("x = 1", "print('hello')", "1/0"):
        ipshell.run_cell(code, store_history=True)
    summary = tools.call("notebook_summary", {})
    assert "[1] code, ok" in summary and "[3] code, error" in summary
    first = tools.call("read_cell", {"cell": 1})
    assert "x = 1" in first
    assert "x = 1" in tools.call("read_cell", {"cell": "[1]"})  # as a model may write it
    with pytest.raises(ToolError, match=r"no executed cell \[42\]"):
        tools.call("read_cell", {"cell": 42})
    with pytest.raises(ToolError, match="no cell has the id"):
        tools.call("read_cell", {"cell": "abc-def"})


def test_acting_tools_go_to_the_surface_with_checked_arguments(ipshell: Any) -> None:
    actions = _Actions()
    tools = NotebookTools(ipshell, actions)
    assert tools.call("run_python", {"code": "x = 2"}) == "ran"
    assert actions.ran == ["x = 2"]
    with pytest.raises(ToolError, match="'code' must be a string"):
        tools.call("run_python", {"code": 3})
    with pytest.raises(ToolError, match="the code is empty"):
        tools.call("run_python", {"code": "  "})
    assert tools.call("insert_cell", {"cell_type": "markdown", "source": "# Notes"}) == "inserted"
    with pytest.raises(ToolError, match="cell_type must be"):
        tools.call("insert_cell", {"cell_type": "raw", "source": "x"})
    assert actions.ran == ["x = 2"] and actions.inserted == [("markdown", "# Notes")]


def test_parse_arguments_gives_one_line_errors() -> None:
    assert parse_arguments('{"code": "1"}') == {"code": "1"}
    assert parse_arguments("") == {}  # a call without arguments
    with pytest.raises(ToolError, match="not valid JSON"):
        parse_arguments('{"code": ')
    with pytest.raises(ToolError, match="must be a JSON object, not list"):
        parse_arguments("[1, 2]")


def test_usage_is_summed_over_requests() -> None:
    total = sum_usage([Usage(10, 2, 12, cached_tokens=4), Usage(20, 3, 23)])
    assert total == Usage(30, 5, 35, cached_tokens=4, reasoning_tokens=None)
    assert sum_usage([]) is None


def test_a_task_reply_offers_only_the_approved_steps_that_ran() -> None:
    steps = [
        AgentStep("run_python", {"code": "a = 1"}, "ok", "ok", approved=True),
        AgentStep("run_python", {"code": "b = 1/0"}, "err", "error", approved=True),
        AgentStep("run_python", {"code": "c = 3"}, "no", "declined", approved=False),
        AgentStep("list_variables", {}, "x", "ok"),
        AgentStep("run_python", {"code": "d = 4\n"}, "ok", "ok", approved=True),
    ]
    reply = Reply(text="done", model="glm-4.7", steps=steps, requests=4)
    assert reply.ran_code == "a = 1\n\nd = 4"
    assert "5 steps" in reply.footer() and "4 requests" in reply.footer()
