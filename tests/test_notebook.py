"""Tests for glm_magic.notebook: real files in tmp dirs, real nbformat, no mocks of our code."""

from __future__ import annotations

import copy
import http.server
import json
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbformat import v4

from glm_magic import notebook as nbmod
from glm_magic.errors import GlmError, NotebookChangedError, NotebookError
from glm_magic.notebook import (
    LoadedNotebook,
    NewCell,
    NotebookPath,
    describe_missing_path,
    find_notebook_path,
    insert_cells,
    insert_code_after,
    read_notebook,
    write_notebook,
)

MODEL = "glm-4.6"


def make_notebook(minor: int = 5, n: int = 3) -> Any:
    nb = v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Py 3"}})
    nb.nbformat_minor = minor
    for i in range(n):
        cell = v4.new_code_cell(f"x = {i}\nprint(x)", execution_count=i + 1)
        cell.id = f"cell-{i}"
        cell.outputs = [v4.new_output("stream", name="stdout", text=f"{i}\n")]
        nb.cells.append(cell)
    nb.cells.append(v4.new_markdown_cell("# Heading ✓", id="md-0"))
    if minor < 5:
        for cell in nb.cells:
            del cell["id"]
    return nb


def save(nb: Any, path: Path) -> bytes:
    nbformat.write(nb, str(path))
    return path.read_bytes()


def leftovers(directory: Path, keep: set[str]) -> set[str]:
    return {p.name for p in directory.iterdir()} - keep


# --------------------------------------------------------------------------- property


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**31), 2**31)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
# "x_" keys keep clear of the schema's typed metadata keys (tags, collapsed, ...).
metadata = st.dictionaries(st.text(max_size=8).map(lambda k: "x_" + k), json_values, max_size=3)
sources = st.text(max_size=60)  # hypothesis text: unicode, newlines, no lone surrogates


@st.composite
def outputs(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["stream", "execute_result", "display_data", "error"]))
    if kind == "stream":
        return v4.new_output(
            "stream", name=draw(st.sampled_from(["stdout", "stderr"])), text=draw(sources)
        )
    if kind == "error":
        return v4.new_output(
            "error",
            ename=draw(st.text(max_size=10)),
            evalue=draw(sources),
            traceback=draw(st.lists(sources, max_size=3)),
        )
    data: dict[str, Any] = {"text/plain": draw(sources)}
    if draw(st.booleans()):
        data["application/json"] = draw(st.dictionaries(st.text(max_size=5), json_values))
    if kind == "display_data":
        return v4.new_output("display_data", data=data, metadata=draw(metadata))
    return v4.new_output(
        "execute_result",
        data=data,
        metadata=draw(metadata),
        execution_count=draw(st.none() | st.integers(0, 999)),
    )


