"""%glm sub-commands in a real kernel: one-line usage errors, shared sampling options."""

from __future__ import annotations

import json

import pytest

from glm_magic.ipython.commands import COMMANDS
from glm_magic.testing import EndpointServer

from .harness import Execution, Kernel

pytestmark = pytest.mark.kernel

#: A bad option for every sub-command (and the magics themselves), with what the line names.
BAD = {
    "key": ("%glm key --nope", "%glm key takes no arguments"),
    "reset": ("%glm reset --nope", "%glm reset takes no arguments"),
    "history": ("%glm history --nope", "%glm history takes no arguments"),
    "models": ("%glm models --nope", "%glm models takes no arguments"),
    "config": ("%glm config --nope", "%glm config takes no arguments"),
    "cost": ("%glm cost --nope", "%glm cost takes no arguments"),
    "explain": ("%glm explain --nope", "%glm explain: unrecognized arguments: --nope"),
    "fix": ("%glm fix --nope", "%glm fix: unrecognized arguments: --nope"),
    "insert": ("%glm insert --nope", "%glm insert: unrecognized arguments: --nope"),
    "panel": ("%glm panel --nope", "%glm panel: unrecognized arguments: --nope"),
    "buttons": ("%glm buttons --nope", "%glm buttons takes on or off"),
    "help": ("%glm help --nope", "%glm help takes no arguments"),
    "bridge": ("%glm bridge --nope", "%glm bridge takes no arguments"),
    "agent": ("%glm agent --nope count the rows", "unrecognized arguments: --nope"),
    "agent value": ("%glm agent --max-steps many x", "argument --max-steps: invalid int"),
    "agent task": ("%glm agent --yes", "%glm agent: the task is missing"),
    "explain N": ("%glm explain first", "%glm explain: argument N: expected a cell number"),
    "fix value": ("%glm fix --max-tokens many", "%glm fix: argument --max-tokens: invalid int"),
    "panel value": ("%glm panel -m", "%glm panel: argument -m/--model: expected one argument"),
    "question": ("%glm --nope what is 2+2?", "unrecognized arguments: --nope"),
    "cell": ("%%glm --nope\nhi", "unrecognized arguments: --nope"),
}


def one_usage_line(ex: Execution) -> str:
    assert ex.status == "error", ex.messages
    assert ex.error is not None and ex.error["ename"] == "UsageError"
    lines = [line for line in ex.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, ex.stderr  # no argparse usage block before it
    assert not ex.stdout and not ex.displays
    line = lines[0]
    assert line.startswith("UsageError: ")
    assert line.count("usage:") <= 1 and " 2;" not in line and "error:" not in line
    return line


def test_every_sub_command_is_covered() -> None:
    assert set(COMMANDS) | {"help"} <= set(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_option_is_one_usage_error_line(kernel: Kernel, name: str) -> None:
    cell, words = BAD[name]
    line = one_usage_line(kernel.run(cell))
    assert words in line
    if name.split()[0] in COMMANDS or name == "help":
        command = name.split()[0]
        assert f"; usage: %glm {command}" in line  # what was wrong, then the short usage


def test_options_are_checked_before_state(kernel: Kernel) -> None:
    # In [9999] never ran: the bad option is still what is reported.
    for cell in ("%glm explain 9999 --bogus", "%glm fix --bogus", "%glm explain --bogus"):
        line = one_usage_line(kernel.run(cell))
        assert "--bogus" in line and "no failed cell" not in line and "did not fail" not in line
    # Valid options, then the state: the failure is looked up.
    missing = one_usage_line(kernel.run("%glm explain 9999 --max-tokens 100"))
    assert "In [9999] did not fail" in missing


SAMPLING = "--max-tokens 15 --temperature 0.3 --no-think -s 'Be brief.' --no-stream"


@pytest.mark.parametrize(
    "cell",
    [
        f"%%glm --new {SAMPLING}\nhello",
        f"%glm {SAMPLING} hello",
        f"%glm explain {SAMPLING}",
        f"%glm fix --no-insert {SAMPLING}",
    ],
)
def test_sampling_options_are_shared(
    kernel: Kernel, fresh_endpoint: EndpointServer, cell: str
) -> None:
    kernel.run("int('x')")  # a failure for explain and fix
    ex = kernel.run(cell)
    assert ex.status == "ok", ex.stderr
    body = fresh_endpoint.requests[-1].body
    assert body["max_tokens"] == 15 and body["temperature"] == 0.3
    assert body["thinking"] == {"type": "disabled"} and body["stream"] is False
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][0]["content"].endswith("Be brief.")
    assert "⚠ Cut at 15 tokens" in ex.html  # the cap reached, shown as a note


def test_think_on_for_explain(kernel: Kernel, fresh_endpoint: EndpointServer) -> None:
    kernel.run("int('y')")
    assert kernel.run("%glm explain --think").status == "ok"
    assert fresh_endpoint.requests[-1].body["thinking"] == {"type": "enabled"}


def test_an_unknown_variable_is_named_in_the_context_note(
    kernel: Kernel, fresh_endpoint: EndpointServer
) -> None:
    note = "variable 'nosuchname' does not exist here, so nothing was sent for it"
    ex = kernel.run("%%glm --new -c vars:nosuchname\nhi")
    assert ex.status == "ok" and note in ex.stdout
    sent = fresh_endpoint.requests[-1].body["messages"][-1]["content"]
    assert sent == "hi"  # no empty context block in front of the question
    dry = kernel.run("%%glm --dry-run -c vars:nosuchname\nhi")
    assert note in dry.stdout
    kernel.run("int('z')")
    explain = kernel.run("%glm explain -c vars:nosuchname")
    assert explain.status == "ok" and note in explain.stdout
    assert "nosuchname" not in json.dumps(fresh_endpoint.requests[-1].body)
