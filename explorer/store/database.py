"""The workbench's SQLite file: opened checked, in WAL mode, migrated to the current schema.

One file (`paths.data_dir()/workbench.sqlite3` unless told otherwise). At open, `PRAGMA integrity_check`
runs on a read-only connection first: a damaged file is reported (an ExplorerError naming it and what
to do) and left exactly as it was, never replaced or "repaired". The schema is versioned by
`PRAGMA user_version`: MIGRATIONS[i] takes a file from version i to i + 1, inside one transaction, so
a file of any earlier version opens; a file from a newer version of the app is refused.

Durability: WAL with `synchronous=FULL`, every write its own transaction (`BEGIN IMMEDIATE ... COMMIT`),
so a write that returned is on disk and survives a killed process (and a power cut). Writers in other
processes wait for the lock (busy timeout) instead of failing.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from explorer.errors import ExplorerError

FILE_NAME = "workbench.sqlite3"
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another process's write to finish

# Each step: the statements that take the schema from version i to i + 1. Never edit a released step
# (files out there were made by it): add a new one. tests/test_store.py keeps a frozen version-1 file.
MIGRATIONS: list[list[str]] = [
    [  # 1: corpora (deduplicated by content), cases, their link tokens (hashes only), queries, judgments
        "CREATE TABLE corpora (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, documents INTEGER NOT NULL)",
        "CREATE TABLE corpus_documents (corpus_key TEXT NOT NULL REFERENCES corpora(key), position INTEGER NOT NULL, "
        "id TEXT NOT NULL, text TEXT NOT NULL, title TEXT NOT NULL, PRIMARY KEY (corpus_key, position))",
        "CREATE TABLE cases (case_id TEXT PRIMARY KEY, name TEXT NOT NULL, corpus_kind TEXT NOT NULL, "
        "corpus_name TEXT NOT NULL, corpus_fingerprint TEXT NOT NULL, corpus_key TEXT REFERENCES corpora(key), "
        "settings TEXT NOT NULL, created TEXT NOT NULL)",
        "CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, case_id TEXT NOT NULL REFERENCES cases(case_id), "
        "can_edit INTEGER NOT NULL)",
        "CREATE TABLE queries (case_id TEXT NOT NULL REFERENCES cases(case_id), position INTEGER NOT NULL, "
        "text TEXT NOT NULL, PRIMARY KEY (case_id, text))",
        "CREATE TABLE judgments (case_id TEXT NOT NULL REFERENCES cases(case_id), query TEXT NOT NULL, "
        "doc_id TEXT NOT NULL, grade INTEGER NOT NULL CHECK (grade BETWEEN 0 AND 3), reason TEXT NOT NULL, "
        "PRIMARY KEY (case_id, query, doc_id))",
    ],
    [  # 2: snapshots; links that expire; when each judgment was last made
        "CREATE TABLE snapshots (case_id TEXT NOT NULL REFERENCES cases(case_id), name TEXT NOT NULL, "
        "created TEXT NOT NULL, rankings TEXT NOT NULL, scores TEXT NOT NULL, PRIMARY KEY (case_id, name))",
        "ALTER TABLE tokens ADD COLUMN expires REAL",  # unix time; NULL: never
        "ALTER TABLE judgments ADD COLUMN updated TEXT",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)


def _damaged(path: Path, problem: str) -> ExplorerError:
    return ExplorerError(
        f"The workbench database {path} is damaged ({problem}); it was left exactly as it is. Move it aside "
        "(keep it: an SQLite recovery tool may save its cases), or restore a backup, then start again: a new, "
        "empty database is made in its place. Cases exported as zips come back with `python -m explorer case import`."
    )


def check_file(path: Path) -> None:
    """`PRAGMA integrity_check` of an existing file on a read-only connection (nothing written, no checkpoint),
    and its schema version. Raises ExplorerError naming the file when it is damaged, not a database, or from a
    newer version of the app."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error as error:
        raise _damaged(path, str(error)) from None
    try:
        rows = [row[0] for row in connection.execute("PRAGMA integrity_check(5)")]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise _damaged(path, str(error)) from None
    finally:
        connection.close()
    if rows != ["ok"]:
        raise _damaged(path, "; ".join(rows))
    if version > SCHEMA_VERSION:
        raise ExplorerError(
            f"The workbench database {path} was written by a newer version of the app (schema {version}; this one "
            f"reads up to {SCHEMA_VERSION}). Update the app, or set EXPLORER_DATA to another folder."
        )


class Database:
    """One checked, migrated connection to the file, shared by the threads of this process under a lock."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ExplorerError(f"Cannot make the folder of {self.path}: {error.strerror or error}.") from None
        check_file(self.path)
        try:
            # isolation_level=None: no implicit transactions; each write below opens and commits its own.
            self._connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                               check_same_thread=False)
            mode = self._connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            self._connection.execute("PRAGMA synchronous=FULL")
            self._connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as error:
            raise _damaged(self.path, str(error)) from None
        except sqlite3.Error as error:
            raise ExplorerError(f"Cannot open the workbench database {self.path}: {error}.") from None
        if mode.lower() != "wal":
            raise ExplorerError(f"The workbench database {self.path} cannot use write-ahead logging (the file system "
                                f"gave journal mode {mode!r}); set EXPLORER_DATA to a folder on a local disk.")
        self._lock = threading.RLock()
        self.migrate()

    def migrate(self) -> int:
        """Bring the file to SCHEMA_VERSION, one step per transaction-held version; returns the version found."""
        with self.write() as cursor:
            found = cursor.execute("PRAGMA user_version").fetchone()[0]
            for version in range(found, SCHEMA_VERSION):
                for statement in MIGRATIONS[version]:
                    cursor.execute(statement)
            cursor.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return found

    @contextmanager
    def write(self):
        """A cursor inside `BEGIN IMMEDIATE ... COMMIT` (rolled back when the block raises): committed, hence
        on disk, when the block ends. SQLite's own failures (a full disk, a lock held past BUSY_TIMEOUT_S, damage
        found while writing) become an ExplorerError that says nothing was changed."""
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                yield cursor
                cursor.execute("COMMIT")
            except BaseException as error:
                if self._connection.in_transaction:
                    cursor.execute("ROLLBACK")
                if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
                    raise _damaged(self.path, str(error)) from None
                if isinstance(error, sqlite3.Error):
                    raise ExplorerError(f"The workbench database {self.path} could not be written ({error}); nothing "
                                        "was changed. Try again in a moment.") from None
                raise
            finally:
                cursor.close()

    @contextmanager
    def read(self):
        """A cursor inside one read transaction: every query in the block sees the same state."""
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN")
                yield cursor
            except sqlite3.Error as error:
                raise ExplorerError(f"The workbench database {self.path} could not be read ({error}).") from None
            finally:
                if self._connection.in_transaction:
                    cursor.execute("COMMIT")
                cursor.close()

    def size_bytes(self) -> int:
        """The database's size as SQLite counts it (pages x page size, the write-ahead log's pages included)."""
        with self._lock:
            pages = self._connection.execute("PRAGMA page_count").fetchone()[0]
            size = self._connection.execute("PRAGMA page_size").fetchone()[0]
        return pages * size

    def close(self) -> None:
        """Close the connection (the last one to close checkpoints the log into the file)."""
        with self._lock:
            self._connection.close()


Error = sqlite3.Error  # what callers in store/ catch without importing sqlite3 themselves
IntegrityError = sqlite3.IntegrityError
