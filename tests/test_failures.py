"""Failure capture (:mod:`glm_magic.failures`) from a real in-process ``InteractiveShell``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from glm_magic import failures


@pytest.fixture
def shell(ipshell: Any) -> Iterator[Any]:
    failures.install(ipshell)
    yield ipshell
    failures.uninstall(ipshell)


def run(shell: Any, source: str) -> Any:
    return shell.run_cell(source, store_history=True)


def test_a_failing_cell_is_captured_with_a_plain_traceback(shell: Any) -> None:
    run(shell, "def half(x):\n    return x / 0")
    result = run(shell, "half(4)")
    failure = failures.failure_log(shell).last()
    assert failure is not None and failure.execution_count == result.execution_count
    assert failure.source == "half(4)" and failure.label == f"In [{result.execution_count}]"
    assert failure.summary == "ZeroDivisionError: division by zero"
    tb = failure.traceback
    assert tb.startswith("Traceback (most recent call last):")
    assert f"Cell In[{result.execution_count}], line 1" in tb and "return x / 0" in tb
    assert "\x1b[" not in tb and "IPython" not in tb, "no colour, no IPython frames"
    assert tb.endswith("ZeroDivisionError: division by zero")


def test_what_is_not_a_bug_to_explain_is_not_captured(shell: Any) -> None:
    run(shell, "x = 1")
    run(shell, "%glm nosuch")  # a failed %glm line: the magic's own one-line error
    assert failures.failure_log(shell).all() == []
    run(shell, "def broken(:")  # a syntax error fails before running: still a bug
    found = failures.failure_log(shell).last()
    assert found is not None and found.ename == "SyntaxError"


def test_failures_are_kept_by_cell_and_listeners_are_told(shell: Any) -> None:
    log = failures.failure_log(shell)
    told: list[str] = []
    log.listeners.append(lambda f: 1 / 0)  # a broken listener does not stop the others
    log.listeners.append(lambda f: told.append(f.summary))
    first = run(shell, "raise ValueError('one')")
    run(shell, "raise KeyError('two')")
    assert told == ["ValueError: one", "KeyError: 'two'"]
    assert log.get(first.execution_count).summary == "ValueError: one"  # type: ignore[union-attr]
    assert [f.ename for f in log.all()] == ["ValueError", "KeyError"]


def test_uninstall_leaves_the_shell_as_it_was(ipshell: Any) -> None:
    before = list(ipshell.events.callbacks["post_run_cell"])
    failures.install(ipshell)
    failures.install(ipshell)  # idempotent: one hook
    assert len(ipshell.events.callbacks["post_run_cell"]) == len(before) + 1
    failures.uninstall(ipshell)
    assert ipshell.events.callbacks["post_run_cell"] == before
    run(ipshell, "1/0")
    assert failures.existing_log(ipshell) is None
