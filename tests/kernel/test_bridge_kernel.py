"""The bridge's kernel side in a real kernel; this test plays the frontend over the comm.

What a JupyterLab page with the extension does is replayed with jupyter_client:
answer the comm's ``hello``, push a ``snapshot`` before a cell runs (same
shell channel, so the kernel handles it first), read ``insert``/``replace``
from iopub. Without an answer the kernel falls back to what it did before.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from glm_magic.testing import EndpointServer

from ..conftest import FAKE_KEY
from .harness import Execution, Kernel, kernel_env

THREE_BLOCKS = (
    "echo: Steps.\n\n```python\nstep = 1\n```\n\n```python\nstep = 2\n```\n\n"
    "```python\nstep = 3\n```\n"
)


class Frontend:
    """The messages the bridge extension sends, on a real kernel's shell channel."""

    def __init__(self, kernel: Kernel, comm_id: str) -> None:
        self.kernel = kernel
        self.comm_id = comm_id

    def send(self, data: Any) -> None:
        kc = self.kernel.kc
        kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": self.comm_id, "data": data}))

    def snapshot(self, running: str, cells: list[dict[str, Any]]) -> None:
        self.send(
            {
                "v": 1,
                "op": "snapshot",
                "id": None,
                "path": "t.ipynb",
                "active_cell": running,
                "running_cell": running,
                "cells": cells,
            }
        )


def comm_messages(ex: Execution, op: str) -> list[dict[str, Any]]:
    return [m["content"]["data"] for m in ex.of("comm_msg") if m["content"]["data"].get("op") == op]


@pytest.fixture
def loaded(endpoint: EndpointServer) -> Iterator[tuple[Kernel, Frontend, Execution]]:
    k = Kernel(kernel_env(endpoint.base_url, RUNAPI_KEY=FAKE_KEY))
    try:
        ex = k.run("%load_ext glm_magic")
        assert ex.status == "ok", ex.messages
        [opened] = ex.of("comm_open")
        yield k, Frontend(k, opened["content"]["comm_id"]), ex
    finally:
        k.shutdown()


def test_load_opens_a_versioned_comm(loaded: tuple[Kernel, Frontend, Execution]) -> None:
    _, _, ex = loaded
    [opened] = ex.of("comm_open")
    assert opened["content"]["target_name"] == "glm_magic.bridge"
    data = opened["content"]["data"]
    assert data["v"] == 1 and data["op"] == "hello" and data["kernel"].startswith("glm-magic ")


def test_without_an_answer_everything_falls_back(
    loaded: tuple[Kernel, Frontend, Execution],
) -> None:
    k, _, _ = loaded
    ex = k.run("%glm bridge")
    assert "bridge: off (no glm-magic-bridge extension answered" in ex.stdout
    ex = k.run(f"%%glm --insert\n{THREE_BLOCKS}", cell_id="c9")
    assert ex.status == "ok"
    assert not ex.of("comm_msg"), "nothing is sent over an unanswered comm"
    [payload] = ex.payloads
    assert payload["source"] == "set_next_input" and "step = 3" in payload["text"]
    assert "will appear as a new cell below" in ex.stdout


