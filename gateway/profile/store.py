"""`ProfileStore`: the holder's encrypted smart profile in one SQLite file.

Tables (schema version 1, `PRAGMA user_version`)::

    records(id, owner, kind, source, created, size,
            nonce, ciphertext, meta_nonce, meta_ciphertext)
        (the nonce columns are empty for rows sealed as envelopes, 24 bytes for rows written
        before them: see `gateway.profile.sealing`)
    envelopes(record_id -> records.id ON DELETE CASCADE, recipient, recipient_public,
              sealed_key, created)            PRIMARY KEY (record_id, recipient)

`owner` and `recipient` are X25519 key ids (`gateway.holder.x25519.x25519_key_id`): a hash of
a key that exists only off-ledger, so a store row links to nothing on the ledger. In clear the
store holds only ids, kind, source, creation time, size, the recipients' public keys and
ciphertexts; the data and the caller's metadata are encrypted (see `gateway.profile.sealing`).
Put anything sensitive in the metadata or data, not in `kind` or `source`.

Who can open what: the owner's envelope is sealed to the holder's profile key
(`gateway.holder.keys.profile_key(master)`), which needs the master secret, which needs the
password and the face factor (`gateway.holder.vault`); a grantee's envelope is sealed to the
grantee's own X25519 key. The gateway operator, holding this file and the face-factor keys,
holds no private key that opens an envelope.

`unshare` removes the grantee's envelope and re-keys the record (new data key, both parts
re-encrypted, envelopes re-sealed for the owner and the remaining grantees), so a data key a
former grantee kept no longer opens the stored ciphertext. What the grantee already read, it
keeps: no store can take back plaintext that was released.

Durability: WAL with synchronous=FULL (a committed record survives power loss), foreign keys
on, secure_delete on (deleted ciphertext pages are zeroed, not left in free pages). One
connection guarded by a lock, so a store can be shared between threads.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey, PublicKey

from face_engine import envelope
from gateway.holder.x25519 import x25519_key_id
from gateway.profile import sealing
from gateway.profile.errors import AccessDenied, InvalidRecord, RecordCorrupt, RecordNotFound
from gateway.store.private_files import prepare_sqlite_file

SCHEMA_VERSION = 1
MAX_DATA_BYTES = 32 * 1024 * 1024
MAX_METADATA_BYTES = 64 * 1024
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,63}")
_RECORD_ID = re.compile(r"[0-9a-f]{32}")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    created INTEGER NOT NULL,
    size INTEGER NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    meta_nonce BLOB NOT NULL,
    meta_ciphertext BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_owner ON records (owner);
CREATE TABLE IF NOT EXISTS envelopes (
    record_id TEXT NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    recipient_public BLOB NOT NULL,
    sealed_key BLOB NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (record_id, recipient)
);
CREATE INDEX IF NOT EXISTS envelopes_recipient ON envelopes (recipient);
"""


@dataclass(frozen=True)
class RecordInfo:
    """What `list_records` gives: everything but the data itself (metadata decrypted)."""

    record_id: str
    owner: str  # the owner's X25519 key id
    kind: str
    source: str
    created: int
    size: int
    metadata: dict[str, Any]
    owned: bool  # True when the listing key is the owner's, False for a grantee


@dataclass(frozen=True)
class _Row:
    record_id: str
    owner: str
    kind: str
    source: str
    created: int
    size: int
    nonce: bytes
    ciphertext: bytes
    meta_nonce: bytes
    meta_ciphertext: bytes

    def aad(self, part: str) -> bytes:
        return sealing.record_aad(self.record_id, self.owner, self.kind, self.source,
                                  self.created, part)


