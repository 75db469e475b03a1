"""The agent's bridge operations in a real kernel; the test plays the frontend.

``glm_magic.ipython.bridge_agent`` only sends (the agent runs in a cell, where the
kernel hears no comm message): an ``approve`` card, then the agent's ``input()``
asks on stdin, and the answer comes back there, never over the comm. Steps are
inserted as cells with their outputs, chained by keys. What a frontend needs to
place a card (the running cell's id, the execute request as the parent of every
message) is checked here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from glm_magic.testing import EndpointServer

from ..conftest import FAKE_KEY
from .harness import Execution, Kernel, kernel_env

PROMPT = "Step 1: run this code? [y]es / [n]o / [a]ll / [q]uit "
HELLO = {"v": 1, "op": "hello", "frontend": "TestLab 1", "features": ["agent"]}


def comm_data(ex: Execution, op: str) -> list[dict[str, Any]]:
    return [m["content"]["data"] for m in ex.of("comm_msg") if m["content"]["data"].get("op") == op]


@pytest.fixture
def kernel(endpoint: EndpointServer) -> Iterator[tuple[Kernel, Any]]:
    k = Kernel(kernel_env(endpoint.base_url, RUNAPI_KEY=FAKE_KEY))
    try:
        ex = k.run("%load_ext glm_magic")
        assert ex.status == "ok", ex.messages
        [opened] = ex.of("comm_open")
        comm_id = opened["content"]["comm_id"]

        def send(data: Any) -> None:
            k.kc.shell_channel.send(
                k.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
            )

        yield k, send
    finally:
        k.shutdown()


PROBE = (
    "from glm_magic.ipython.bridge_agent import agent_bridge\n"
    "ab = agent_bridge(get_ipython())\n"
    "print('bridge:', None if ab is None else ab.cell_id)"
)


def test_the_agent_uses_the_bridge_only_when_the_frontend_names_the_feature(
    kernel: tuple[Kernel, Any],
) -> None:
    k, send = kernel
    assert "bridge: None" in k.run(PROBE, cell_id="c1").stdout, "no frontend answered"
    send({"v": 1, "op": "hello", "frontend": "OldLab 1"})
    assert "bridge: None" in k.run(PROBE, cell_id="c1").stdout, "an older extension"
    assert "approval cards" not in k.run("%glm bridge").stdout
    send(HELLO)
    assert "bridge: agent7" in k.run(PROBE, cell_id="agent7").stdout
    assert "the agent asks with approval cards" in k.run("%glm bridge").stdout


def test_a_card_is_sent_and_input_is_answered_over_stdin_only(
    kernel: tuple[Kernel, Any],
) -> None:
    k, send = kernel
    send(HELLO)
    code = (
        "from glm_magic.ipython.bridge_agent import agent_bridge\n"
        "ab = agent_bridge(get_ipython())\n"
        f"aid = ab.ask(1, 'print(6 * 7)  # <b>bold</b>', {PROMPT!r})\n"
        f"got = input({PROMPT!r})\n"
        "ab.answered(aid, got)\n"
        "print('answer', repr(got))"
    )
    # The frontend never answers over the comm: the cell must not wait for it.
    ex, _ = k.run_answering(code, ["a"], cell_id="agent1")
    assert ex.status == "ok", ex.messages
    assert "answer 'a'" in ex.stdout
    [request] = ex.stdin
    [card] = comm_data(ex, "approve")
    assert card["v"] == 1 and card["id"] and card["step"] == 1
    assert card["cell_id"] == "agent1" and card["code"] == "print(6 * 7)  # <b>bold</b>"
    assert card["prompt"] == request["content"]["prompt"], "the card names the exact prompt"
    [done] = comm_data(ex, "approve_done")
    assert done == {"v": 1, "op": "approve_done", "id": card["id"], "answer": "all"}
    # The frontend finds the running cell and ends the card with its run by this parent.
    for m in ex.of("comm_msg"):
        assert m["parent_header"]["msg_id"] == ex.msg_id
    assert request["parent_header"]["msg_id"] == ex.msg_id


def test_steps_are_inserted_below_the_agent_cell_then_below_each_other(
    kernel: tuple[Kernel, Any],
) -> None:
    k, send = kernel
    send(HELLO)
    code = (
        "from glm_magic.ipython.bridge_agent import agent_bridge\n"
        "ab = agent_bridge(get_ipython())\n"
        "out = [{'output_type': 'stream', 'name': 'stdout', 'text': 'north 120\\n'},\n"
        "       {'output_type': 'stream', 'name': 'stdout', 'text': 'south 80\\n'},\n"
        "       {'output_type': 'display_data', 'metadata': {},\n"
        "        'data': {'text/html': '<img src=x onerror=alert(1)>', 'text/plain': 'x'}}]\n"
        "ab.insert_step('print(totals)', out, 5, provenance={'generated_by': 'glm-magic',\n"
        "               'model': 'glm-5.1', 'request_id': 'r1'})\n"
        "ab.insert_step('## Result', [], None, cell_type='markdown')\n"
        "ab.insert_step('1/0', [{'output_type': 'error', 'ename': 'ZeroDivisionError',\n"
        "               'evalue': 'division by zero', 'traceback': ['ZeroDivisionError']}], 6)\n"
    )
    ex = k.run(code, cell_id="agent1")
    assert ex.status == "ok", ex.messages
    first, second, third = comm_data(ex, "insert")
    [c1], [c2], [c3] = first["cells"], second["cells"], third["cells"]
    assert first["after"] == "agent1", "the first step goes directly below the agent's cell"
    assert second["after"] == c1["key"] and third["after"] == c2["key"], "then chained by key"
    assert len({c1["key"], c2["key"], c3["key"], "agent1"}) == 4
    assert c1["source"] == "print(totals)" and c1["execution_count"] == 5
    assert c1["outputs"][0] == {
        "output_type": "stream",
        "name": "stdout",
        "text": "north 120\nsouth 80\n",
    }
    assert c1["outputs"][1]["data"]["text/html"] == "<img src=x onerror=alert(1)>", "as data"
    assert first["provenance"]["model"] == "glm-5.1" and first["provenance"]["request_id"] == "r1"
    assert first["provenance"]["generated_by"] == "glm-magic"
    assert first["provenance"]["time"].endswith("Z")
    assert c2 == {"cell_type": "markdown", "source": "## Result", "key": c2["key"]}
    assert second["provenance"]["generated_by"] == "glm-magic"
    assert c3["outputs"][0]["ename"] == "ZeroDivisionError" and c3["execution_count"] == 6


def test_an_output_that_cannot_be_shown_becomes_a_note_and_the_step_is_still_inserted(
    kernel: tuple[Kernel, Any],
) -> None:
    k, send = kernel
    send(HELLO)
    ex = k.run(
        "from glm_magic.ipython.bridge_agent import agent_bridge\n"
        "ab = agent_bridge(get_ipython())\n"
        "odd = {'output_type': 'stream', 'name': 'stdin', 'text': 'y'}\n"
        "png = {'output_type': 'display_data', 'metadata': {},\n"
        "       'data': {'image/png': b'\\x89PNG', 'text/plain': '<Figure>'}}\n"
        "ab.insert_step('x', [odd, png], 1)\n"
        "try:\n"
        "    ab.insert_step('x', [], 1, provenance={'model': None})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)",
        cell_id="agent1",
    )
    assert ex.status == "ok", ex.messages
    [insert] = comm_data(ex, "insert")
    note, image = insert["cells"][0]["outputs"]
    assert note["name"] == "stderr" and "could not be shown" in note["text"]
    assert "stdout or stderr" in note["text"] and note["text"].count("\n") == 1
    assert image["data"]["image/png"] == "iVBORw==", "raw bytes as base64, as ipykernel sends"
    assert ex.stdout.strip() == "BridgeError bridge: provenance values must be strings"


def test_without_a_cell_id_the_frontend_places_things_itself(
    kernel: tuple[Kernel, Any],
) -> None:
    k, send = kernel
    send(HELLO)
    ex = k.run(
        "from glm_magic.ipython.bridge_agent import agent_bridge\n"
        "ab = agent_bridge(get_ipython())\n"
        f"ab.ask(2, 'x = 1', {PROMPT!r})\n"
        "ab.insert_step('x = 1', [], 3)"
    )
    [card] = comm_data(ex, "approve")
    [insert] = comm_data(ex, "insert")
    assert card["cell_id"] is None and insert["after"] == "@active"
