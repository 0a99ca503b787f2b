"""The smart profile: owner and grantee access, unshare, tampering, and nothing readable at rest."""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nacl.public import PrivateKey

from gateway.holder import keys, vault
from gateway.holder.errors import UnlockFailed
from gateway.holder.x25519 import (
    x25519_key_id,
    x25519_private_from_ed25519,
    x25519_public_from_ed25519,
)
from gateway.profile import (
    AccessDenied,
    InvalidRecord,
    ProfileStore,
    RecordCorrupt,
    RecordNotFound,
    sealing,
)

CANARY = b"CANARY-" + secrets.token_hex(8).encode()
META_CANARY = "META-" + secrets.token_hex(8)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "profile.sqlite"


@pytest.fixture
def store(path: Path) -> Iterator[ProfileStore]:
    with ProfileStore(path) as opened:
        yield opened


@pytest.fixture(scope="module")
def master() -> bytes:
    return keys.new_master_secret()


@pytest.fixture(scope="module")
def me(master: bytes) -> PrivateKey:
    return keys.profile_key(master)


def _fitness(store: ProfileStore, owner: PrivateKey, data: bytes = CANARY) -> str:
    return store.add_record(owner.public_key, "fitness.daily", "fitapp", data,
                            {"day": "2025-03-01", "note": META_CANARY, "steps": 9120})


def _db_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_add_list_open(store: ProfileStore, me: PrivateKey) -> None:
    pdf = b"%PDF-1.7 " + secrets.token_bytes(5000)
    first = _fitness(store, me)
    second = store.add_record(me.public_key, "document.pdf", "scanner", pdf)
    infos = store.list_records(me)
    assert sorted(i.record_id for i in infos) == sorted([first, second])
    by_id = {i.record_id: i for i in infos}
    assert by_id[first].metadata == {"day": "2025-03-01", "note": META_CANARY, "steps": 9120}
    assert by_id[first].kind == "fitness.daily" and by_id[first].source == "fitapp"
    assert by_id[second].metadata == {} and by_id[second].size == len(pdf)
    assert all(i.owned and i.owner == x25519_key_id(me.public_key) for i in infos)
    assert store.open_record(first, me) == CANARY
    assert store.open_record(second, me) == pdf
    assert store.add_record(me.public_key, "empty", "app", b"") != first
    assert store.list_records(PrivateKey.generate()) == []


def test_records_survive_reopening(path: Path, me: PrivateKey) -> None:
    with ProfileStore(path) as store:
        record = _fitness(store, me)
    with ProfileStore(path) as store:
        assert store.open_record(record, me) == CANARY
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert check.execute("PRAGMA user_version").fetchone() == (1,)
    check.close()


def test_durability_pragmas(store: ProfileStore) -> None:
    db = store._db
    assert db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert db.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert db.execute("PRAGMA secure_delete").fetchone() == (1,)


def test_share_then_unshare(store: ProfileStore, me: PrivateKey) -> None:
    doctor, other, stranger = PrivateKey.generate(), PrivateKey.generate(), PrivateKey.generate()
    record = _fitness(store, me)
    with pytest.raises(AccessDenied):
        store.open_record(record, doctor)
    store.share(record, me, doctor.public_key)
    store.share(record, me, other.public_key)
    assert store.open_record(record, doctor) == CANARY
    (info,) = store.list_records(doctor)
    assert not info.owned and info.metadata["note"] == META_CANARY
    assert {bytes(k) for k in store.recipients(record, me)} == \
        {bytes(doctor.public_key), bytes(other.public_key)}
    with pytest.raises(AccessDenied):
        store.open_record(record, stranger)

    # What the doctor could have kept: the data key from its envelope.
    kept_key = sealing.open_key(_envelope(store, record, doctor), doctor, record)
    assert store.unshare(record, me, doctor.public_key) is True
    assert store.unshare(record, me, doctor.public_key) is False
    with pytest.raises(AccessDenied):
        store.open_record(record, doctor)
    assert store.list_records(doctor) == []
    # The record was re-keyed: the kept key no longer opens what is stored.
    row = _row(store, record)
    with pytest.raises(RecordCorrupt):
        sealing.decrypt(kept_key, row["nonce"], row["ciphertext"], _aad(row, "data"), record)
    assert store.open_record(record, me) == CANARY
    assert store.open_record(record, other) == CANARY
    assert [bytes(k) for k in store.recipients(record, me)] == [bytes(other.public_key)]


