"""The gateway's files are 0600 (its databases with their -wal/-shm, its log), an existing
0644 one is narrowed, and a deleted row's bytes are gone from the database files (SQLite's
secure_delete) once the WAL is checkpointed."""

from __future__ import annotations

import os
import secrets
import stat
import sys
from pathlib import Path

from gateway.cli.processes import _spawn
from gateway.core.config import Settings
from gateway.profile.store import ProfileStore
from gateway.services.state import build_state
from gateway.store import Database


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _database_files(path: Path) -> list[Path]:
    return [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]


async def test_every_file_of_a_fresh_data_dir_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "gateway"
    state = build_state(Settings(data_dir=data_dir, connection=tmp_path / "connection.json",
                                 mode="development", argon2_profile="interactive"))
    try:
        state.db.ensure("CREATE TABLE IF NOT EXISTS t (v TEXT);")
        with state.db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES ('x')")
        with ProfileStore(data_dir / "profile.sqlite"):
            pass
        _spawn([sys.executable, "-c", "print('started')"], data_dir / "gateway.log").wait()
        files = sorted(p for p in data_dir.rglob("*") if p.is_file())
        names = {p.name for p in files}
        assert {"gateway.sqlite", "gateway.sqlite-wal", "gateway.sqlite-shm", "secrets.json",
                "profile.sqlite", "gateway.log"} <= names
        assert {p.name: oct(_mode(p)) for p in files} == {p.name: oct(0o600) for p in files}
    finally:
        await state.close()


def test_an_existing_world_readable_database_is_narrowed(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    Database(path).close()
    for file in _database_files(path):
        os.chmod(file, 0o644)
    db = Database(path)
    try:
        assert [oct(_mode(p)) for p in _database_files(path)] == [oct(0o600)] * len(
            _database_files(path))
    finally:
        db.close()


def test_deleted_rows_leave_no_bytes_in_the_files(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite"
    db = Database(path)
    canary = f"canary-{secrets.token_hex(8)}"
    db.ensure("CREATE TABLE IF NOT EXISTS secrets_t (id INTEGER PRIMARY KEY, v TEXT);")
    with db.transaction() as conn:
        conn.executemany("INSERT INTO secrets_t (v) VALUES (?)",
                         [(f"keep-{i}",) for i in range(50)] + [(canary,)])
    with db.transaction() as conn:
        conn.execute("DELETE FROM secrets_t WHERE v = ?", (canary,))
    db.query_one("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for file in _database_files(path):
        assert canary.encode() not in file.read_bytes(), file.name


def test_preparing_an_open_database_keeps_this_process_s_sqlite_locks(tmp_path: Path) -> None:
    """Closing any descriptor of a file drops every POSIX lock the process holds on it, so
    preparing a database another connection of this process has open must not open the file:
    the connection's write lock must still keep a second process out."""
    import sqlite3
    import subprocess
    import sys

    from gateway.store.private_files import prepare_sqlite_file

    path = tmp_path / "held.sqlite"
    prepare_sqlite_file(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        prepare_sqlite_file(path)
        probe = ("import sqlite3, sys\n"
                 "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n"
                 "try:\n    c.execute('BEGIN EXCLUSIVE')\nexcept sqlite3.OperationalError:\n"
                 "    print('locked')\nelse:\n    print('acquired')\n")
        out = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                             text=True, timeout=30, check=True).stdout.strip()
        assert out == "locked"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
