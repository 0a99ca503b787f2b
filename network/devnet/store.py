"""SQLite persistence of the devnet ledger: blocks, tx index, world state, private data, events.

One database file in WAL mode with synchronous=FULL: a block and every state change it causes
are written in a single SQLite transaction, so a crash leaves either the whole block or none of
it. Reads (simulation, queries) use an autocommit connection on the event-loop thread; the
block commit runs on its own connection in a worker thread so gRPC traffic keeps flowing while
SQLite fsyncs.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from network.devnet._protos import common_pb2
from network.devnet.blocks import ChainError, verify_block

SCHEMA = """
CREATE TABLE IF NOT EXISTS blocks(
    number INTEGER PRIMARY KEY, header_hash BLOB NOT NULL, block BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs(
    txid TEXT PRIMARY KEY, block INTEGER NOT NULL, txnum INTEGER NOT NULL,
    code INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state(
    ns TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, block INTEGER NOT NULL,
    txnum INTEGER NOT NULL, metadata BLOB, PRIMARY KEY(ns, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pvt_hashed(
    ns TEXT NOT NULL, coll TEXT NOT NULL, key_hash BLOB NOT NULL, value_hash BLOB NOT NULL,
    block INTEGER NOT NULL, txnum INTEGER NOT NULL, metadata BLOB,
    PRIMARY KEY(ns, coll, key_hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pvt_data(
    org TEXT NOT NULL, ns TEXT NOT NULL, coll TEXT NOT NULL, key BLOB NOT NULL,
    key_hash BLOB NOT NULL, value BLOB NOT NULL, block INTEGER NOT NULL, txnum INTEGER NOT NULL,
    PRIMARY KEY(org, ns, coll, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pvt_data_hash ON pvt_data(ns, coll, key_hash);
CREATE TABLE IF NOT EXISTS pvt_expiry(
    ns TEXT NOT NULL, coll TEXT NOT NULL, key_hash BLOB NOT NULL, expiry_block INTEGER NOT NULL,
    PRIMARY KEY(ns, coll, key_hash)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pvt_expiry_block ON pvt_expiry(expiry_block);
CREATE TABLE IF NOT EXISTS events(
    block INTEGER NOT NULL, txnum INTEGER NOT NULL, txid TEXT NOT NULL, chaincode TEXT NOT NULL,
    name TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY(block, txnum)) WITHOUT ROWID;
"""

_RANGE_EXCLUSIVE = ("SELECT key, value, block, txnum FROM state WHERE ns=? AND key>=? AND key<?"
                    " ORDER BY key LIMIT ?")
_RANGE_INCLUSIVE = ("SELECT key, value, block, txnum FROM state WHERE ns=? AND key>=? AND key<=?"
                    " ORDER BY key LIMIT ?")

Version = tuple[int, int]
StateKey = tuple[str, bytes]
HashedKey = tuple[str, str, bytes]


@dataclass(frozen=True)
class StateEntry:
    value: bytes
    version: Version
    metadata: bytes | None


@dataclass(frozen=True)
class HashedEntry:
    value_hash: bytes
    version: Version
    metadata: bytes | None


@dataclass
class BlockWrites:
    """Everything one block commits; built by the validator, written by Store.commit_block."""

    number: int
    header_hash: bytes
    block_bytes: bytes
    # (ns, key) -> StateEntry, or None to delete
    state: dict[StateKey, StateEntry | None] = field(default_factory=dict)
    # (ns, coll, key_hash) -> HashedEntry, or None to delete
    hashed: dict[HashedKey, HashedEntry | None] = field(default_factory=dict)
    # (org, ns, coll, key) -> (key_hash, value, version)
    private_puts: dict[tuple[str, str, str, bytes], tuple[bytes, bytes, Version]] = field(
        default_factory=dict)
    # (ns, coll, key_hash) whose cleartext every org drops (delete, purge)
    private_deletes: set[HashedKey] = field(default_factory=set)
    # (ns, coll, key_hash) -> block at whose commit the private data expires (blockToLive)
    expiries: dict[HashedKey, int] = field(default_factory=dict)
    txs: list[tuple[str, int, int]] = field(default_factory=list)  # (txid, txnum, code)
    events: list[tuple[int, str, str, str, bytes]] = field(default_factory=list)


def _prepare_private(path: Path) -> None:
    """The ledger file (private data in clear) is 0600 before SQLite opens it: SQLite creates
    it with the umask and its -wal/-shm with the database's mode.

    Called once, before this process opens any connection to it, and an existing file is
    only chmod-ed: closing any descriptor of a file drops every POSIX lock the process holds
    on it, SQLite's included (a reader opened later would have released the writer's locks)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        pass
    else:
        os.close(fd)
    os.chmod(path, 0o600)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, 0o600)


class Store:
    """The devnet ledger database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _prepare_private(path)
        self._read = self._connect()
        self._read.executescript(SCHEMA)
        self._write = self._connect(check_same_thread=False)
        self._write_lock = threading.Lock()

    def _connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=check_same_thread, timeout=30
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # A purged or deleted private value is overwritten with zeros in the file and the
        # WAL, not left in a free page (Credential:Erase + Purge must remove the plaintext).
        conn.execute("PRAGMA secure_delete=ON")
        return conn

    def close(self) -> None:
        with self._write_lock:
            self._write.close()
        self._read.close()

    # ---- chain -------------------------------------------------------------------------
    def height(self) -> int:
        row = self._read.execute("SELECT MAX(number) FROM blocks").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def last_header_hash(self) -> bytes:
        row = self._read.execute(
            "SELECT header_hash FROM blocks ORDER BY number DESC LIMIT 1").fetchone()
        return b"" if row is None else bytes(row[0])

    def block(self, number: int) -> Any | None:
        row = self._read.execute("SELECT block FROM blocks WHERE number=?", (number,)).fetchone()
        if row is None:
            return None
        block = common_pb2.Block()
        block.ParseFromString(row[0])
        return block

    def verify_chain(self) -> int:
        """Re-hash every stored block and check the links; return the height. Raises ChainError."""
        previous = b""
        expected = 0
        for number, header_hash, raw in self._read.execute(
            "SELECT number, header_hash, block FROM blocks ORDER BY number"
        ):
            block = common_pb2.Block()
            try:
                block.ParseFromString(raw)
            except Exception as exc:
                raise ChainError(f"block {number} does not decode: {exc}") from exc
            if number != expected:
                raise ChainError(f"block {expected} is missing (found {number})")
            computed = verify_block(block, expected, previous)
            if computed != bytes(header_hash):
                raise ChainError(f"block {number}: stored header hash does not match")
            previous = computed
            expected += 1
        return expected

    def tx_count(self) -> tuple[int, int]:
        """(all transactions, valid transactions)."""
        row = self._read.execute(
            "SELECT COUNT(*), COALESCE(SUM(code = 0), 0) FROM txs").fetchone()
        return int(row[0]), int(row[1])

    def tx_status(self, txid: str) -> tuple[int, int] | None:
        """(validation code, block number) of a committed transaction."""
        row = self._read.execute("SELECT code, block FROM txs WHERE txid=?", (txid,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def tx_block(self, txid: str) -> int | None:
        row = self._read.execute("SELECT block FROM txs WHERE txid=?", (txid,)).fetchone()
        return None if row is None else int(row[0])

    # ---- public state ------------------------------------------------------------------
    def get_state(self, ns: str, key: bytes) -> StateEntry | None:
        row = self._read.execute(
            "SELECT value, block, txnum, metadata FROM state WHERE ns=? AND key=?", (ns, key)
        ).fetchone()
        if row is None:
            return None
        return StateEntry(bytes(row[0]), (int(row[1]), int(row[2])),
                          None if row[3] is None else bytes(row[3]))

    def range(self, ns: str, start: bytes, end: bytes, *, include_end: bool = False,
              limit: int = -1) -> list[tuple[bytes, bytes, Version]]:
        """Keys in [start, end) (or [start, end] with include_end), byte order; empty end = open."""
        if end:
            sql = _RANGE_INCLUSIVE if include_end else _RANGE_EXCLUSIVE
            args: tuple[object, ...] = (ns, start, end, limit)
        else:
            sql = ("SELECT key, value, block, txnum FROM state WHERE ns=? AND key>=?"
                   " ORDER BY key LIMIT ?")
            args = (ns, start, limit)
        return [(bytes(k), bytes(v), (int(b), int(t)))
                for k, v, b, t in self._read.execute(sql, args)]

    # ---- private state -----------------------------------------------------------------
    def get_hashed(self, ns: str, coll: str, key_hash: bytes) -> HashedEntry | None:
        row = self._read.execute(
            "SELECT value_hash, block, txnum, metadata FROM pvt_hashed"
            " WHERE ns=? AND coll=? AND key_hash=?", (ns, coll, key_hash)
        ).fetchone()
        if row is None:
            return None
        return HashedEntry(bytes(row[0]), (int(row[1]), int(row[2])),
                           None if row[3] is None else bytes(row[3]))

    def get_private(self, org: str, ns: str, coll: str, key: bytes) -> bytes | None:
        row = self._read.execute(
            "SELECT value FROM pvt_data WHERE org=? AND ns=? AND coll=? AND key=?",
            (org, ns, coll, key)).fetchone()
        return None if row is None else bytes(row[0])

    def private_range(self, org: str, ns: str, coll: str, start: bytes, end: bytes,
                      limit: int = -1) -> list[tuple[bytes, bytes]]:
        if end:
            sql = ("SELECT key, value FROM pvt_data WHERE org=? AND ns=? AND coll=? AND key>=?"
                   " AND key<? ORDER BY key LIMIT ?")
            args: tuple[object, ...] = (org, ns, coll, start, end, limit)
        else:
            sql = ("SELECT key, value FROM pvt_data WHERE org=? AND ns=? AND coll=? AND key>=?"
                   " ORDER BY key LIMIT ?")
            args = (org, ns, coll, start, limit)
        return [(bytes(k), bytes(v)) for k, v in self._read.execute(sql, args)]

    def private_orgs_holding(self, ns: str, coll: str, key: bytes) -> list[str]:
        """Which orgs' private stores hold a key (for inspection and tests)."""
        return [r[0] for r in self._read.execute(
            "SELECT org FROM pvt_data WHERE ns=? AND coll=? AND key=? ORDER BY org",
            (ns, coll, key))]

    # ---- events ------------------------------------------------------------------------
    def events_from(self, chaincode: str, start_block: int, end_block: int
                    ) -> Iterator[tuple[int, int, str, str, bytes]]:
        """(block, txnum, txid, name, payload) for blocks in [start_block, end_block)."""
        for block, txnum, txid, name, payload in self._read.execute(
            "SELECT block, txnum, txid, name, payload FROM events WHERE chaincode=?"
            " AND block>=? AND block<? ORDER BY block, txnum", (chaincode, start_block, end_block)
        ):
            yield int(block), int(txnum), str(txid), str(name), bytes(payload)

    # ---- commit ------------------------------------------------------------------------
    def commit_block(self, w: BlockWrites) -> None:
        """Write one block and all its effects atomically and durably (from a worker thread)."""
        with self._write_lock:
            c = self._write
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute("INSERT INTO blocks(number, header_hash, block) VALUES (?,?,?)",
                          (w.number, w.header_hash, w.block_bytes))
                c.executemany("INSERT OR IGNORE INTO txs(txid, block, txnum, code)"
                              " VALUES (?,?,?,?)",
                              [(txid, w.number, txnum, code) for txid, txnum, code in w.txs])
                puts = [(ns, key, e.value, e.version[0], e.version[1], e.metadata)
                        for (ns, key), e in w.state.items() if e is not None]
                dels = [(ns, key) for (ns, key), e in w.state.items() if e is None]
                c.executemany("INSERT OR REPLACE INTO state(ns, key, value, block, txnum, metadata)"
                              " VALUES (?,?,?,?,?,?)", puts)
                c.executemany("DELETE FROM state WHERE ns=? AND key=?", dels)
                # Private data expiring at this block goes first, so a rewrite in this very
                # block (which re-registers its own expiry) survives.
                expired = c.execute("SELECT ns, coll, key_hash FROM pvt_expiry WHERE"
                                    " expiry_block<=?", (w.number,)).fetchall()
                c.executemany("DELETE FROM pvt_hashed WHERE ns=? AND coll=? AND key_hash=?",
                              expired)
                c.executemany("DELETE FROM pvt_data WHERE ns=? AND coll=? AND key_hash=?", expired)
                c.execute("DELETE FROM pvt_expiry WHERE expiry_block<=?", (w.number,))
                hputs = [(ns, coll, kh, e.value_hash, e.version[0], e.version[1], e.metadata)
                         for (ns, coll, kh), e in w.hashed.items() if e is not None]
                hdels = [k for k, e in w.hashed.items() if e is None]
                c.executemany("INSERT OR REPLACE INTO pvt_hashed(ns, coll, key_hash, value_hash,"
                              " block, txnum, metadata) VALUES (?,?,?,?,?,?,?)", hputs)
                c.executemany("DELETE FROM pvt_hashed WHERE ns=? AND coll=? AND key_hash=?", hdels)
                c.executemany("DELETE FROM pvt_data WHERE ns=? AND coll=? AND key_hash=?",
                              list(w.private_deletes))
                c.executemany("DELETE FROM pvt_expiry WHERE ns=? AND coll=? AND key_hash=?",
                              list(w.private_deletes))
                c.executemany(
                    "INSERT OR REPLACE INTO pvt_data(org, ns, coll, key, key_hash, value, block,"
                    " txnum) VALUES (?,?,?,?,?,?,?,?)",
                    [(org, ns, coll, key, kh, value, v[0], v[1])
                     for (org, ns, coll, key), (kh, value, v) in w.private_puts.items()])
                c.executemany("INSERT OR REPLACE INTO pvt_expiry(ns, coll, key_hash, expiry_block)"
                              " VALUES (?,?,?,?)",
                              [(ns, coll, kh, b) for (ns, coll, kh), b in w.expiries.items()])
                c.executemany("INSERT INTO events(block, txnum, txid, chaincode, name, payload)"
                              " VALUES (?,?,?,?,?,?)",
                              [(w.number, txnum, txid, cc, name, payload)
                               for txnum, txid, cc, name, payload in w.events])
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