def test_only_the_owner_changes_a_record(store: ProfileStore, me: PrivateKey) -> None:
    doctor = PrivateKey.generate()
    record = _fitness(store, me)
    store.share(record, me, doctor.public_key)
    with pytest.raises(AccessDenied):
        store.share(record, doctor, PrivateKey.generate().public_key)
    with pytest.raises(AccessDenied):
        store.unshare(record, doctor, doctor.public_key)
    with pytest.raises(AccessDenied):
        store.delete(record, doctor)
    with pytest.raises(AccessDenied):
        store.recipients(record, doctor)
    with pytest.raises(InvalidRecord):
        store.unshare(record, me, me.public_key)
    assert store.open_record(record, doctor) == CANARY


def test_delete_removes_record_and_ciphertext(path: Path, store: ProfileStore,
                                              me: PrivateKey) -> None:
    doctor = PrivateKey.generate()
    record = _fitness(store, me)
    store.share(record, me, doctor.public_key)
    ciphertext = _row(store, record)["ciphertext"]
    store.delete(record, me)
    with pytest.raises(RecordNotFound):
        store.open_record(record, me)
    with pytest.raises(RecordNotFound):
        store.delete(record, me)
    assert store._db.execute("SELECT COUNT(*) FROM envelopes").fetchone() == (0,)
    store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert ciphertext[:32] not in _db_bytes(path)  # secure_delete zeroed the page


def test_store_file_holds_no_plaintext(path: Path, me: PrivateKey) -> None:
    with ProfileStore(path) as store:
        record = _fitness(store, me)
        store.share(record, me, PrivateKey.generate().public_key)
        on_disk = _db_bytes(path)  # database, WAL and shared-memory files
        assert b"CANARY-" not in on_disk and b"META-" not in on_disk
        assert b"2025-03-01" not in on_disk and b"steps" not in on_disk
    on_disk = _db_bytes(path)
    assert CANARY not in on_disk and META_CANARY.encode() not in on_disk
    assert b"fitness.daily" in on_disk  # the scan does see what is stored in clear


def test_store_and_face_key_alone_open_nothing(path: Path, master: bytes,
                                               me: PrivateKey) -> None:
    """The operator's view: the store file and the face-factor key, not the password."""
    face_key = vault.new_face_key()
    pid = keys.passport_id(master)
    blob = vault.wrap(master, "holder's own password", face_key, pid, kdf=vault.INTERACTIVE_KDF)
    with ProfileStore(path) as store:
        record = _fitness(store, me)
    with pytest.raises(UnlockFailed):
        vault.unwrap(blob, "guessed password 1", face_key, pid)
    operator_keys = [
        PrivateKey(face_key),
        PrivateKey.from_seed(face_key),
        PrivateKey.generate(),
        # Not the operator's, but the profile key is dedicated: the passport key does not open it.
        x25519_private_from_ed25519(keys.passport_key(master).private),
    ]
    with ProfileStore(path) as store:
        for key in operator_keys:
            with pytest.raises(AccessDenied):
                store.open_record(record, key)
            assert store.list_records(key) == []
            # Even pointed straight at the owner's envelope, no key but the holder's opens it.
            with pytest.raises(RecordCorrupt):
                sealing.open_key(_envelope(store, record, me), key, record)
        # The holder, with both factors, gets everything back.
        unwrapped = vault.unwrap(blob, "holder's own password", face_key, pid)
        assert store.open_record(record, keys.profile_key(unwrapped)) == CANARY


@pytest.mark.parametrize("column", ["ciphertext", "meta_ciphertext"])
@pytest.mark.parametrize("position", [0, 1, 5, 9, 21, -1],
                         ids=["version", "purpose", "key-id", "nonce", "body", "tag"])
def test_tampered_record_refused(store: ProfileStore, me: PrivateKey, column: str,
                                 position: int) -> None:
    record = _fitness(store, me)
    value = bytearray(_row(store, record)[column])
    value[position] ^= 0x01
    # column comes from the parametrize list above, not from input
    store._db.execute(f"UPDATE records SET {column} = ? WHERE id = ?",  # noqa: S608
                      (bytes(value), record))
    with pytest.raises(RecordCorrupt):
        if column == "meta_ciphertext":
            store.list_records(me)
        else:
            store.open_record(record, me)


@pytest.mark.parametrize(("column", "value"), [
    ("kind", "lab.result"), ("source", "otherapp"), ("created", 1), ("owner", "0" * 64),
])
def test_relabelled_record_refused(store: ProfileStore, me: PrivateKey, column: str,
                                   value: Any) -> None:
    record = _fitness(store, me)
    store._db.execute(f"UPDATE records SET {column} = ? WHERE id = ?",  # noqa: S608
                      (value, record))
    with pytest.raises((RecordCorrupt, AccessDenied)):
        store.open_record(record, me)


