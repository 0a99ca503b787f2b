"""The key-provider contract, run against both providers: the PKCS#11 one on the session's
SoftHSM2 token and the development file one. What a caller sees must not depend on where
the keys are."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from softhsm_kit import SoftHsmToken, fresh_prefix

from face_engine import envelope
from gateway.core.config import Settings
from gateway.core.keys import KeyProvider
from gateway.core.keys.hkdf import hkdf_expand
from gateway.core.keys.names import DERIVER_NAMES, KEK_NAMES
from gateway.services.state import open_data_dir

Opener = Callable[[], KeyProvider]


@pytest.fixture(params=["pkcs11", "file"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens (and reopens) one gateway's data dir (database and provider) as the gateway
    does at start; every provider opened is closed after."""
    if request.param == "pkcs11":
        token: SoftHsmToken = request.getfixturevalue("softhsm")
        settings = Settings(**token.settings(tmp_path / "gw", fresh_prefix()))  # type: ignore[arg-type]
    else:
        settings = Settings(data_dir=tmp_path / "gw", mode="development")
    opened: list[KeyProvider] = []

    def open_() -> KeyProvider:
        db, provider = open_data_dir(settings)
        db.close()
        opened.append(provider)
        return provider

    yield open_
    for provider in opened:
        provider.close()


@pytest.mark.parametrize("name", KEK_NAMES)
def test_wrap_and_seal_round_trip(opener: Opener, name: str) -> None:
    kek = opener().kek(name)  # type: ignore[arg-type]
    data_key = envelope.Key.generate()
    wrapped = kek.wrap(data_key, purpose="mip/test/data-key", context=b"row-1")
    assert data_key.raw_bytes() not in wrapped
    assert kek.unwrap(wrapped, purpose="mip/test/data-key", context=b"row-1") == data_key
    sealed = kek.seal(b"issuer private key", purpose="mip/test/blob", context=b"org")
    assert envelope.is_envelope(sealed)
    assert kek.open(sealed, purpose="mip/test/blob", context=b"org") == b"issuer private key"


def test_wrong_purpose_context_key_or_bytes_are_refused(opener: Opener) -> None:
    provider = opener()
    kek = provider.kek("face")
    wrapped = kek.wrap(envelope.Key.generate(), purpose="mip/test/data-key", context=b"row-1")
    with pytest.raises(envelope.WrongPurpose):
        kek.unwrap(wrapped, purpose="mip/test/other", context=b"row-1")
    with pytest.raises(envelope.Tampered):
        kek.unwrap(wrapped, purpose="mip/test/data-key", context=b"row-2")
    with pytest.raises(envelope.WrongKey):
        provider.kek("face-factor").unwrap(wrapped, purpose="mip/test/data-key",
                                           context=b"row-1")
    altered = wrapped[:-1] + bytes([wrapped[-1] ^ 1])
    with pytest.raises(envelope.Tampered):
        kek.unwrap(altered, purpose="mip/test/data-key", context=b"row-1")
    with pytest.raises(envelope.MalformedEnvelope):
        kek.open(b"\x02short", purpose="mip/test/data-key")


def test_keys_are_distinct_and_stable_across_restarts(opener: Opener) -> None:
    first = opener()
    fingerprints = [first.kek(name).fingerprint for name in KEK_NAMES]
    assert len(set(fingerprints)) == len(KEK_NAMES)
    derived = {name: first.deriver(name).expand(b"info", 32) for name in DERIVER_NAMES}
    assert len(set(derived.values())) == len(DERIVER_NAMES)
    wrapped = first.kek("face").wrap(envelope.Key.generate(), purpose="p", context=b"c")
    first.close()

    again = opener()  # a restart: the same keys, so what was stored still opens
    assert [again.kek(name).fingerprint for name in KEK_NAMES] == fingerprints
    assert {name: again.deriver(name).expand(b"info", 32) for name in DERIVER_NAMES} == derived
    again.kek("face").unwrap(wrapped, purpose="p", context=b"c")


def test_derivation_is_hkdf_expand(opener: Opener) -> None:
    deriver = opener().deriver("counter")
    for length in (16, 32, 48, 100):
        out = deriver.expand(b"mip test info", length)
        assert len(out) == length
        assert deriver.expand(b"mip test info", 32)[:min(length, 32)] == out[:32]
    assert deriver.expand(b"a", 32) != deriver.expand(b"b", 32)
    assert "withheld" in repr(opener())
    assert "withheld" in repr(deriver) or "in the token" in repr(deriver)


@pytest.mark.parametrize("length", [1, 16, 32, 33, 48, 64, 100, 255])
def test_token_hkdf_expand_matches_cryptography(length: int) -> None:
    import hmac as std_hmac
    from hashlib import sha256

    prk, info = os.urandom(32), os.urandom(20)
    mine = hkdf_expand(lambda m: std_hmac.new(prk, m, sha256).digest(), info, length)
    assert mine == HKDFExpand(hashes.SHA256(), length, info).derive(prk)
    with pytest.raises(ValueError):
        hkdf_expand(lambda m: m, info, 0)
