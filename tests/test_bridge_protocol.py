"""The notebook bridge's message schema (glm_magic.bridge): what is accepted, what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from glm_magic import bridge
from glm_magic.bridge import BridgeError, parse_message


def snapshot(**extra: Any) -> dict[str, Any]:
    msg = {
        "v": 1,
        "op": "snapshot",
        "id": None,
        "path": "a.ipynb",
        "active_cell": "c1",
        "running_cell": "c2",
        "cells": [
            {"id": "c1", "cell_type": "markdown", "source": "# Plan", "outputs": []},
            {
                "id": "c2",
                "cell_type": "code",
                "source": "x = 1",
                "execution_count": 3,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "hi"}],
            },
        ],
    }
    msg.update(extra)
    return msg


def test_valid_messages_parse() -> None:
    assert parse_message({"v": 1, "op": "hello", "frontend": "JupyterLab 4.6"}) == bridge.Hello(
        "JupyterLab 4.6"
    )
    snap = parse_message(snapshot())
    assert isinstance(snap, bridge.Snapshot)
    assert [c.id for c in snap.cells] == ["c1", "c2"] and snap.running_cell == "c2"
    assert snap.cells[1].execution_count == 3 and snap.index("c2") == 1
    result = parse_message({"v": 1, "op": "result", "id": "r", "status": "inserted", "below": 7})
    assert result == bridge.Result("r", "inserted", 7)
    action = parse_message({"v": 1, "op": "action", "id": "a", "token": "t", "code": "x"})
    assert action == bridge.Action("a", "t", "x")


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("hello", "JSON object"),
        ({"v": 2, "op": "hello", "frontend": "x"}, "version 2 is not 1"),
        ({"op": "hello", "frontend": "x"}, "version None"),
        ({"v": 1, "op": "run", "code": "import os"}, "unknown op 'run'"),
        ({"v": 1, "op": "hello", "frontend": 5}, "'frontend' must be a string"),
        (snapshot(cells="all"), "list of cells"),
        (snapshot(cells=[{"id": "c", "cell_type": "widget", "source": ""}]), "cell type"),
        (snapshot(cells=[{"id": "c", "cell_type": "code", "source": 1}]), "'source'"),
        (
            snapshot(
                cells=[{"id": "c", "cell_type": "code", "source": "", "execution_count": "1"}]
            ),
            "execution_count",
        ),
        (
            snapshot(cells=[{"id": "c", "cell_type": "code", "source": "", "outputs": [1]}]),
            "outputs",
        ),
        ({"v": 1, "op": "result", "id": "r", "status": "ran"}, "status 'ran'"),
        ({"v": 1, "op": "result", "id": "r", "status": "inserted", "below": "7"}, "'below'"),
        ({"v": 1, "op": "action", "id": "a", "token": "t"}, "'code'"),
    ],
)
def test_malformed_messages_are_refused_in_one_line(message: Any, why: str) -> None:
    with pytest.raises(BridgeError) as caught:
        parse_message(message)
    line = caught.value.one_line()
    assert why in line and "\n" not in line


def test_a_huge_snapshot_is_cut_not_refused() -> None:
    cells = [
        {"id": f"c{i}", "cell_type": "code", "source": ""} for i in range(bridge.MAX_CELLS + 5)
    ]
    snap = parse_message(snapshot(cells=cells))
    assert isinstance(snap, bridge.Snapshot) and len(snap.cells) == bridge.MAX_CELLS


def test_kernel_messages_carry_version_and_provenance() -> None:
    prov = bridge.provenance("glm-5.1", "req-1")
    assert prov["model"] == "glm-5.1" and prov["request_id"] == "req-1"
    assert prov["time"].endswith("Z") and prov["generated_by"] == "glm-magic"
    msg = bridge.insert_message("m", "c2", [{"cell_type": "code", "source": "x"}], prov)
    assert msg["v"] == bridge.VERSION and msg["op"] == "insert" and msg["after"] == "c2"
    assert bridge.replace_message("m", "c2", "y", prov)["source"] == "y"
    with pytest.raises(BridgeError):
        bridge.insert_message("m", "c2", [], prov)
    with pytest.raises(BridgeError):
        bridge.insert_message("m", "c2", [{"cell_type": "raw", "source": "x"}], prov)