def test_ciphertext_moved_between_records_refused(store: ProfileStore, me: PrivateKey) -> None:
    first = _fitness(store, me)
    second = _fitness(store, me, b"other data")
    row = _row(store, first)
    store._db.execute("UPDATE records SET nonce = ?, ciphertext = ? WHERE id = ?",
                      (row["nonce"], row["ciphertext"], second))
    with pytest.raises(RecordCorrupt):
        store.open_record(second, me)


def test_substituted_envelope_refused(store: ProfileStore, me: PrivateKey) -> None:
    # Anyone can seal a key to the holder: the operator swapping in one of its own choosing
    # gets a key that does not open the record.
    record = _fitness(store, me)
    forged = sealing.seal_key(sealing.new_data_key(), me.public_key)
    store._db.execute("UPDATE envelopes SET sealed_key = ? WHERE record_id = ?",
                      (forged, record))
    with pytest.raises(RecordCorrupt):
        store.open_record(record, me)


@pytest.mark.parametrize("args", [
    {"kind": ""}, {"kind": "-x"}, {"kind": "a" * 65}, {"source": "with space"},
    {"data": "text"}, {"metadata": {"x": object()}}, {"metadata": {"x": float("nan")}},
    {"metadata": ["not", "a", "dict"]}, {"owner_key": b"\x00" * 32},
])
def test_bad_inputs_refused(store: ProfileStore, me: PrivateKey, args: dict[str, Any]) -> None:
    call: dict[str, Any] = {"owner_key": me.public_key, "kind": "k", "source": "s",
                            "data": b"d", "metadata": {}}
    call.update(args)
    with pytest.raises(InvalidRecord):
        store.add_record(**call)


def test_bad_record_ids_and_keys_refused(store: ProfileStore, me: PrivateKey) -> None:
    for bad in ("", "XYZ", "' OR 1=1 --", "0" * 31):
        with pytest.raises(InvalidRecord):
            store.open_record(bad, me)
    with pytest.raises(RecordNotFound):
        store.open_record("0" * 32, me)
    record = _fitness(store, me)
    with pytest.raises(InvalidRecord):
        store.open_record(record, bytes(me))  # type: ignore[arg-type]
    with pytest.raises(InvalidRecord):
        store.share(record, me, bytes(me.public_key))  # type: ignore[arg-type]


def test_grantee_known_by_ed25519_key(store: ProfileStore, me: PrivateKey) -> None:
    grantee = keys.passport_key(keys.new_master_secret())
    record = _fitness(store, me)
    store.share(record, me, x25519_public_from_ed25519(grantee.public_raw))
    assert store.open_record(record, x25519_private_from_ed25519(grantee.private)) == CANARY


def test_threads_share_one_store(store: ProfileStore, me: PrivateKey) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                record = store.add_record(me.public_key, "t", "thread", f"{n}-{i}".encode())
                assert store.open_record(record, me) == f"{n}-{i}".encode()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.list_records(me)) == 40


# --- helpers reading the raw store, as an operator could ------------------------------------


def _row(store: ProfileStore, record: str) -> dict[str, Any]:
    cursor = store._db.execute("SELECT * FROM records WHERE id = ?", (record,))
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def _aad(row: dict[str, Any], part: str) -> bytes:
    return sealing.record_aad(row["id"], row["owner"], row["kind"], row["source"],
                              row["created"], part)


def _envelope(store: ProfileStore, record: str, recipient: PrivateKey) -> bytes:
    (sealed,) = store._db.execute(
        "SELECT sealed_key FROM envelopes WHERE record_id = ? AND recipient = ?",
        (record, x25519_key_id(recipient.public_key)),
    ).fetchone()
    assert isinstance(sealed, bytes)
    return sealed


def test_metadata_is_json_object_round_trip(store: ProfileStore, me: PrivateKey) -> None:
    metadata = {"nested": {"list": [1, 2.5, "x"], "none": None}, "unicode": "\u00e9"}
    record = store.add_record(me.public_key, "k", "s", b"", metadata)
    (info,) = [i for i in store.list_records(me) if i.record_id == record]
    assert info.metadata == json.loads(json.dumps(metadata))


def test_two_stores_on_one_file(path: Path, me: PrivateKey) -> None:
    doctor = PrivateKey.generate()
    with ProfileStore(path) as writer, ProfileStore(path) as reader:
        record = _fitness(writer, me)
        writer.share(record, me, doctor.public_key)
        assert reader.open_record(record, doctor) == CANARY
        writer.unshare(record, me, doctor.public_key)  # re-keys under the reader's feet
        assert reader.open_record(record, me) == CANARY
        with pytest.raises(AccessDenied):
            reader.open_record(record, doctor)


