"""gateway/store/db.py: a module's schema is never run inside a caller's open transaction
(SQLite's executescript would COMMIT it first, splitting what the caller meant to be one
atomic write); the refusal leaves the transaction whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store.db import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS later (k TEXT PRIMARY KEY);"


def test_a_schema_ensured_inside_a_transaction_is_refused_and_the_transaction_rolls_back(
        tmp_path: Path) -> None:
    db = Database(tmp_path / "g.sqlite")
    db.ensure("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);")
    with pytest.raises(RuntimeError, match="inside an open transaction"):
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES ('first half')")
            db.ensure(SCHEMA)
    # Before the guard the insert was committed by executescript and stayed.
    assert db.query("SELECT k FROM t") == []
    db.ensure(SCHEMA)  # outside a transaction it runs, once
    assert db.query("SELECT name FROM sqlite_master WHERE name = 'later'")
    db.close()
