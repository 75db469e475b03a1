"""The notebook agent's bridge messages (glm_magic.bridge, glm_magic.bridge_cells).

``approve`` / ``approve_done`` and step cells with outputs: what is built, what is
refused in one line, and what is cut instead of refused (a step's real output must
never make its insert fail).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from glm_magic import bridge
from glm_magic.bridge import BridgeError, parse_message
from glm_magic.bridge_cells import MAX_OUTPUT_CHARS, MAX_OUTPUTS, normalise_outputs

PROV = {"generated_by": "glm-magic", "model": "glm-5.1"}
PROMPT = "Run this code? [y]es / [n]o / [a]ll / [q]uit "


def step(**extra: Any) -> dict[str, Any]:
    return {"cell_type": "code", "source": "print(1)", **extra}


def test_approve_and_done_messages() -> None:
    msg = bridge.approve_message("a1", "c7", 3, "df.head()", PROMPT)
    assert msg == {
        "v": 1,
        "op": "approve",
        "id": "a1",
        "step": 3,
        "cell_id": "c7",
        "code": "df.head()",
        "prompt": PROMPT,
    }
    assert bridge.approve_message("a1", None, 0, "", PROMPT)["cell_id"] is None
    for word, letter in bridge.ANSWERS.items():
        assert bridge.approve_done_message("a1", word)["answer"] == word
        assert bridge.approve_done_message("a1", letter)["answer"] == word
    assert bridge.ANSWERS == {"run": "y", "skip": "n", "all": "a", "stop": "q"}


@pytest.mark.parametrize(
    ("build", "why"),
    [
        (lambda: bridge.approve_message("a", "c", True, "x", PROMPT), "step"),
        (lambda: bridge.approve_message("a", "c", -1, "x", PROMPT), "step"),
        (lambda: bridge.approve_message("a", "c", 1, None, PROMPT), "'code'"),
        (lambda: bridge.approve_message("a", 5, 1, "x", PROMPT), "'cell_id'"),
        (lambda: bridge.approve_message("a", "c", 1, "x", "p" * 1001), "'prompt'"),
        (lambda: bridge.approve_done_message("a", "yes"), "unknown approval answer"),
        (lambda: bridge.insert_message("m", "c", [step(key=7)], PROV), "key"),
        (lambda: bridge.insert_message("m", "c", [step(execution_count="3")], PROV), "count"),
        (lambda: bridge.insert_message("m", "c", [step(outputs="text")], PROV), "outputs"),
        (
            lambda: bridge.insert_message(
                "m", "c", [{"cell_type": "markdown", "source": "x", "outputs": []}], PROV
            ),
            "only code cells",
        ),
        (lambda: bridge.insert_message("m", "c", [step()], {"model": 5}), "provenance"),
        (lambda: bridge.insert_message("m", "c", [step()] * 101, PROV), "1 to 100"),
    ],
)
def test_malformed_agent_messages_are_refused_in_one_line(build: Any, why: str) -> None:
    with pytest.raises(BridgeError) as caught:
        build()
    line = caught.value.one_line()
    assert why in line and "\n" not in line


def test_a_step_cell_carries_key_outputs_and_count() -> None:
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": ["a\n", "b\n"]},
        {
            "output_type": "execute_result",
            "execution_count": 4,
            "data": {"text/plain": ["42"], "application/json": {"x": [1, 2]}},
            "metadata": {},
            "transient": {"display_id": "dropped"},
        },
    ]
    msg = bridge.insert_message("m", "glm-step-1", [step(key="k2", outputs=outputs)], PROV)
    [cell] = msg["cells"]
    assert msg["after"] == "glm-step-1" and cell["key"] == "k2"
    assert cell["outputs"] == [
        {"output_type": "stream", "name": "stdout", "text": "a\nb\n"},
        {
            "output_type": "execute_result",
            "data": {"text/plain": "42", "application/json": {"x": [1, 2]}},
            "metadata": {},
            "execution_count": 4,
        },
    ], "rebuilt from nbformat's own fields only"
    assert "execution_count" not in cell, "absent fields stay absent (old inserts unchanged)"
    plain = bridge.insert_message("m", "c", [{"cell_type": "code", "source": "x"}], PROV)
    assert plain["cells"] == [{"cell_type": "code", "source": "x"}]


def test_outputs_streams_merge_and_errors_keep_their_traceback() -> None:
    got = normalise_outputs(
        [
            {"output_type": "stream", "name": "stdout", "text": "1\n"},
            {"output_type": "stream", "name": "stdout", "text": "2\n"},
            {"output_type": "stream", "name": "stderr", "text": "warn\n"},
            {"output_type": "stream", "name": "stdout", "text": "3\n"},
            {
                "output_type": "error",
                "ename": "KeyError",
                "evalue": "'revenue'",
                "traceback": ["Traceback", "KeyError: 'revenue'"],
            },
        ]
    )
    assert isinstance(got, list)
    assert [o.get("text") for o in got[:3]] == ["1\n2\n", "warn\n", "3\n"]
    assert got[3]["traceback"][-1] == "KeyError: 'revenue'"


@pytest.mark.parametrize(
    ("outputs", "why"),
    [
        ([{"output_type": "stream", "name": "stdin", "text": "x"}], "stdout or stderr"),
        ([{"output_type": "display_data", "data": {"text/html": 5}}], "must be text"),
        ([{"output_type": "display_data", "data": {}, "metadata": []}], "metadata"),
        ([{"output_type": "execute_result", "data": {}, "execution_count": "1"}], "count"),
        ([{"output_type": "error", "ename": "E", "evalue": "v", "traceback": "x"}], "traceback"),
        ([{"output_type": "update_display_data", "data": {}}], "unknown output type"),
        ([{"output_type": "display_data", "data": {"application/json": {1, 2}}}], "plain JSON"),
        ([{"output_type": "display_data", "data": {"application/json": float("nan")}}], "JSON"),
    ],
)
def test_malformed_outputs_are_refused(outputs: list[Any], why: str) -> None:
    got = normalise_outputs(outputs)
    assert isinstance(got, str) and why in got, got


def test_huge_and_many_outputs_are_cut_with_a_note_not_refused() -> None:
    big = {"output_type": "display_data", "data": {"text/html": "x" * MAX_OUTPUT_CHARS}}
    got = normalise_outputs([big])
    assert isinstance(got, list) and "characters was left out" in got[0]["text"]
    many = [
        {"output_type": "display_data", "data": {"text/plain": str(i)}, "metadata": {}}
        for i in range(MAX_OUTPUTS + 20)
    ]
    got = normalise_outputs(many)
    assert isinstance(got, list) and len(got) == MAX_OUTPUTS
    assert got[-1]["text"] == "[21 more outputs were left out]\n"
    assert len(json.dumps(got)) < MAX_OUTPUTS * MAX_OUTPUT_CHARS


def test_hello_names_features() -> None:
    hello = parse_message({"v": 1, "op": "hello", "frontend": "JupyterLab", "features": ["agent"]})
    assert hello == bridge.Hello("JupyterLab", ("agent",))
    old = parse_message({"v": 1, "op": "hello", "frontend": "JupyterLab"})
    assert old == bridge.Hello("JupyterLab", ()), "an older extension names none"
    for bad in ("agent", [1], ["x" * 51]):
        with pytest.raises(BridgeError):
            parse_message({"v": 1, "op": "hello", "frontend": "J", "features": bad})
