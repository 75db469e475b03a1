"""Replies replayed from the store in a real kernel, counted at the endpoint's request log."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from glm_magic.testing import EndpointServer

from ..conftest import FAKE_KEY
from .harness import Execution, Kernel, kernel_env

pytestmark = pytest.mark.kernel

CELLS = ["%%glm --new\nName three primes.", "%%glm\nAnd what is their sum?"]
REPLAYED = "replayed · first answered "
GET_CACHE = "print(repr(get_ipython().magics_manager.registry['GlmMagics'].cache))"


class Counted:
    """Chat requests the endpoint received since the last call (``/models`` is no answer)."""

    def __init__(self, endpoint: EndpointServer) -> None:
        self.endpoint = endpoint
        self.seen = self.chats()

    def chats(self) -> int:
        return sum(r.path.endswith("/chat/completions") for r in self.endpoint.requests)

    def new(self) -> int:
        now = self.chats()
        made, self.seen = now - self.seen, now
        return made


def replay_kernel(endpoint: EndpointServer, store: Path, **extra: str) -> Kernel:
    """A kernel on the default cache mode (replay) with its own store folder."""
    env = kernel_env(
        endpoint.base_url, **{"RUNAPI_KEY": FAKE_KEY, "GLM_MAGIC_CACHE_DIR": str(store), **extra}
    )
    if "GLM_MAGIC_CACHE" not in extra:
        env.pop("GLM_MAGIC_CACHE", None)  # the suite turns the store off; these test the default
    k = Kernel(env)
    ex = k.run("%load_ext glm_magic")
    assert ex.status == "ok", ex.messages
    return k


@pytest.fixture
def kernel(endpoint: EndpointServer, tmp_path: Path) -> Iterator[Kernel]:
    k = replay_kernel(endpoint, tmp_path / "store")
    try:
        yield k
    finally:
        k.shutdown()


def meta(ex: Execution) -> dict[str, object]:
    found: dict[str, object] = ex.displays[-1]["content"]["metadata"]["glm_magic"]
    return found


def run_ok(k: Kernel, code: str) -> Execution:
    ex = k.run(code)
    assert ex.status == "ok", (ex.stderr, ex.error)
    return ex


def test_a_second_run_replays_every_turn_with_no_request(
    kernel: Kernel, endpoint: EndpointServer
) -> None:
    count = Counted(endpoint)
    first = [run_ok(kernel, c) for c in CELLS]
    assert count.new() == 2
    second = [run_ok(kernel, c) for c in CELLS]
    assert count.new() == 0, "a replayed run made requests"
    for old, new in zip(first, second, strict=True):
        assert new.answer == old.answer
        assert REPLAYED in new.footer and "--refresh for a new answer" in new.footer
        assert REPLAYED not in old.footer
        assert meta(new)["key"] == meta(old)["key"] and meta(new)["replayed"] is True
        assert meta(new)["request_id"] == meta(old)["request_id"]
    # A replayed turn joined the conversation as the original did: turn 2 matched.
    assert "--refresh" in second[1].footer
    assert "replayed 2 answer(s)" in run_ok(kernel, "%glm cost").stdout


def test_refresh_asks_again_and_replaces_the_answer(
    kernel: Kernel, endpoint: EndpointServer
) -> None:
    count = Counted(endpoint)
    old = run_ok(kernel, CELLS[0])
    new = run_ok(kernel, "%%glm --new -r\nName three primes.")
    assert count.new() == 2
    assert REPLAYED not in new.footer and meta(new)["request_id"] != meta(old)["request_id"]
    again = run_ok(kernel, CELLS[0])
    assert count.new() == 0
    assert meta(again)["request_id"] == meta(new)["request_id"], "refresh did not replace it"
    run_ok(kernel, "%glm --new --refresh Name three primes.")
    assert count.new() == 1, "%glm QUESTION --refresh"


def test_one_changed_input_makes_one_request(kernel: Kernel, endpoint: EndpointServer) -> None:
    run_ok(kernel, "x = 1")
    base = "%%glm --new -c vars:x\nName three primes."
    count = Counted(endpoint)
    run_ok(kernel, base)
    assert count.new() == 1
    variants = [
        "%%glm --new -c vars:x\nName three primes!",  # one character of the prompt
        "%%glm --new -c vars:x -m glm-4.7\nName three primes.",  # the model
        "%%glm --new -c vars:x --temperature 0.3\nName three primes.",  # the temperature
    ]
    for cell in variants:
        run_ok(kernel, cell)
        assert count.new() == 1, cell
    run_ok(kernel, "x = 2")  # one character of the context
    run_ok(kernel, base)
    assert count.new() == 1, "a changed context replayed the old answer"
    run_ok(kernel, "x = 1")
    for cell in [base, *variants]:
        run_ok(kernel, cell)
    assert count.new() == 0


def test_cache_off_and_refresh_modes(kernel: Kernel, endpoint: EndpointServer) -> None:
    count = Counted(endpoint)
    run_ok(kernel, CELLS[0])
    run_ok(kernel, '%config GlmMagics.cache = "off"')
    run_ok(kernel, CELLS[0])
    run_ok(kernel, '%config GlmMagics.cache = "refresh"')
    run_ok(kernel, CELLS[0])
    assert count.new() == 3
    bad = kernel.run('%config GlmMagics.cache = "sometimes"')
    shown = json.dumps([bad.stdout, bad.stderr, bad.error])
    assert "cache must be 'off', 'replay' or 'refresh'" in shown, shown
    assert "'refresh'" in run_ok(kernel, GET_CACHE).stdout


def test_the_environment_turns_the_store_off(endpoint: EndpointServer, tmp_path: Path) -> None:
    k = replay_kernel(endpoint, tmp_path / "store", GLM_MAGIC_CACHE="off")
    try:
        count = Counted(endpoint)
        run_ok(k, CELLS[0])
        run_ok(k, CELLS[0])
        assert count.new() == 2
    finally:
        k.shutdown()


def test_a_kernel_restart_keeps_replaying(endpoint: EndpointServer, tmp_path: Path) -> None:
    count = Counted(endpoint)
    first = replay_kernel(endpoint, tmp_path / "store")
    try:
        answers = [run_ok(first, c).answer for c in CELLS]
    finally:
        first.shutdown()
    assert count.new() == 2
    second = replay_kernel(endpoint, tmp_path / "store")
    try:
        again = [run_ok(second, c) for c in CELLS]
    finally:
        second.shutdown()
    assert count.new() == 0
    assert [ex.answer for ex in again] == answers


def test_the_budget_refuses_in_one_line(kernel: Kernel, endpoint: EndpointServer) -> None:
    run_ok(kernel, CELLS[0])
    run_ok(kernel, "%config GlmMagics.budget_usd = 0.0001")
    count = Counted(endpoint)
    replayed = run_ok(kernel, CELLS[0])  # a replay costs nothing: never refused
    assert REPLAYED in replayed.footer
    ex = kernel.run("%%glm --new\nA question never asked before.")
    assert count.new() == 0, "a refused request was sent"
    assert ex.status == "error"
    shown = "\n".join(ex.error.get("traceback", []) if ex.error else []) + ex.stderr
    line = [t for t in shown.splitlines() if "spending limit" in t]
    assert len(line) == 1, shown
    assert "spent so far" in line[0] and "GlmMagics.budget_usd" in line[0]
    run_ok(kernel, "%config GlmMagics.budget_usd = 10.0")
    run_ok(kernel, "%%glm --new\nA question never asked before.")
    assert count.new() == 1


def test_a_truncated_store_file_is_one_line_and_the_request_goes_out(
    endpoint: EndpointServer, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    first = replay_kernel(endpoint, store)
    try:
        for i in range(20):
            run_ok(first, f"%%glm --new\nQuestion number {i}, with some words to fill pages.")
    finally:
        first.shutdown()
    path = store / "replies.sqlite3"
    db = sqlite3.connect(path)  # fold the write-ahead log in, so the cut loses entries
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = path.read_bytes()
    path.write_bytes(data[:1500])  # inside the first page: the header survives, the rest not
    cut = path.read_bytes()
    count = Counted(endpoint)
    second = replay_kernel(endpoint, store)
    try:
        ex = run_ok(second, "%%glm --new\nQuestion number 3, with some words to fill pages.")
        again = run_ok(second, "%%glm --new\nQuestion number 4, with some words to fill pages.")
    finally:
        second.shutdown()
    assert count.new() == 2, "the request did not go to the API"
    lines = [t for t in (ex.stderr + again.stderr).splitlines() if "reply store" in t]
    assert len(lines) == 1, ex.stderr + again.stderr
    assert REPLAYED not in ex.footer
    assert path.read_bytes() == cut, "the damaged store was changed or emptied"


def test_two_kernels_writing_at_once(endpoint: EndpointServer, tmp_path: Path) -> None:
    store = tmp_path / "store"
    n = 25
    code = (
        "for i in range({n}):\n"
        "    get_ipython().run_cell_magic('glm', '--new -f text', f'Question {{i}} from {tag}')"
    )
    kernels = [replay_kernel(endpoint, store) for _ in range(2)]
    try:
        ids = [k.start(code.format(n=n, tag=tag)) for k, tag in zip(kernels, "AB", strict=True)]
        for k, msg_id in zip(kernels, ids, strict=True):
            ex = k.collect(msg_id, timeout=180)
            assert ex.status == "ok", ex.stderr
            assert "reply store" not in ex.stderr, ex.stderr
    finally:
        for k in kernels:
            k.shutdown()
    count = Counted(endpoint)
    third = replay_kernel(endpoint, store)
    try:
        for tag in "AB":
            for i in range(n):
                ex = run_ok(third, f"%%glm --new -f text\nQuestion {i} from {tag}")
                assert REPLAYED in ex.footer, f"{tag}{i} was lost"
                assert f"Question {i} from {tag}" in ex.answer, f"{tag}{i} is torn"
    finally:
        third.shutdown()
    assert count.new() == 0


def test_insertion_is_idempotent(endpoint: EndpointServer, tmp_path: Path) -> None:
    nb_path = tmp_path / "work.ipynb"
    cell = "%%glm --new --insert\nWrite a function that returns the first primes."
    cells: list[dict[str, object]] = [
        {"cell_type": "code", "id": "a1", "metadata": {}, "source": cell, "outputs": []}
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    nb_path.write_text(json.dumps(nb))
    k = replay_kernel(endpoint, tmp_path / "store", GLM_MAGIC_NOTEBOOK=str(nb_path))
    try:
        first = run_ok(k, cell)
        inserted = [p for p in first.payloads if p.get("source") == "set_next_input"]
        assert len(inserted) == 1
        source = str(inserted[0]["text"])
        assert "[glm:" in source.splitlines()[0]
        # The frontend inserted it and the notebook was saved.
        cells.append({"cell_type": "code", "id": "b2", "metadata": {}, "source": source})
        cells[-1]["outputs"] = []
        nb_path.write_text(json.dumps(nb))
        again = run_ok(k, cell)
        assert REPLAYED in again.footer
        assert not [p for p in again.payloads if p.get("source") == "set_next_input"]
        assert "already holds this answer's cell (cell 2 of work.ipynb)" in again.stdout
    finally:
        k.shutdown()


PANEL_STATE = "import json as _j; print(_j.dumps(_glm_panel.state()))"


def panel_state(k: Kernel) -> dict[str, object]:
    ex = run_ok(k, PANEL_STATE)
    found: dict[str, object] = json.loads(ex.stdout)
    return found


def test_the_panel_keeps_its_conversation_and_replays(
    endpoint: EndpointServer, tmp_path: Path
) -> None:
    nb_path = tmp_path / "chat.ipynb"
    empty = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    nb_path.write_text(json.dumps(empty))
    extra = {"GLM_MAGIC_NOTEBOOK": str(nb_path)}
    ask = (
        "_glm_panel.prompt.value = {q!r}\n"
        "assert _glm_panel.send()\n"
        "_r = _glm_panel.wait(60)\n"
        "print(_r.replayed, _r.footer())"
    )
    count = Counted(endpoint)
    first = replay_kernel(endpoint, tmp_path / "store", **extra)
    try:
        run_ok(first, "%glm panel")
        assert "False" in run_ok(first, ask.format(q="Name three primes.")).stdout
        run_ok(first, ask.format(q="And their sum?"))
    finally:
        first.shutdown()
    assert count.new() == 2
    second = replay_kernel(endpoint, tmp_path / "store", **extra)
    try:
        run_ok(second, "%glm panel")
        shown = panel_state(second)
        assert shown["turns"] == 2 and shown["transcript"] == 4, shown
        run_ok(second, "_glm_panel.new_chat()")
        # Asked again from a new chat: the panel replays the stored answer, footer and all.
        out = run_ok(second, ask.format(q="Name three primes.")).stdout
        assert out.startswith("True") and REPLAYED in out, out
    finally:
        second.shutdown()
    assert count.new() == 0
    third = replay_kernel(endpoint, tmp_path / "store", **extra)
    try:
        run_ok(third, "%glm panel")
        assert panel_state(third)["turns"] == 1  # New chat cleared the two turns
    finally:
        third.shutdown()


def test_the_store_and_outputs_never_hold_the_key(endpoint: EndpointServer, tmp_path: Path) -> None:
    from ..conftest import PLAIN_KEY

    store = tmp_path / "store"
    k = replay_kernel(endpoint, store, RUNAPI_KEY=PLAIN_KEY)
    try:
        cell = "%%glm --new\nMy key is {os.environ['RUNAPI_KEY']}, and {key}."
        run_ok(k, f"import os\nkey = {PLAIN_KEY!r}")
        first = run_ok(k, cell)
        again = run_ok(k, cell)
        run_ok(k, "%glm panel")
    finally:
        k.shutdown()
    assert REPLAYED in again.footer
    for ex in (first, again):
        assert PLAIN_KEY not in ex.everything()
    for path in store.iterdir():
        assert PLAIN_KEY.encode() not in path.read_bytes(), path.name
