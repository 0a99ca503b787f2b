"""One SQLite file for the gateway's state, in WAL mode with synchronous=FULL.

A write the gateway acknowledged survives a crash: each `transaction()` commits before the
caller answers. Modules declare their tables with `Database.ensure(schema)` (idempotent
`CREATE TABLE IF NOT EXISTS` statements) when they start, so each module owns its tables.

Calls are synchronous and short; the API runs them in FastAPI's threadpool or directly (a
few hundred microseconds each). One connection per thread (sqlite3 objects are not shared
across threads).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.store.private_files import prepare_sqlite_file


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._schemas: set[str] = set()
        self._lock = threading.Lock()
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        prepare_sqlite_file(path)
        # Outside any transaction: SQLite refuses to switch journal mode inside one.
        self._connection().execute("PRAGMA journal_mode=WAL")

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                   check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            # Deleted rows (a closed account's keys, a spent session) are overwritten with
            # zeros, not left in free pages of the file or the WAL.
            conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE): committed on exit, rolled back on error."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return list(self._connection().execute(sql, params).fetchall())

    def query_one(self, sql: str,
                  params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._connection().execute(sql, params).fetchone()
        return row

    def ensure(self, schema: str) -> None:
        """Create a module's tables once per Database (statements must be idempotent)."""
        with self._lock:
            if schema in self._schemas:
                return
            conn = self._connection()
            if conn.in_transaction:
                # executescript would COMMIT the caller's open transaction first, silently
                # splitting what was meant to be atomic: make the service (its tables) before
                # the transaction instead.
                raise RuntimeError("a schema is ensured inside an open transaction")
            conn.executescript(schema)
            self._schemas.add(schema)

    def ensure_columns(self, table: str, columns: dict[str, str]) -> None:
        """Add columns a later version declares to a table an earlier version created
        (`CREATE TABLE IF NOT EXISTS` leaves an existing table as it was)."""
        with self._lock:
            conn = self._connection()
            have = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
            for name, declaration in columns.items():
                if name not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def open_database(path: Path) -> Database:
    return Database(path)
