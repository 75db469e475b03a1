"""Notebook files on disk: read, insert generated cells, write back safely; find the path.

This module owns every write glm-magic makes to an ``.ipynb`` file. A write is

* **conflict-checked**: the file is hashed when read and again just before it
  is replaced; if the bytes differ (a frontend saved in between) we refuse with
  :class:`~glm_magic.errors.NotebookChangedError` rather than lose that save;
* **validated** with ``nbformat.validate`` before anything touches the disk;
* **atomic**: written to a temporary file in the same directory, fsynced, then
  moved over the original with ``os.replace``, keeping its permission bits;
* **faithful**: no version conversion, and the JSON layout is exactly
  ``nbformat.writes`` (indent 1, sorted keys, trailing newline), so cells we did
  not touch serialize byte for byte as before.

It also finds the current notebook's path (``__session__`` / ``JPY_SESSION_NAME``,
VS Code's ``__vsc_ipynb_file__``, or a running Jupyter server's ``/api/sessions``).
nbformat is imported inside functions so that importing glm-magic stays cheap.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import json
import os
import re
import stat
import tempfile
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from .errors import NotebookChangedError, NotebookError

__all__ = [
    "Fingerprint",
    "LoadedNotebook",
    "NewCell",
    "NotebookPath",
    "current_kernel_id",
    "describe_missing_path",
    "find_notebook_path",
    "insert_cells",
    "insert_code_after",
    "read_notebook",
    "same_file",
    "write_notebook",
]

StrPath = str | os.PathLike[str]


@dataclass(frozen=True)
class Fingerprint:
    """What a notebook file looked like when read: content hash, mtime and size."""

    sha256: str
    mtime_ns: int
    size: int


@dataclass
class LoadedNotebook:
    """A parsed notebook (``nb``, an nbformat ``NotebookNode``) and where it came from.

    After a successful :func:`write_notebook`, ``path`` and ``fingerprint``
    describe the file just written, so the object can be edited and written again.
    """

    path: Path
    nb: Any  # nbformat.NotebookNode; nbformat ships no type information
    fingerprint: Fingerprint

    @property
    def has_cell_ids(self) -> bool:
        """Whether this notebook's format (nbformat >= 4.5) gives cells ids."""
        return (int(self.nb.nbformat), int(self.nb.nbformat_minor)) >= (4, 5)

    def cell_index(self, cell_id: str) -> int:
        """Return the position of the cell with id ``cell_id``; raise if there is none."""
        if not self.has_cell_ids:
            raise NotebookError(
                f"{self.path} uses nbformat {self.nb.nbformat}.{self.nb.nbformat_minor}, "
                "which has no cell ids; insert by position or at the end instead."
            )
        for index, cell in enumerate(self.nb.cells):
            if cell.get("id") == cell_id:
                return index
        raise NotebookError(f"No cell with id {cell_id!r} in {self.path}.")


@dataclass(frozen=True)
class NewCell:
    """A cell to insert: its source, its type and any extra cell metadata."""

    source: str
    cell_type: Literal["code", "markdown"] = "code"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Literal is only checked statically; a wrong type would make an invalid notebook.
        if self.cell_type not in ("code", "markdown"):
            raise ValueError(f"cell_type must be 'code' or 'markdown', not {self.cell_type!r}")


def _nbformat() -> Any:
    import nbformat  # lazy: importing glm_magic must stay cheap

    return nbformat


