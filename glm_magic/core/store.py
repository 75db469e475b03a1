"""The reply store: answers kept by everything that decided them, so a re-run replays them.

The key (:func:`request_key`) is a SHA-256 of the endpoint's host, the model,
the exact messages sent (context included, after masking) and the sampling
settings; never the API key. The store is one SQLite file in the user's cache
directory (``$GLM_MAGIC_CACHE_DIR`` wins). SQLite, from the standard library,
because it gives what a cache shared by several kernels needs and a folder of
JSON files does not: atomic transactions, file locking between processes
(two kernels writing at once lose or tear nothing; a writer waits up to
:data:`BUSY_SECONDS`), a primary-key lookup that stays fast at 10,000 entries,
and one file to delete. Its size is capped (:data:`DEFAULT_MAX_BYTES`): the
oldest entries go first.

A store that cannot be used (a corrupt or truncated file, a lock held too
long, a read-only disk) is reported in one line, once per problem, and the
request goes to the API as if there were no store. The file is never
deleted or emptied to "repair" it: that is the user's call.

The same file keeps the chat panel's conversation per notebook
(:meth:`ReplyStore.load_panel`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..provenance import record, reply_from_record

if TYPE_CHECKING:
    from ..config import Settings
    from ..reply import Reply

__all__ = [
    "BUSY_SECONDS",
    "CACHE_DIR_ENV",
    "CACHE_ENV",
    "CACHE_MODES",
    "DEFAULT_MAX_BYTES",
    "ReplyStore",
    "cache_dir",
    "cache_mode",
    "request_key",
]

#: ``off`` | ``replay`` | ``refresh``: the default of ``GlmMagics.cache`` (CI sets it).
CACHE_ENV = "GLM_MAGIC_CACHE"
#: Where the store lives (default: the user's cache directory).
CACHE_DIR_ENV = "GLM_MAGIC_CACHE_DIR"
CACHE_MODES = ("off", "replay", "refresh")
#: The store's size cap (the replies' JSON): 64 MB holds tens of thousands of answers.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
#: How long a writer waits for another process's lock before giving up on the store.
BUSY_SECONDS = 5.0
#: Bumped when the key's inputs change, so old entries are simply never found.
KEY_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    model TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS replies_created ON replies (created);
CREATE TABLE IF NOT EXISTS panels (
    notebook TEXT PRIMARY KEY,
    updated REAL NOT NULL,
    data TEXT NOT NULL
);
"""


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of the store: ``$GLM_MAGIC_CACHE_DIR``, else the platform's user cache."""
    env = os.environ if environ is None else environ
    chosen = env.get(CACHE_DIR_ENV, "").strip()
    if chosen:
        return Path(chosen).expanduser()
    if sys.platform == "win32":
        base = Path(env.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "glm-magic"


def cache_mode(value: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """``value`` if given, else ``$GLM_MAGIC_CACHE``, else ``replay``; checked."""
    env = os.environ if environ is None else environ
    mode = (value or env.get(CACHE_ENV, "") or "replay").strip().lower()
    if mode not in CACHE_MODES:
        from ..errors import ConfigError

        raise ConfigError(f"cache must be one of off, replay, refresh, not {mode!r}")
    return mode


def request_key(settings: Settings, messages: Sequence[Mapping[str, Any]]) -> str:
    """The store key of one request: what decides the answer, hashed; never the API key.

    ``messages`` are those sent (context included, masked, keys removed).
    The endpoint counts by host only: the same service behind another port or
    path prefix answers the same way, and a scheme change is no new answer.
    """
    host = (urlsplit(settings.base_url).hostname or "").lower()
    material = {
        "v": KEY_VERSION,
        "host": host,
        "model": settings.model,
        "messages": list(messages),
        "sampling": {
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            "thinking": settings.thinking,
        },
    }
    canonical = json.dumps(
        material, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class ReplyStore:
    """Replies by request key in one SQLite file, safe to share between processes.

    Every method reports a failure through ``warn`` (one line, once per
    problem) and returns as if the store were empty; none raises.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        warn: Callable[[str], None] | None = None,
        busy_seconds: float = BUSY_SECONDS,
    ) -> None:
        self.path = Path(path) if path is not None else cache_dir() / "replies.sqlite3"
        self.max_bytes = max_bytes
        self.busy_seconds = busy_seconds
        self._warn = warn or (lambda line: print(line, file=sys.stderr))
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"<ReplyStore {self.path}>"

    # -- plumbing -------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, timeout=self.busy_seconds, isolation_level=None, check_same_thread=False
            )
            try:
                # WAL: readers never wait for a writer; NORMAL sync is safe with WAL.
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.executescript(_SCHEMA)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _failed(self, doing: str, exc: BaseException) -> None:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        line = (
            f"glm-magic: the reply store {self.path} could not be {doing} ({detail}); "
            "asking the API without it (the file was left as it is)"
        )
        if self._db is not None:
            self._db.close()  # reconnect next time: the problem may pass (a lock)
            self._db = None
        if detail not in self._warned:
            self._warned.add(detail)
            self._warn(line)

    def close(self) -> None:
        """Close the connection (reopened on the next use)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- replies --------------------------------------------------------------------------

    def get(self, key: str) -> Reply | None:
        """The stored reply for ``key``, marked replayed; ``None`` when absent or unusable."""
        with self._lock:
            try:
                row = (
                    self._connect()
                    .execute("SELECT data FROM replies WHERE key = ?", (key,))
                    .fetchone()
                )
            except (sqlite3.Error, OSError) as exc:
                self._failed("read", exc)
                return None
        if row is None:
            return None
        try:
            return reply_from_record(json.loads(row[0]), key)
        except (ValueError, TypeError) as exc:
            self._failed("read", ValueError(f"entry {key[:12]} is malformed: {exc}"))
            return None

    def put(self, key: str, reply: Reply) -> bool:
        """Keep (or replace) the reply for ``key``; evict the oldest beyond the cap."""
        data = json.dumps(record(reply), ensure_ascii=False)
        size = len(data.encode("utf-8", "surrogatepass"))
        with self._lock:
            try:
                db = self._connect()
                db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
                try:
                    db.execute(
                        "INSERT OR REPLACE INTO replies (key, created, size, model, data) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (key, time.time(), size, reply.model, data),
                    )
                    self._evict(db)
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as exc:
                self._failed("written", exc)
                return False
        return True

    def _evict(self, db: sqlite3.Connection) -> None:
        total = db.execute("SELECT COALESCE(SUM(size), 0) FROM replies").fetchone()[0]
        if total <= self.max_bytes:
            return
        over = total - self.max_bytes
        doomed: list[str] = []
        for key, size in db.execute("SELECT key, size FROM replies ORDER BY created, rowid"):
            if over <= 0:
                break
            doomed.append(key)
            over -= size
        db.executemany("DELETE FROM replies WHERE key = ?", [(k,) for k in doomed])

    def __len__(self) -> int:
        with self._lock:
            try:
                return int(self._connect().execute("SELECT COUNT(*) FROM replies").fetchone()[0])
            except (sqlite3.Error, OSError) as exc:
                self._failed("read", exc)
                return 0

    # -- the panel's conversation ---------------------------------------------------------

    def load_panel(self, notebook: str) -> list[dict[str, str]]:
        """The panel's saved turns for ``notebook`` (``[]`` when none or unreadable)."""
        with self._lock:
            try:
                row = (
                    self._connect()
                    .execute("SELECT data FROM panels WHERE notebook = ?", (notebook,))
                    .fetchone()
                )
            except (sqlite3.Error, OSError) as exc:
                self._failed("read", exc)
                return []
        if row is None:
            return []
        try:
            turns = json.loads(row[0])
        except ValueError:
            return []
        return [
            {k: str(t.get(k, "")) for k in ("user", "assistant", "model")}
            for t in turns
            if isinstance(t, dict)
        ]

    def save_panel(self, notebook: str, turns: Sequence[Mapping[str, str]]) -> None:
        """Keep the panel's turns for ``notebook`` (an empty list forgets them)."""
        with self._lock:
            try:
                db = self._connect()
                if turns:
                    db.execute(
                        "INSERT OR REPLACE INTO panels (notebook, updated, data) VALUES (?, ?, ?)",
                        (notebook, time.time(), json.dumps(list(map(dict, turns)))),
                    )
                else:
                    db.execute("DELETE FROM panels WHERE notebook = ?", (notebook,))
            except (sqlite3.Error, OSError) as exc:
                self._failed("written", exc)