class ProfileStore:
    """An encrypted, holder-owned record store in the SQLite file at `path` (created if absent)."""

    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        if str(path) != ":memory:":
            prepare_sqlite_file(Path(path))
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA secure_delete=ON")
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version not in (0, SCHEMA_VERSION):
                raise InvalidRecord(f"profile store schema {version} is not supported")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes -----------------------------------------------------------------------------

    def add_record(
        self,
        owner_key: PublicKey,
        kind: str,
        source: str,
        data: bytes,
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Encrypt and store a record for the owner whose profile public key is `owner_key`.

        Needs only the public key, so an import from another app can be stored while the
        holder's vault is locked. Returns the new record id (32 hex characters).
        """
        _check_public(owner_key, "owner_key")
        _check_label(kind, "kind")
        _check_label(source, "source")
        if not isinstance(data, bytes) or len(data) > MAX_DATA_BYTES:
            raise InvalidRecord(f"data must be bytes of at most {MAX_DATA_BYTES} bytes")
        meta_bytes = _encode_metadata(metadata if metadata is not None else {})
        record_id = secrets.token_hex(16)
        owner = x25519_key_id(owner_key)
        created = int(time.time())
        data_key = sealing.new_data_key()
        row = _Row(record_id, owner, kind, source, created, len(data), b"", b"", b"", b"")
        nonce, ciphertext = sealing.encrypt(data_key, data, row.aad("data"))
        meta_nonce, meta_ciphertext = sealing.encrypt(data_key, meta_bytes, row.aad("meta"))
        with self._write() as db:
            db.execute(
                "INSERT INTO records (id, owner, kind, source, created, size, nonce, ciphertext,"
                " meta_nonce, meta_ciphertext) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (record_id, owner, kind, source, created, len(data), nonce, ciphertext,
                 meta_nonce, meta_ciphertext),
            )
            self._put_envelope(db, record_id, owner_key, data_key, created)
        return record_id

    def share(self, record_id: str, owner_private: PrivateKey, grantee_public: PublicKey) -> None:
        """Let `grantee_public`'s holder open the record (the owner's key re-seals the data key)."""
        _check_public(grantee_public, "grantee_public")
        with self._write() as db:
            _, data_key = self._owned(db, record_id, owner_private)
            self._put_envelope(db, record_id, grantee_public, data_key, int(time.time()))

    def unshare(self, record_id: str, owner_private: PrivateKey, grantee_public: PublicKey) -> bool:
        """Stop `grantee_public` opening the record from now on; re-keys the record.

        Returns whether the grantee had an envelope. What it already read it keeps.
        """
        _check_public(grantee_public, "grantee_public")
        grantee = x25519_key_id(grantee_public)
        with self._write() as db:
            row, data_key = self._owned(db, record_id, owner_private)
            if grantee == row.owner:
                raise InvalidRecord("the owner cannot unshare a record from itself")
            removed = db.execute(
                "DELETE FROM envelopes WHERE record_id = ? AND recipient = ?",
                (record_id, grantee),
            ).rowcount
            if removed:
                self._rekey(db, row, data_key)
        return bool(removed)

    def delete(self, record_id: str, owner_private: PrivateKey) -> None:
        """Delete the record and every envelope (only the owner may)."""
        with self._write() as db:
            self._owned(db, record_id, owner_private, verify=False)
            db.execute("DELETE FROM records WHERE id = ?", (record_id,))

    # --- reads ------------------------------------------------------------------------------

    def open_record(self, record_id: str, recipient_private: PrivateKey) -> bytes:
        """The record's data, for the owner or a grantee holding an envelope."""
        _check_private(recipient_private, "recipient_private")
        with self._read() as db:
            row = self._row(db, record_id)
            data_key = self._data_key(db, row, recipient_private)
        data = sealing.decrypt(data_key, row.nonce, row.ciphertext, row.aad("data"), record_id)
        if len(data) != row.size:
            raise RecordCorrupt(f"record {record_id} has the wrong size")
        return data

    def list_records(self, recipient_private: PrivateKey) -> list[RecordInfo]:
        """Every record this key can open (owned or shared to it), oldest first, metadata only.

        Raises `RecordCorrupt` naming the first record whose envelope or metadata was altered.
        """
        _check_private(recipient_private, "recipient_private")
        recipient = x25519_key_id(recipient_private.public_key)
        with self._read() as db:
            rows = db.execute(
                "SELECT r.id, r.owner, r.kind, r.source, r.created, r.size, r.nonce,"
                " r.ciphertext, r.meta_nonce, r.meta_ciphertext, e.sealed_key"
                " FROM records r JOIN envelopes e ON e.record_id = r.id"
                " WHERE e.recipient = ? ORDER BY r.created, r.id",
                (recipient,),
            ).fetchall()
        infos = []
        for *fields, sealed_key in rows:
            row = _Row(*fields)
            data_key = sealing.open_key(sealed_key, recipient_private, row.record_id)
            meta = sealing.decrypt(data_key, row.meta_nonce, row.meta_ciphertext,
                                   row.aad("meta"), row.record_id)
            infos.append(RecordInfo(row.record_id, row.owner, row.kind, row.source, row.created,
                                    row.size, json.loads(meta), row.owner == recipient))
        return infos

    def recipients(self, record_id: str, owner_private: PrivateKey) -> list[PublicKey]:
        """The grantees' public keys (the owner's excluded), for the owner only."""
        with self._read() as db:
            row, _ = self._owned(db, record_id, owner_private)
            found = db.execute(
                "SELECT recipient_public FROM envelopes WHERE record_id = ? AND recipient != ?"
                " ORDER BY created, recipient",
                (record_id, row.owner),
            ).fetchall()
        return [PublicKey(public) for (public,) in found]

    # --- internals --------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            yield from self._finish(self._db)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # A read transaction: a record and its envelope come from one snapshot even when
        # another process sharing the file re-keys the record in between.
        with self._lock:
            self._db.execute("BEGIN")
            yield from self._finish(self._db)

    @staticmethod
    def _finish(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    @staticmethod
    def _row(db: sqlite3.Connection, record_id: str) -> _Row:
        if not isinstance(record_id, str) or not _RECORD_ID.fullmatch(record_id):
            raise InvalidRecord("record id must be 32 lowercase hex characters")
        found = db.execute(
            "SELECT id, owner, kind, source, created, size, nonce, ciphertext, meta_nonce,"
            " meta_ciphertext FROM records WHERE id = ?",
            (record_id,),
        ).fetchone()
        if found is None:
            raise RecordNotFound(f"no record {record_id}")
        return _Row(*found)

    def _owned(self, db: sqlite3.Connection, record_id: str, owner_private: PrivateKey,
               *, verify: bool = True) -> tuple[_Row, envelope.Key]:
        """The record and its data key, if `owner_private` is the owner's key.

        `verify` also checks the key against the record; `delete` skips that, so that the
        owner can still remove a record whose ciphertext was damaged.
        """
        _check_private(owner_private, "owner_private")
        row = self._row(db, record_id)
        if x25519_key_id(owner_private.public_key) != row.owner:
            raise AccessDenied(f"only the owner may change record {record_id}")
        # Possession, not just knowledge of the public key: the owner's envelope must open,
        # and its key must authenticate the record (a substituted envelope is refused here,
        # before its key could be re-sealed to a grantee or used to re-key).
        data_key = self._data_key(db, row, owner_private)
        if verify:
            sealing.decrypt(data_key, row.meta_nonce, row.meta_ciphertext, row.aad("meta"),
                            row.record_id)
        return row, data_key

    @staticmethod
    def _data_key(db: sqlite3.Connection, row: _Row, private: PrivateKey) -> envelope.Key:
        found = db.execute(
            "SELECT sealed_key FROM envelopes WHERE record_id = ? AND recipient = ?",
            (row.record_id, x25519_key_id(private.public_key)),
        ).fetchone()
        if found is None:
            raise AccessDenied(f"this key cannot open record {row.record_id}")
        return sealing.open_key(found[0], private, row.record_id)

    @staticmethod
    def _put_envelope(db: sqlite3.Connection, record_id: str, recipient: PublicKey,
                      data_key: envelope.Key, created: int) -> None:
        db.execute(
            "INSERT OR REPLACE INTO envelopes (record_id, recipient, recipient_public,"
            " sealed_key, created) VALUES (?, ?, ?, ?, ?)",
            (record_id, x25519_key_id(recipient), bytes(recipient),
             sealing.seal_key(data_key, recipient), created),
        )

    def _rekey(self, db: sqlite3.Connection, row: _Row, old_key: envelope.Key) -> None:
        data = sealing.decrypt(old_key, row.nonce, row.ciphertext, row.aad("data"),
                               row.record_id)
        meta = sealing.decrypt(old_key, row.meta_nonce, row.meta_ciphertext, row.aad("meta"),
                               row.record_id)
        new_key = sealing.new_data_key()
        nonce, ciphertext = sealing.encrypt(new_key, data, row.aad("data"))
        meta_nonce, meta_ciphertext = sealing.encrypt(new_key, meta, row.aad("meta"))
        db.execute(
            "UPDATE records SET nonce = ?, ciphertext = ?, meta_nonce = ?, meta_ciphertext = ?"
            " WHERE id = ?",
            (nonce, ciphertext, meta_nonce, meta_ciphertext, row.record_id),
        )
        envelopes = db.execute(
            "SELECT recipient_public, created FROM envelopes WHERE record_id = ?",
            (row.record_id,),
        ).fetchall()
        for public, created in envelopes:
            self._put_envelope(db, row.record_id, PublicKey(public), new_key, created)


def _check_label(value: str, what: str) -> None:
    if not isinstance(value, str) or not _LABEL.fullmatch(value):
        raise InvalidRecord(
            f"{what} must be 1 to 64 characters: letters, digits and . _ : / + - "
            "(not starting with a symbol)"
        )


def _check_public(key: PublicKey, what: str) -> None:
    if not isinstance(key, PublicKey):
        raise InvalidRecord(f"{what} must be a nacl.public.PublicKey (X25519)")


def _check_private(key: PrivateKey, what: str) -> None:
    if not isinstance(key, PrivateKey):
        raise InvalidRecord(f"{what} must be a nacl.public.PrivateKey (X25519)")


def _encode_metadata(metadata: Mapping[str, Any]) -> bytes:
    if not isinstance(metadata, Mapping):
        raise InvalidRecord("metadata must be a JSON object")
    try:
        encoded = json.dumps(dict(metadata), sort_keys=True, separators=(",", ":"),
                             allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRecord("metadata must be JSON-serialisable") from exc
    if len(encoded) > MAX_METADATA_BYTES:
        raise InvalidRecord(f"metadata must be at most {MAX_METADATA_BYTES} bytes as JSON")
    return encoded
