"""The reply store: the request key, eviction, a damaged or locked file, two writers at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from glm_magic.config import Settings
from glm_magic.core.store import ReplyStore, request_key
from glm_magic.events import Usage
from glm_magic.reply import Reply

from .conftest import PLAIN_KEY


def reply(text: str, model: str = "glm-4.7") -> Reply:
    return Reply(
        text=text,
        model=model,
        usage=Usage(10, 20, 30),
        finish_reason="stop",
        request_id="req-1",
        answered_at=1_790_000_000.0,
    )


# -- the key -------------------------------------------------------------------------------

BASE = Settings(base_url="http://127.0.0.1:9/v1", model="glm-4.7", temperature=0.5, max_tokens=99)
MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is 2+2?"},
]


def test_the_key_never_holds_the_api_key() -> None:
    with_key = BASE.with_changes(api_key=__import__("glm_magic.config").config.Secret(PLAIN_KEY))
    assert request_key(with_key, MESSAGES) == request_key(BASE, MESSAGES)


@settings(max_examples=60, deadline=None)
@given(st.permutations(["role", "content", "name"]), st.permutations(["type", "text"]))
def test_the_key_is_stable_across_dict_ordering(order: list[str], inner: list[str]) -> None:
    part = {"type": "text", "text": "hi"}
    values: dict[str, Any] = {"role": "user", "content": [part], "name": "me"}
    shuffled = dict(values, content=[{k: part[k] for k in inner}])
    shuffled = {k: shuffled[k] for k in order}
    assert request_key(BASE, [shuffled]) == request_key(BASE, [values])


CHANGES = st.one_of(
    st.tuples(st.just("prompt"), st.text(min_size=1, max_size=3)),
    st.tuples(st.just("system"), st.text(min_size=1, max_size=3)),
    st.tuples(st.just("model"), st.sampled_from(["glm-5.1", "glm-4.5-air", "glm-4.7x"])),
    st.tuples(st.just("temperature"), st.floats(0, 2).filter(lambda t: t != 0.5)),
    st.tuples(st.just("max_tokens"), st.integers(1, 10**6).filter(lambda n: n != 99)),
    st.tuples(st.just("thinking"), st.sampled_from([True, False])),
    st.tuples(st.just("host"), st.sampled_from(["http://10.0.0.1/v1", "https://api.z.ai/v4"])),
)


@settings(max_examples=150, deadline=None)
@given(CHANGES)
def test_the_key_changes_with_every_input_that_matters(change: tuple[str, Any]) -> None:
    what, value = change
    base, messages = BASE, [dict(m) for m in MESSAGES]
    if what == "prompt":
        messages[1]["content"] += value
    elif what == "system":
        messages[0]["content"] = value + messages[0]["content"]
    elif what == "host":
        base = base.with_changes(base_url=value)
    else:
        base = base.with_changes(**{what: value})
    assert request_key(base, messages) != request_key(BASE, MESSAGES)


# -- keeping and finding -------------------------------------------------------------------


def test_a_stored_reply_comes_back_replayed(tmp_path: Path) -> None:
    store = ReplyStore(tmp_path / "s.sqlite3")
    store.put("k" * 64, reply("the answer"))
    found = store.get("k" * 64)
    assert found is not None and found.replayed
    assert (found.text, found.model, found.request_id) == ("the answer", "glm-4.7", "req-1")
    assert found.usage == Usage(10, 20, 30) and found.answered_at == 1_790_000_000.0
    assert store.get("x" * 64) is None


def test_the_size_cap_evicts_the_oldest_first(tmp_path: Path) -> None:
    one = len(json.dumps({"text": "x" * 1000})) + 300
    store = ReplyStore(tmp_path / "s.sqlite3", max_bytes=one * 5)
    for i in range(8):
        store.put(f"{i:064d}", reply("x" * 1000))
    kept = [i for i in range(8) if store.get(f"{i:064d}") is not None]
    assert kept and kept == list(range(8 - len(kept), 8)), kept
    assert len(kept) < 8


# -- a damaged or locked store ---------------------------------------------------------------


def test_a_truncated_store_is_one_line_and_never_emptied(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = ReplyStore(path)
    for i in range(50):
        store.put(f"{i:064d}", reply(f"answer {i} " * 50))
    store.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # cut mid-file, as a full disk or a crash would
    cut = path.read_bytes()
    lines: list[str] = []
    damaged = ReplyStore(path, warn=lines.append)
    for i in range(50):  # every read fails or finds nothing: never a crash, never garbage
        got = damaged.get(f"{i:064d}")
        assert got is None or got.text == f"answer {i} " * 50
    damaged.put("n" * 64, reply("new"))
    assert lines, "the damage was not reported"
    assert all("\n" not in line and "reply store" in line for line in lines)
    assert len(lines) == len(set(lines)) <= 2  # once per problem, not once per request
    assert path.read_bytes()[: len(cut) // 2] == cut[: len(cut) // 2]  # not emptied


def test_a_file_that_is_no_database_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    path.write_text("not a database at all, but the user's bytes")
    lines: list[str] = []
    store = ReplyStore(path, warn=lines.append)
    assert store.get("k" * 64) is None
    assert not store.put("k" * 64, reply("x"))
    assert len(lines) == 1 and "could not be" in lines[0]
    assert path.read_text() == "not a database at all, but the user's bytes"


def test_a_locked_store_is_one_line_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    first = ReplyStore(path)
    first.put("k" * 64, reply("x"))
    first.close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        lines: list[str] = []
        store = ReplyStore(path, warn=lines.append, busy_seconds=0.2)
        assert not store.put("j" * 64, reply("y"))
        assert len(lines) == 1 and "locked" in lines[0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert ReplyStore(path).get("k" * 64) is not None


# -- two writers at once ---------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    from glm_magic.core.store import ReplyStore
    from glm_magic.events import Usage
    from glm_magic.reply import Reply

    path, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = ReplyStore(path, warn=lambda line: print(line, file=sys.stderr))
    for i in range(n):
        text = f"{tag}-{i}-" + tag * 2000
        ok = store.put(f"{tag}{i:063d}", Reply(text=text, model="m", finish_reason="stop"))
        assert ok, "a write was refused"
        ok = store.put("s" * 64, Reply(text=text, model="m", finish_reason="stop"))
        assert ok, "a write to the shared key was refused"
    """
)


def test_two_processes_writing_at_once_lose_and_tear_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    n = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), tag, str(n)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "reply store" not in err, err
    store = ReplyStore(path)
    for tag in ("a", "b"):
        for i in range(n):
            got = store.get(f"{tag}{i:063d}")
            assert got is not None, f"{tag}{i} was lost"
            assert got.text == f"{tag}-{i}-" + tag * 2000, f"{tag}{i} is torn"
    shared = store.get("s" * 64)
    assert shared is not None
    tag, i = shared.text.split("-")[:2]
    assert shared.text == f"{tag}-{i}-" + tag * 2000