@st.composite
def notebooks(draw: st.DrawFn) -> Any:
    minor = draw(st.sampled_from([4, 5]))
    nb = v4.new_notebook(metadata=draw(metadata))
    nb.nbformat_minor = minor
    suffixes = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", max_size=10)
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["code", "markdown", "raw"]))
        common = {"source": draw(sources), "metadata": draw(metadata)}
        if kind == "code":
            cell = v4.new_code_cell(
                outputs=draw(st.lists(outputs(), max_size=3)),
                execution_count=draw(st.none() | st.integers(0, 999)),
                **common,
            )
        elif kind == "markdown":
            cell = v4.new_markdown_cell(**common)
        else:
            cell = v4.new_raw_cell(**common)
        cell.id = f"c{i}{draw(suffixes)}"[:64]
        if minor < 5:
            del cell["id"]
        nb.cells.append(cell)
    return nb


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nb=notebooks(),
    new=st.lists(
        st.builds(NewCell, source=sources, cell_type=st.sampled_from(["code", "markdown"])),
        min_size=1,
        max_size=3,
    ),
    data=st.data(),
)
def test_insert_keeps_every_other_cell_byte_identical(
    nb: Any, new: list[NewCell], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nb.ipynb"
        save(nb, path)
        original = copy.deepcopy(nb)
        loaded = read_notebook(path)
        assert loaded.nb == original

        after = data.draw(st.integers(-1, len(original.cells) - 1))
        use_id = loaded.has_cell_ids and after >= 0 and data.draw(st.booleans())
        if use_id:
            ids = insert_cells(loaded, new, model=MODEL, after_cell_id=original.cells[after].id)
        else:
            ids = insert_cells(loaded, new, model=MODEL, after_index=after)
        write_notebook(loaded)

        text = path.read_text(encoding="utf-8")
        result = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
        nbformat.validate(result)
        assert (result.nbformat, result.nbformat_minor) == (4, original.nbformat_minor)
        assert result.metadata == original.metadata

        pos = after + 1
        inserted = result.cells[pos : pos + len(new)]
        untouched = result.cells[:pos] + result.cells[pos + len(new) :]
        assert untouched == original.cells
        for got, want in zip(untouched, original.cells, strict=True):
            assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
        for cell, spec in zip(inserted, new, strict=True):
            assert cell.source == spec.source
            assert cell.cell_type == spec.cell_type
            assert cell.metadata["glm_magic"]["generated"] is True
            assert cell.metadata["glm_magic"]["model"] == MODEL
        if original.nbformat_minor >= 5:
            assert ids == [c.id for c in inserted]
            assert len({c.id for c in result.cells}) == len(result.cells)
        else:
            assert ids == []
            assert all("id" not in c for c in result.cells)

        expected = copy.deepcopy(original)
        expected.cells[pos:pos] = inserted
        assert text == nbformat.writes(expected) + "\n"


# --------------------------------------------------------------------------- writing


def test_insert_code_after_by_id(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    save(make_notebook(), path)
    new_id = insert_code_after(path, "y = 2", model=MODEL, after_cell_id="cell-0")
    nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    assert [c.id for c in nb.cells] == ["cell-0", new_id, "cell-1", "cell-2", "md-0"]
    cell = nb.cells[1]
    assert cell.source == f"# generated by {MODEL} via glm-magic\ny = 2"
    assert cell.outputs == []
    assert cell.execution_count is None
    marker = cell.metadata["glm_magic"]
    assert marker["generated"] is True
    assert marker["model"] == MODEL
    created = datetime.fromisoformat(marker["created"].replace("Z", "+00:00"))
    assert created.utcoffset() is not None
    assert created.utcoffset().total_seconds() == 0


def test_insert_at_end_without_header_and_with_extra_metadata(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    save(make_notebook(), path)
    loaded = read_notebook(path)
    [new_id] = insert_cells(loaded, [NewCell("note", "markdown", {"tags": ["x"]})], model=MODEL)
    write_notebook(loaded)
    nb = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    assert nb.cells[-1].id == new_id
    assert nb.cells[-1].cell_type == "markdown"
    assert nb.cells[-1].metadata["tags"] == ["x"]
    assert insert_code_after(path, "z", model=MODEL, header_comment=False)
    assert nbformat.read(str(path), as_version=4).cells[-1].source == "z"


def test_unknown_cell_id_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    before = save(make_notebook(), path)
    with pytest.raises(NotebookError, match="No cell with id 'nope'"):
        insert_code_after(path, "x", model=MODEL, after_cell_id="nope")
    assert path.read_bytes() == before
    loaded = read_notebook(path)
    with pytest.raises(NotebookError, match="out of range"):
        insert_cells(loaded, [NewCell("x")], model=MODEL, after_index=99)
    with pytest.raises(ValueError, match="not both"):
        insert_cells(loaded, [NewCell("x")], model=MODEL, after_index=0, after_cell_id="cell-0")


def test_nbformat_44_keeps_minor_and_adds_no_ids(tmp_path: Path) -> None:
    path = tmp_path / "old.ipynb"
    save(make_notebook(minor=4), path)
    assert insert_code_after(path, "x", model=MODEL) is None
    with pytest.raises(NotebookError, match="no cell ids"):
        insert_code_after(path, "x", model=MODEL, after_cell_id="cell-0")
    loaded = read_notebook(path)
    insert_cells(loaded, [NewCell("top")], model=MODEL, after_index=-1)
    write_notebook(loaded)
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["nbformat_minor"] == 4
    assert all("id" not in c for c in nb["cells"])
    assert nb["cells"][0]["source"] == ["top"]
    assert nb["cells"][-1]["source"][-1] == "x"
    nbformat.validate(nbformat.from_dict(nb))


def test_concurrent_change_with_restored_mtime_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    save(make_notebook(), path)
    loaded = read_notebook(path)
    insert_cells(loaded, [NewCell("mine")], model=MODEL)

    other = read_notebook(path).nb
    other.cells[0].source = other.cells[0].source.replace("x", "y")  # same size
    before = os.stat(path)
    theirs = save(other, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == before.st_mtime_ns
    assert len(theirs) == before.st_size

    with pytest.raises(NotebookChangedError, match="changed on disk since it was read"):
        write_notebook(loaded)
    assert path.read_bytes() == theirs
    assert leftovers(tmp_path, {"a.ipynb"}) == set()


def test_deleted_file_counts_as_changed(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    save(make_notebook(), path)
    loaded = read_notebook(path)
    path.unlink()
    with pytest.raises(NotebookChangedError):
        write_notebook(loaded)
    assert leftovers(tmp_path, set()) == set()


def test_touch_without_change_is_not_a_conflict_and_rewrites_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    save(make_notebook(), path)
    loaded = read_notebook(path)
    os.utime(path, ns=(1, 1))
    insert_cells(loaded, [NewCell("one")], model=MODEL)
    write_notebook(loaded)
    insert_cells(loaded, [NewCell("two")], model=MODEL)
    write_notebook(loaded)  # the fingerprint now describes our own write
    sources = [c.source for c in read_notebook(path).nb.cells[-2:]]
    assert sources == ["one", "two"]


def test_failed_replace_leaves_original_and_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.ipynb"
    before = save(make_notebook(), path)
    loaded = read_notebook(path)
    insert_cells(loaded, [NewCell("x")], model=MODEL)

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(NotebookError, match="No space left on device"):
        write_notebook(loaded)
    assert path.read_bytes() == before
    assert leftovers(tmp_path, {"a.ipynb"}) == set()


def test_interrupt_during_fsync_leaves_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.ipynb"
    before = save(make_notebook(), path)
    loaded = read_notebook(path)
    insert_cells(loaded, [NewCell("x")], model=MODEL)

    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_notebook(loaded)
    assert path.read_bytes() == before
    assert leftovers(tmp_path, {"a.ipynb"}) == set()


def test_unserializable_content_is_refused_before_touching_disk(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    before = save(make_notebook(), path)
    loaded = read_notebook(path)
    insert_cells(loaded, [NewCell("x", metadata={"x_bad": object()})], model=MODEL)
    with pytest.raises(NotebookError, match="Refusing"):
        write_notebook(loaded)
    assert path.read_bytes() == before
    assert leftovers(tmp_path, {"a.ipynb"}) == set()


def test_invalid_notebook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    raw = json.loads(nbformat.writes(make_notebook()))
    raw["cells"][0]["execution_count"] = "one"  # schema: integer or null
    before = json.dumps(raw).encode()
    path.write_bytes(before)
    loaded = read_notebook(path)  # reading is allowed; writing it back is not
    insert_cells(loaded, [NewCell("x")], model=MODEL)
    with pytest.raises(NotebookError, match="invalid notebook"):
        write_notebook(loaded)
    assert path.read_bytes() == before
    assert leftovers(tmp_path, {"a.ipynb"}) == set()


def test_duplicate_ids_added_in_memory_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    save(make_notebook(), path)
    loaded = read_notebook(path)
    loaded.nb.cells[1].id = loaded.nb.cells[0].id
    with pytest.raises(NotebookError, match="invalid notebook"):
        write_notebook(loaded)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[1, 2]", "no 'nbformat'"),
        (b'{"cells": []}', "no 'nbformat'"),
        (b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": []}', "version 3"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "cells": 1, "metadata": {}}', "not a valid"),
    ],
)
def test_not_a_notebook(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookError, match=match) as info:
        read_notebook(path)
    assert isinstance(info.value, GlmError)
    assert "\n" not in info.value.one_line()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotebookError, match="not found"):
        read_notebook(tmp_path / "nope.ipynb")
    with pytest.raises(NotebookError, match="Could not read"):
        read_notebook(tmp_path)


def test_permission_bits_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    save(make_notebook(), path)
    path.chmod(0o640)
    insert_code_after(path, "x", model=MODEL)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_write_through_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.ipynb"
    save(make_notebook(), real)
    link = tmp_path / "link.ipynb"
    link.symlink_to(real)
    insert_code_after(link, "x", model=MODEL)
    assert link.is_symlink()
    assert real.read_text(encoding="utf-8").count("glm-magic") == 1


def test_output_path_and_overwrite_refusal(tmp_path: Path) -> None:
    src = tmp_path / "src.ipynb"
    before = save(make_notebook(), src)
    src.chmod(0o600)
    out = tmp_path / "out.ipynb"
    loaded = read_notebook(src)
    insert_cells(loaded, [NewCell("x")], model=MODEL)

    assert write_notebook(loaded, out) == out
    assert src.read_bytes() == before
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert loaded.path == out

    other = read_notebook(src)
    existing = out.read_bytes()
    with pytest.raises(NotebookError, match="already exists"):
        write_notebook(other, out)
    assert out.read_bytes() == existing
    write_notebook(other, out, overwrite=True)
    assert out.read_bytes() == before

    # The source itself given as "output" is an in-place write, conflict-checked.
    again = read_notebook(src)
    src.write_bytes(before.replace(b"x = 0", b"x = 9"))
    with pytest.raises(NotebookChangedError):
        write_notebook(again, src)


def test_newcell_rejects_unknown_type() -> None:
    with pytest.raises(ValueError, match="cell_type"):
        NewCell("x", "raw")  # type: ignore[arg-type]


def test_loaded_notebook_is_public_type(tmp_path: Path) -> None:
    path = tmp_path / "a.ipynb"
    save(make_notebook(), path)
    loaded = read_notebook(path)
    assert isinstance(loaded, LoadedNotebook)
    assert loaded.fingerprint.size == path.stat().st_size
    assert loaded.cell_index("cell-2") == 2


def test_all_names_exist() -> None:
    for name in nbmod.__all__:
        assert getattr(nbmod, name).__doc__


# --------------------------------------------------------------------------- paths


@pytest.fixture
def nb_file(tmp_path: Path) -> Path:
    path = tmp_path / "work" / "analysis.ipynb"
    path.parent.mkdir()
    save(make_notebook(), path)
    return path


def test_path_from_session_variable(nb_file: Path) -> None:
    found = find_notebook_path({"__session__": str(nb_file)}, environ={})
    assert found == NotebookPath(nb_file.resolve(), "session")


def test_path_from_env_relative_to_cwd(nb_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(nb_file.parent.parent)
    found = find_notebook_path({}, environ={"JPY_SESSION_NAME": "work/analysis.ipynb"})
    assert found == NotebookPath(nb_file.resolve(), "session")


def test_server_root_relative_path_from_notebook_dir(
    nb_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(nb_file.parent)  # kernels run in the notebook's directory
    found = find_notebook_path({}, environ={"JPY_SESSION_NAME": "work/analysis.ipynb"})
    assert found is not None
    assert found.path == nb_file.resolve()


def test_path_from_vscode(nb_file: Path) -> None:
    ns = {"__session__": str(nb_file.parent / "gone.ipynb"), "__vsc_ipynb_file__": str(nb_file)}
    found = find_notebook_path(ns, environ={})
    assert found == NotebookPath(nb_file.resolve(), "vscode")


def test_missing_or_wrong_files_give_none(nb_file: Path) -> None:
    script = nb_file.with_suffix(".py")
    script.write_text("x = 1\n")
    ns: dict[str, object] = {
        "__session__": str(nb_file.parent / "missing.ipynb"),
        "__vsc_ipynb_file__": str(script),
    }
    assert find_notebook_path(ns, environ={"JPY_SESSION_NAME": "a\0b.ipynb"}) is None
    assert find_notebook_path({"__session__": 42}, environ={}) is None
    assert find_notebook_path(environ={}, kernel_id="no-such-kernel") is None
    assert "path" in describe_missing_path()
    assert "\n" not in describe_missing_path()


@pytest.fixture
def sessions_server(nb_file: Path) -> Iterator[dict[str, Any]]:
    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps(
                [
                    {"path": "other.ipynb", "kernel": {"id": "k-other"}},
                    {"path": "work/analysis.ipynb", "kernel": {"id": "k-1"}},
                ]
            ).encode()
            self.send_response(200 if self.path == "/base/api/sessions" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {
            "url": f"http://127.0.0.1:{server.server_address[1]}/base/",
            "token": "t0k",
            "root_dir": str(nb_file.parent.parent),
            "seen": seen,
        }
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_path_from_server_sessions(sessions_server: dict[str, Any], nb_file: Path) -> None:
    assert nbmod._path_from_server(sessions_server, "k-1") == nb_file.resolve()
    assert sessions_server["seen"] == ["token t0k"]
    assert nbmod._path_from_server(sessions_server, "k-unknown") is None
    assert nbmod._path_from_server({"url": "http://127.0.0.1:9/"}, "k-1", timeout=0.5) is None
    assert nbmod._path_from_server({"url": "file:///etc/passwd"}, "k-1") is None


def test_current_kernel_id_outside_a_kernel() -> None:
    assert nbmod.current_kernel_id() is None