def read_notebook(path: StrPath) -> LoadedNotebook:
    """Read the notebook at ``path`` without converting its format version."""
    nbformat = _nbformat()
    path = Path(path)
    try:
        # One open for both bytes and stat, so the fingerprint describes what we parsed.
        with path.open("rb") as f:
            data = f.read()
            mtime_ns = os.fstat(f.fileno()).st_mtime_ns
    except FileNotFoundError:
        raise NotebookError(f"Notebook file not found: {path}.") from None
    except OSError as exc:
        raise NotebookError(f"Could not read {path}: {exc.strerror or exc}.") from exc
    fingerprint = Fingerprint(hashlib.sha256(data).hexdigest(), mtime_ns, len(data))
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotebookError(f"{path} is not a notebook: it is not valid UTF-8 JSON.") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("nbformat"), int):
        raise NotebookError(f"{path} is not a notebook: it has no 'nbformat' version field.")
    if raw["nbformat"] != 4:
        raise NotebookError(
            f"{path} uses nbformat version {raw['nbformat']}; only version 4 notebooks "
            "can be edited (open and save it in Jupyter to upgrade it)."
        )
    try:
        # What nbformat.reads(NO_CONVERT) does after parsing (rejoin multi-line
        # strings, drop transient keys), minus a validation that only logs: we
        # validate before writing instead.
        nb = nbformat.v4.to_notebook_json(raw)
    except Exception as exc:  # a missing key surfaces as AttributeError, a wrong type as TypeError
        reason = f"missing field {exc}" if isinstance(exc, (AttributeError, KeyError)) else exc
        raise NotebookError(f"{path} is not a valid notebook: {_clip(reason)}.") from exc
    with warnings.catch_warnings():
        # Same repair nbformat.read applies (missing or duplicate ids on 4.5+), but
        # quietly: the user cannot act on the warning and Jupyter does the same.
        warnings.simplefilter("ignore")
        _, nb = nbformat.validator.normalize(nb)
    return LoadedNotebook(path, nb, fingerprint)


def _new_cell_id(taken: set[str]) -> str:
    # Same shape as nbformat's own ids (8 hex chars); retry on the rare clash.
    while True:
        cell_id = uuid.uuid4().hex[:8]
        if cell_id not in taken:
            return cell_id


def insert_cells(
    loaded: LoadedNotebook,
    cells: Sequence[NewCell],
    *,
    model: str,
    after_cell_id: str | None = None,
    after_index: int | None = None,
) -> list[str]:
    """Insert ``cells`` into ``loaded.nb`` in memory and return their new ids.

    The cells go directly after the cell with id ``after_cell_id``, or after the
    cell at position ``after_index`` (``-1`` means at the top), or at the end when
    neither is given. Each carries ``metadata["glm_magic"]`` saying it was
    generated by ``model`` and when. Notebooks older than nbformat 4.5 have no
    cell ids: none are added (the format would become invalid) and the returned
    list is empty.
    """
    nbformat = _nbformat()
    nb_cells = loaded.nb.cells
    if after_cell_id is not None and after_index is not None:
        raise ValueError("pass after_cell_id or after_index, not both")
    if after_cell_id is not None:
        position = loaded.cell_index(after_cell_id) + 1
    elif after_index is not None:
        if not -1 <= after_index < len(nb_cells):
            raise NotebookError(
                f"Cell position {after_index} is out of range: {loaded.path} has "
                f"{len(nb_cells)} cells."
            )
        position = after_index + 1
    else:
        position = len(nb_cells)

    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    taken = {str(c["id"]) for c in nb_cells if "id" in c}
    built: list[Any] = []
    for new in cells:
        marker = {"generated": True, "model": model, "created": created}
        metadata = {**new.metadata, "glm_magic": marker}
        if new.cell_type == "code":
            cell = nbformat.v4.new_code_cell(new.source, metadata=metadata)
        else:
            cell = nbformat.v4.new_markdown_cell(new.source, metadata=metadata)
        if loaded.has_cell_ids:
            cell["id"] = _new_cell_id(taken)
            taken.add(cell["id"])
        else:
            del cell["id"]  # keeps a 4.4 notebook valid 4.4
        built.append(cell)
    nb_cells[position:position] = built
    return [str(c["id"]) for c in built if "id" in c]


def _serialize(loaded: LoadedNotebook) -> bytes:
    """Validate ``loaded.nb`` and return the exact bytes ``nbformat.write`` would produce."""
    nbformat = _nbformat()
    # validate() "repairs" missing/duplicate ids in place with a warning; work on a
    # copy, and treat those warnings as errors so we never rewrite ids silently.
    id_warnings = (nbformat.validator.MissingIDFieldWarning, nbformat.validator.DuplicateCellId)
    nb = copy.deepcopy(loaded.nb)
    try:
        with warnings.catch_warnings():
            for category in id_warnings:
                warnings.simplefilter("error", category)
            nbformat.validate(nb)
        text: str = nbformat.writes(nb, version=nbformat.NO_CONVERT)
        if not text.endswith("\n"):
            text += "\n"  # nbformat.write adds it; keep files identical to Jupyter's
        return text.encode("utf-8")
    except (nbformat.ValidationError, *id_warnings) as exc:
        # jsonschema's str() dumps the whole schema; .message is the one useful line.
        reason = _clip(getattr(exc, "message", None) or exc)
        raise NotebookError(f"Refusing to write an invalid notebook to disk: {reason}.") from exc
    except (TypeError, ValueError) as exc:  # unserializable metadata, lone surrogates
        raise NotebookError(f"Refusing to write a non-JSON notebook: {_clip(exc)}.") from exc


