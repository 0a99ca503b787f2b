"""Guardian recovery: any k of n shares recover, k-1 do not, shares open only for their guardian."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.public import SealedBox
from shamir_mnemonic.share import Share

from gateway.holder import keys, recovery
from gateway.holder.errors import (
    CorruptShare,
    InvalidGuardianKey,
    InvalidKeyMaterial,
    MixedShares,
    ShareOpenFailed,
    TooFewShares,
)
from gateway.holder.x25519 import x25519_public_from_ed25519

N = 5


@pytest.fixture(scope="module")
def guardians() -> list[keys.HolderKeyPair]:
    # Guardians are other holders, known by their passport keys.
    return [keys.passport_key(keys.new_master_secret()) for _ in range(N)]


@pytest.fixture(scope="module")
def master() -> bytes:
    return keys.new_master_secret()


def _opened(master: bytes, guardians: list[keys.HolderKeyPair], k: int) -> list[str]:
    sealed = recovery.split(master, [g.public_raw for g in guardians], k)
    assert [s.guardian for s in sealed] == [g.public_raw for g in guardians]
    return [recovery.open_share(s, g.private) for s, g in zip(sealed, guardians, strict=True)]


@pytest.mark.parametrize("k", [1, 2, 3, N])
def test_any_k_recover_and_k_minus_1_do_not(master: bytes, guardians: list[keys.HolderKeyPair],
                                            k: int) -> None:
    mnemonics = _opened(master, guardians, k)
    assert len(set(mnemonics)) == N
    for subset in itertools.combinations(mnemonics, k):
        assert recovery.recover(list(subset)) == master
        assert recovery.recover(list(reversed(subset))) == master
    if k > 1:
        for subset in itertools.combinations(mnemonics, k - 1):
            with pytest.raises(TooFewShares):
                recovery.recover(list(subset))


def test_more_than_k_shares_recover(master: bytes, guardians: list[keys.HolderKeyPair]) -> None:
    assert recovery.recover(_opened(master, guardians, 3)) == master


def test_a_repeated_share_counts_once(master: bytes,
                                      guardians: list[keys.HolderKeyPair]) -> None:
    mnemonics = _opened(master, guardians, 3)
    with pytest.raises(TooFewShares):
        recovery.recover([mnemonics[0], mnemonics[0], mnemonics[1]])
    with pytest.raises(TooFewShares):
        recovery.recover([])


def test_share_for_a_opens_only_for_a(master: bytes,
                                      guardians: list[keys.HolderKeyPair]) -> None:
    a, b = guardians[0], guardians[1]
    sealed = recovery.split(master, [g.public_raw for g in guardians], 2)[0]
    with pytest.raises(ShareOpenFailed):
        recovery.open_share(sealed, b.private)
    # Relabelled as B's, it still does not open with B's key: the box is sealed to A.
    relabelled = recovery.SealedShare(b.public_raw, sealed.threshold, sealed.count,
                                      sealed.sealed)
    with pytest.raises(ShareOpenFailed):
        recovery.open_share(relabelled, b.private)
    assert recovery.open_share(sealed.to_json(), a.private)


def test_altered_sealed_share_refused(master: bytes,
                                      guardians: list[keys.HolderKeyPair]) -> None:
    sealed = recovery.split(master, [g.public_raw for g in guardians], 2)[0]
    changed = bytearray(sealed.sealed)
    changed[-1] ^= 0x01
    tampered = recovery.SealedShare(sealed.guardian, 2, N, bytes(changed))
    with pytest.raises(ShareOpenFailed):
        recovery.open_share(tampered, guardians[0].private)


def test_sealed_box_with_garbage_is_corrupt(guardians: list[keys.HolderKeyPair]) -> None:
    # Anyone can seal to a guardian's public key: what opens must still be a real share.
    recipient = x25519_public_from_ed25519(guardians[0].public_raw)
    forged = recovery.SealedShare(guardians[0].public_raw, 2, N,
                                  SealedBox(recipient).encrypt(b"academic acid " * 10))
    with pytest.raises(CorruptShare):
        recovery.open_share(forged, guardians[0].private)


def test_shares_of_two_splits_are_mixed(master: bytes,
                                        guardians: list[keys.HolderKeyPair]) -> None:
    first = _opened(master, guardians, 2)
    second = _opened(master, guardians, 2)
    with pytest.raises(MixedShares):
        recovery.recover([first[0], second[1]])


def test_misspelt_mnemonic_is_corrupt(master: bytes,
                                      guardians: list[keys.HolderKeyPair]) -> None:
    mnemonics = _opened(master, guardians, 2)
    words = mnemonics[0].split()
    words[7] = "academic" if words[7] != "academic" else "acid"
    with pytest.raises(CorruptShare) as info:
        recovery.recover([" ".join(words), mnemonics[1]])
    # No mnemonic in messages: no run of three of its words (a single word can be an English
    # word of the message itself, e.g. SLIP-39's "valid").
    for share in (" ".join(words), mnemonics[1]):
        run = share.split()
        assert all(" ".join(run[i:i + 3]) not in str(info.value) for i in range(len(run) - 2))
    with pytest.raises(CorruptShare):
        recovery.recover(["not a mnemonic", mnemonics[1]])


def test_forged_share_with_valid_checksum_fails_the_digest(
    master: bytes, guardians: list[keys.HolderKeyPair]
) -> None:
    mnemonics = _opened(master, guardians, 2)
    real = Share.from_mnemonic(mnemonics[0])
    forged_value = bytes([real.value[0] ^ 0x01]) + real.value[1:]
    forged = Share(real.identifier, real.extendable, real.iteration_exponent, real.group_index,
                   real.group_threshold, real.group_count, real.index, real.member_threshold,
                   forged_value).mnemonic()
    with pytest.raises(CorruptShare):
        recovery.recover([forged, mnemonics[1]])


def test_mnemonic_whitespace_and_case_tolerated(master: bytes,
                                                guardians: list[keys.HolderKeyPair]) -> None:
    mnemonics = _opened(master, guardians, 2)
    typed = "  " + mnemonics[0].upper().replace(" ", "\n ") + " "
    assert recovery.recover([typed, mnemonics[3]]) == master


def test_sealed_share_json_round_trip(master: bytes,
                                      guardians: list[keys.HolderKeyPair]) -> None:
    sealed = recovery.split(master, [g.public_raw for g in guardians], 3)[2]
    assert recovery.SealedShare.from_json(sealed.to_json()) == sealed
    assert sealed.to_dict()["guardian"] == guardians[2].public_b64
    assert sealed.guardian_b64 == guardians[2].public_b64


@pytest.mark.parametrize("changes", [
    {"version": 2}, {"scheme": "x"}, {"threshold": 0}, {"threshold": 6}, {"count": 17},
    {"guardian": base64.b64encode(b"\x01" * 31).decode()}, {"sealed": "%%"}, {"extra": 1},
])
def test_malformed_sealed_share_refused(master: bytes, guardians: list[keys.HolderKeyPair],
                                        changes: dict[str, Any]) -> None:
    raw = recovery.split(master, [g.public_raw for g in guardians], 2)[0].to_dict()
    raw.update(changes)
    with pytest.raises(CorruptShare):
        recovery.SealedShare.from_dict(raw)
    with pytest.raises(CorruptShare):
        recovery.open_share("{not json", guardians[0].private)


def test_bad_guardians_refused(master: bytes, guardians: list[keys.HolderKeyPair]) -> None:
    publics = [g.public_raw for g in guardians]
    with pytest.raises(InvalidGuardianKey):
        recovery.split(master, [publics[0], publics[0]], 1)
    with pytest.raises(InvalidGuardianKey):
        recovery.split(master, [publics[0], b"\x00" * 32], 1)  # small-order point
    with pytest.raises(InvalidGuardianKey):
        recovery.split(master, [publics[0], b"\x01" * 31], 1)
    with pytest.raises(InvalidGuardianKey):
        recovery.split(master, [], 1)
    for k in (0, N + 1, True):
        with pytest.raises(InvalidKeyMaterial):
            recovery.split(master, publics, k)
    with pytest.raises(InvalidKeyMaterial):
        recovery.split(b"\x00" * 16, publics, 2)
    with pytest.raises(InvalidKeyMaterial):
        recovery.open_share(recovery.split(master, publics, 2)[0], "key")  # type: ignore[arg-type]


def test_guardian_with_a_plain_ed25519_key(master: bytes) -> None:
    private = Ed25519PrivateKey.generate()
    public = keys.HolderKeyPair("external", private, private.public_key().public_bytes_raw())
    (sealed,) = recovery.split(master, [public.public_raw], 1)
    assert recovery.recover([recovery.open_share(sealed, private)]) == master