def test_with_an_answer_insert_replace_and_context_use_the_bridge(
    loaded: tuple[Kernel, Frontend, Execution],
) -> None:
    k, front, _ = loaded
    front.send({"v": 1, "op": "hello", "frontend": "TestLab 1"})
    assert "bridge: on (TestLab 1)" in k.run("%glm bridge").stdout

    # %%glm --insert: one cell per block, after the running cell, with provenance; no payload.
    ex = k.run(f"%%glm --insert\n{THREE_BLOCKS}", cell_id="c5")
    [insert] = comm_messages(ex, "insert")
    assert insert["after"] == "c5" and insert["v"] == 1
    assert [c["cell_type"] for c in insert["cells"]] == ["code"] * 3
    assert [c["source"].splitlines()[-1] for c in insert["cells"]] == [
        "step = 1",
        "step = 2",
        "step = 3",
    ]
    assert insert["provenance"]["model"] == "glm-5.1" and insert["provenance"]["request_id"]
    assert ex.payloads == [] and "inserted 3 cells below this cell" in ex.stdout

    # The snapshot pushed before a cell is what --context reads: unsaved edits, Markdown.
    ran = k.run("word = 'alpha'", cell_id="w1")
    count = ran.reply["content"]["execution_count"]
    cells = [
        {
            "id": "w1",
            "cell_type": "code",
            "source": "word = 'zebra-unsaved'",
            "execution_count": count,
        },
        {"id": "m1", "cell_type": "markdown", "source": "Plan: count okapis"},
        {"id": "q1", "cell_type": "code", "source": "%%glm ..."},
    ]
    front.snapshot("q1", cells)
    ex = k.run(f"%%glm --new --context cells:{count} --dry-run\nwhat next?", cell_id="q1")
    assert "zebra-unsaved" in ex.stdout and "okapis" in ex.stdout
    assert "alpha" not in ex.stdout
    # A snapshot pushed for another cell is not used: the history is.
    ex = k.run(f"%%glm --new --context cells:{count} --dry-run\nwhat next?", cell_id="q2")
    assert "alpha" in ex.stdout and "zebra-unsaved" not in ex.stdout

    # %glm fix --replace proposes the fix on the failing cell, nothing is inserted.
    failed = k.run("total = 0\nprint(totl + 1)", cell_id="bad")
    assert failed.status == "error"
    ex = k.run("%glm fix --replace", cell_id="f1")
    [replace] = comm_messages(ex, "replace")
    assert replace["cell_id"] == "bad" and "print(total + 1)" in replace["source"]
    assert not comm_messages(ex, "insert") and ex.payloads == []
    assert "shown as a diff on In [" in ex.stdout


def test_malformed_frontend_messages_are_dropped(
    loaded: tuple[Kernel, Frontend, Execution],
) -> None:
    k, front, _ = loaded
    front.send({"v": 1, "op": "hello", "frontend": "TestLab 1"})
    for bad in (
        {"v": 2, "op": "hello", "frontend": "Future"},
        {"v": 1, "op": "execute", "code": "import os"},
        {"v": 1, "op": "snapshot", "cells": "everything"},
        "not an object",
    ):
        front.send(bad)
    ex = k.run(
        "import glm_magic.ipython.bridge as b\n"
        "bridge = b.get(get_ipython())\n"
        "print(bridge.dropped, bridge.frontend, bridge.snapshot)"
    )
    assert ex.stdout.strip() == "4 TestLab 1 None", ex.stdout


def test_waiting_for_the_frontend_is_bounded(
    loaded: tuple[Kernel, Frontend, Execution],
) -> None:
    k, front, _ = loaded
    front.send({"v": 1, "op": "hello", "frontend": "TestLab 1"})
    # Nobody answers the request: a thread gets the old (no) snapshot after the timeout,
    # and the main thread never waits at all.
    ex = k.run(
        "import threading, glm_magic.ipython.bridge as b\n"
        "bridge = b.get(get_ipython())\n"
        "got = []\n"
        "t = threading.Thread(target=lambda: got.append(bridge.fresh_snapshot(0.3)))\n"
        "t.start(); t.join(30)\n"
        "print(t.is_alive(), got, bridge.fresh_snapshot(3600))",
        timeout=60,
    )
    assert ex.stdout.strip() == "False [None] None", ex.stdout
    [request] = comm_messages(ex, "snapshot_request")
    assert request["v"] == 1 and request["id"]


def test_a_rerun_finds_its_inserted_cells_in_the_live_notebook(
    loaded: tuple[Kernel, Frontend, Execution],
) -> None:
    # Issue 11's idempotent insertion, through the bridge: the inserted cells are not
    # saved yet, so only the live notebook (the snapshot before the re-run) holds them.
    k, front, _ = loaded
    front.send({"v": 1, "op": "hello", "frontend": "TestLab 1"})
    cell = f"%%glm --new --insert\n{THREE_BLOCKS}"
    first = k.run(cell, cell_id="c5")
    [insert] = comm_messages(first, "insert")
    inserted = [
        {"id": f"n{i}", "cell_type": "code", "source": c["source"]}
        for i, c in enumerate(insert["cells"])
    ]
    front.snapshot("c5", [{"id": "c5", "cell_type": "code", "source": cell}, *inserted])
    again = k.run(cell, cell_id="c5")
    assert again.status == "ok", again.messages
    assert not comm_messages(again, "insert") and again.payloads == []
    assert "already holds this answer's cell (cell 2 of the open notebook)" in again.stdout
    # Without those cells in the notebook, the same re-run inserts them again.
    front.snapshot("c5", [{"id": "c5", "cell_type": "code", "source": cell}])
    third = k.run(cell, cell_id="c5")
    assert len(comm_messages(third, "insert")) == 1