def _clip(reason: object, limit: int = 200) -> str:
    """One line, bounded, without a trailing period: the tail of an error sentence."""
    text = " ".join(str(reason).split()).rstrip(".")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (by inode when both exist, else by real path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _check_unchanged(path: Path, expected: Fingerprint) -> None:
    try:
        with path.open("rb") as f:
            current = f.read()
    except FileNotFoundError:
        raise NotebookChangedError(
            f"{path} was deleted or moved since it was read; reload it and try again."
        ) from None
    # The hash decides: mtime can be restored with os.utime and is coarse on some
    # filesystems, while a save that changes nothing should not count as a conflict.
    if len(current) != expected.size or hashlib.sha256(current).hexdigest() != expected.sha256:
        raise NotebookChangedError(
            f"{path} changed on disk since it was read; reload it and try again."
        )


def write_notebook(
    loaded: LoadedNotebook, path: StrPath | None = None, *, overwrite: bool = False
) -> Path:
    """Write ``loaded`` atomically to its own file, or to ``path``, and return the path.

    Writing back to the file it was read from refuses with
    :class:`NotebookChangedError` when that file's content changed since it was
    read. Writing to another path refuses to replace an existing file unless
    ``overwrite`` is true. An invalid notebook is never written. On any failure
    the target file is left exactly as it was and no temporary file remains.
    """
    target = loaded.path if path is None else Path(path)
    in_place = path is None or same_file(target, loaded.path)
    data = _serialize(loaded)
    # Write through symlinks: os.replace on the link itself would turn it into a file.
    real = Path(os.path.realpath(target))
    if not in_place and real.exists() and not overwrite:
        raise NotebookError(f"{target} already exists; choose another file or allow overwriting.")
    mode = 0o644
    for source in (real, loaded.path):  # keep the target's bits, else the original's
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(source.stat().st_mode)
            break
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, mode)
        if in_place:
            # Checked as late as possible, so the window for a lost update is the
            # time of one rename rather than of the whole serialization and write.
            _check_unchanged(real, loaded.fingerprint)
        os.replace(tmp_name, real)
        tmp_name = None
    except OSError as exc:
        raise NotebookError(f"Could not write {target}: {exc.strerror or exc}.") from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    # fsync the directory so the rename itself is durable (POSIX; Windows refuses).
    with contextlib.suppress(OSError):
        dir_fd = os.open(real.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    loaded.path = target
    mtime_ns = 0  # informative only: conflict checks compare the hash
    with contextlib.suppress(OSError):
        mtime_ns = real.stat().st_mtime_ns
    loaded.fingerprint = Fingerprint(hashlib.sha256(data).hexdigest(), mtime_ns, len(data))
    return target


def insert_code_after(
    path: StrPath,
    code: str,
    *,
    model: str,
    after_cell_id: str | None = None,
    header_comment: bool = True,
) -> str | None:
    """Read ``path``, insert one generated code cell, write it back; return the new id.

    The cell goes after ``after_cell_id`` (or at the end). With ``header_comment``
    its source starts with ``# generated by <model> via glm-magic``. Returns
    ``None`` for notebooks older than nbformat 4.5, whose cells have no ids.
    """
    if header_comment:
        header = f"# generated by {' '.join(model.split())} via glm-magic"
        if not code.startswith(header):
            code = f"{header}\n{code}"
    loaded = read_notebook(path)
    ids = insert_cells(loaded, [NewCell(code)], model=model, after_cell_id=after_cell_id)
    write_notebook(loaded)
    return ids[0] if ids else None


# --------------------------------------------------------------------------- paths

PathSource = Literal["session", "vscode", "server"]


@dataclass(frozen=True)
class NotebookPath:
    """An existing ``.ipynb`` file and how it was found (``session``, ``vscode``, ``server``)."""

    path: Path
    source: PathSource


def _existing_notebook(value: object, cwd: Path) -> Path | None:
    if not isinstance(value, str) or not value.lower().endswith(".ipynb"):
        return None
    try:
        candidate = cwd / Path(value).expanduser()  # an absolute value ignores cwd
        if candidate.is_file():
            return candidate.resolve()
        # jupyter_server may give the path relative to its root while the kernel runs
        # in the notebook's directory: "sub/a.ipynb" with cwd ".../root/sub" is ./a.ipynb.
        parent = Path(value).parent.parts
        if parent and cwd.parts[-len(parent) :] == parent and (cwd / Path(value).name).is_file():
            return (cwd / Path(value).name).resolve()
    except (OSError, RuntimeError, ValueError):  # no home dir, NUL bytes: not a path
        return None
    return None


def _path_from_server(info: Mapping[str, Any], kernel_id: str, timeout: float = 1.0) -> Path | None:
    """Ask one running Jupyter server which notebook holds ``kernel_id``; never raise."""
    import urllib.parse  # lazy: urllib.request pulls in http.client, email and ssl
    import urllib.request

    try:
        url = str(info.get("url") or "")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            return None  # unix-socket servers and odd schemes: urllib cannot reach them
        request = urllib.request.Request(urllib.parse.urljoin(url, "api/sessions"))
        token = info.get("token")
        if token:
            request.add_header("Authorization", f"token {token}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            sessions = json.loads(response.read().decode("utf-8"))
        root = Path(str(info.get("root_dir") or info.get("notebook_dir") or ".")).expanduser()
        for session in sessions:
            if (session.get("kernel") or {}).get("id") == kernel_id:
                # "path" since jupyter_server 1; "notebook.path" on old notebook servers.
                api_path = session.get("path") or (session.get("notebook") or {}).get("path")
                found = _existing_notebook(str(root / str(api_path or "")), root)
                if found is not None:
                    return found
    except Exception:  # discovery is best effort: a dead server must not break a magic
        return None
    return None


def find_notebook_path(
    user_ns: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
    kernel_id: str | None = None,
) -> NotebookPath | None:
    """Find the ``.ipynb`` file of the current kernel, or ``None``; never raises.

    Tries, in order: ``__session__`` in ``user_ns`` and ``JPY_SESSION_NAME`` in
    ``environ`` (default ``os.environ``), set by jupyter_server >= 2 but stale
    after a rename; ``__vsc_ipynb_file__`` in ``user_ns`` (VS Code); and, when
    ``kernel_id`` is given (see :func:`current_kernel_id`), the ``/api/sessions``
    of each running Jupyter server. Relative paths resolve against the working
    directory. Only an existing file ending in ``.ipynb`` is returned.
    """
    ns: Mapping[str, object] = user_ns if user_ns is not None else {}
    env: Mapping[str, str] = environ if environ is not None else os.environ
    try:
        cwd = Path.cwd()
    except OSError:  # the working directory was deleted
        return None
    candidates: list[tuple[object, PathSource]] = [
        (ns.get("__session__"), "session"),
        (env.get("JPY_SESSION_NAME"), "session"),
        (ns.get("__vsc_ipynb_file__"), "vscode"),
    ]
    for value, source in candidates:
        found = _existing_notebook(value, cwd)
        if found is not None:
            return NotebookPath(found, source)
    if not kernel_id:
        return None
    try:
        serverapp = importlib.import_module("jupyter_server.serverapp")
        servers = list(serverapp.list_running_servers())
    except Exception:  # not installed, or a broken runtime dir: nothing to ask
        return None
    for info in servers:
        found = _path_from_server(info, kernel_id) if isinstance(info, Mapping) else None
        if found is not None:
            return NotebookPath(found, "server")
    return None


def describe_missing_path() -> str:
    """One line telling the user how to name the notebook when discovery fails."""
    return (
        "Could not tell which .ipynb file this kernel belongs to (no __session__, "
        "JPY_SESSION_NAME, __vsc_ipynb_file__ or matching Jupyter server session); "
        "pass the notebook's path explicitly."
    )


def current_kernel_id() -> str | None:
    """Return the running ipykernel's id (from ``kernel-<id>.json``), or ``None``."""
    try:
        connect = importlib.import_module("ipykernel.connect")
        name = os.path.basename(str(connect.get_connection_file()))
    except Exception:  # no ipykernel, or not running inside a kernel
        return None
    match = re.fullmatch(r"kernel-(.+)\.json", name)
    return match.group(1) if match else None