def test_failed_write_leaves_nothing(store: ProfileStore, me: PrivateKey) -> None:
    record = _fitness(store, me)
    forged = sealing.seal_key(sealing.new_data_key(), me.public_key)
    store._db.execute("UPDATE envelopes SET sealed_key = ? WHERE record_id = ?",
                      (forged, record))
    doctor = PrivateKey.generate()
    # The forged envelope opens (it is sealed to the owner) but its key is not the record's:
    # sharing must not hand the grantee that key, and nothing may be half-written.
    with pytest.raises(RecordCorrupt):
        store.share(record, me, doctor.public_key)
    assert not store._db.in_transaction
    count = store._db.execute("SELECT COUNT(*) FROM envelopes WHERE record_id = ?", (record,))
    assert count.fetchone() == (1,)
    # The owner can still delete the damaged record; nobody else can.
    with pytest.raises(AccessDenied):
        store.delete(record, doctor)
    store.delete(record, me)
    with pytest.raises(RecordNotFound):
        store.open_record(record, me)


# Named ids: random bytes in an id differ between pytest-xdist workers, which then refuse
# to run (each must collect the same tests).
@pytest.mark.parametrize("nonce", [secrets.token_bytes(24), secrets.token_bytes(12)],
                         ids=["24-bytes", "12-bytes"])
def test_nonce_column_set_on_an_envelope_row_refused(store: ProfileStore, me: PrivateKey,
                                                     nonce: bytes) -> None:
    record = _fitness(store, me)
    assert _row(store, record)["nonce"] == b""  # the envelope carries its nonce
    store._db.execute("UPDATE records SET nonce = ? WHERE id = ?", (nonce, record))
    with pytest.raises(RecordCorrupt):
        store.open_record(record, me)


# --- rows sealed before face_engine.envelope: still read, re-keyed into envelopes ---------
def _legacy_record(store: ProfileStore, owner: PrivateKey, data: bytes,
                   metadata: dict[str, Any]) -> str:
    """A record exactly as the first profile code stored it: XChaCha20-Poly1305 parts with
    24-byte nonce columns, the data key in a sealed box."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt
    from nacl.public import SealedBox

    record_id, owner_id, created = secrets.token_hex(16), x25519_key_id(owner.public_key), 7
    raw_key = secrets.token_bytes(32)
    parts = {}
    for part, plain in (("data", data), ("meta", json.dumps(metadata).encode())):
        nonce = secrets.token_bytes(24)
        aad = sealing.record_aad(record_id, owner_id, "lab.result", "clinic", created, part)
        parts[part] = (nonce, crypto_aead_xchacha20poly1305_ietf_encrypt(plain, aad, nonce,
                                                                          raw_key))
    store._db.execute(
        "INSERT INTO records (id, owner, kind, source, created, size, nonce, ciphertext,"
        " meta_nonce, meta_ciphertext) VALUES (?, ?, 'lab.result', 'clinic', ?, ?, ?, ?, ?, ?)",
        (record_id, owner_id, created, len(data), *parts["data"], *parts["meta"]))
    store._db.execute(
        "INSERT INTO envelopes (record_id, recipient, recipient_public, sealed_key, created)"
        " VALUES (?, ?, ?, ?, ?)",
        (record_id, owner_id, bytes(owner.public_key),
         SealedBox(owner.public_key).encrypt(raw_key), created))
    return record_id


def test_legacy_record_still_opens(store: ProfileStore, me: PrivateKey) -> None:
    record = _legacy_record(store, me, CANARY, {"note": META_CANARY})
    assert len(_row(store, record)["nonce"]) == 24
    assert store.open_record(record, me) == CANARY
    (info,) = store.list_records(me)
    assert info.metadata == {"note": META_CANARY} and info.kind == "lab.result"
    value = bytearray(_row(store, record)["ciphertext"])
    value[-1] ^= 0x01
    store._db.execute("UPDATE records SET ciphertext = ? WHERE id = ?", (bytes(value), record))
    with pytest.raises(RecordCorrupt):
        store.open_record(record, me)


def test_legacy_record_is_rekeyed_into_envelopes(store: ProfileStore, me: PrivateKey) -> None:
    from face_engine import envelope

    doctor, nurse = PrivateKey.generate(), PrivateKey.generate()
    record = _legacy_record(store, me, CANARY, {"note": META_CANARY})
    store.share(record, me, doctor.public_key)
    store.share(record, me, nurse.public_key)
    assert store.open_record(record, nurse) == CANARY
    assert store.unshare(record, me, doctor.public_key)
    row = _row(store, record)
    assert row["nonce"] == b"" and row["meta_nonce"] == b""
    assert envelope.is_envelope(row["ciphertext"]) and envelope.is_envelope(
        row["meta_ciphertext"])
    assert store.open_record(record, me) == CANARY == store.open_record(record, nurse)
    with pytest.raises(AccessDenied):
        store.open_record(record, doctor)
