"""gateway/holder/oprf.py against RFC 9497 Appendix A.1.1 (OPRF(ristretto255, SHA-512),
mode 0), and its refusals of elements a dishonest peer could send."""

from __future__ import annotations

import pytest

from gateway.holder import oprf

SEED = bytes.fromhex("a3" * 32)
KEY_INFO = bytes.fromhex("74657374206b6579")  # "test key"
SK_SM = bytes.fromhex("5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e")
BLIND = bytes.fromhex("64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706")
VECTORS = [
    ("00",
     "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
     "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
     "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3"
     "ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6"),
    ("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
     "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
     "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
     "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4"
     "f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73"),
]


def test_derive_key_pair_matches_the_rfc() -> None:
    sk, pk = oprf.derive_key_pair(SEED, KEY_INFO)
    assert sk == SK_SM
    assert len(pk) == oprf.ELEMENT_BYTES


@pytest.mark.parametrize(("data", "blinded", "evaluated", "output"), VECTORS)
def test_blind_evaluate_finalize_match_the_rfc(data: str, blinded: str, evaluated: str,
                                               output: str) -> None:
    x = bytes.fromhex(data)
    state = oprf.blind(x, blind_scalar=BLIND)
    assert state.element.hex() == blinded
    answer = oprf.evaluate(SK_SM, state.element)
    assert answer.hex() == evaluated
    assert oprf.finalize(x, state, answer).hex() == output
    # the key holder's direct evaluation is the same function
    assert oprf.evaluate_unblinded(SK_SM, x).hex() == output


def test_random_blinds_give_the_same_output_and_unlinkable_elements() -> None:
    sk, _ = oprf.derive_key_pair(SEED, b"another key")
    x = b"correct horse battery staple"
    first, second = oprf.blind(x), oprf.blind(x)
    assert first.element != second.element  # the server cannot link two queries
    out1 = oprf.finalize(x, first, oprf.evaluate(sk, first.element))
    out2 = oprf.finalize(x, second, oprf.evaluate(sk, second.element))
    assert out1 == out2 == oprf.evaluate_unblinded(sk, x)
    other_sk, _ = oprf.derive_key_pair(SEED, b"a third key")
    assert oprf.finalize(x, first, oprf.evaluate(other_sk, first.element)) != out1
    assert "blind=<withheld>" in repr(first)


@pytest.mark.parametrize("element", [
    bytes(32),                       # the identity
    b"\xff" * 32,                    # not a canonical encoding
    bytes.fromhex("01") + bytes(31),  # odd (negative) field element: not canonical
    b"\x00" * 31,                    # short
])
def test_bad_elements_are_refused(element: bytes) -> None:
    with pytest.raises(oprf.OprfError):
        oprf.evaluate(SK_SM, element)
    state = oprf.blind(b"x")
    with pytest.raises(oprf.OprfError):
        oprf.finalize(b"x", state, element)


@pytest.mark.parametrize("scalar", [bytes(32), b"\xff" * 32, b"\x01" * 31])
def test_bad_scalars_are_refused(scalar: bytes) -> None:
    with pytest.raises(oprf.OprfError):
        oprf.evaluate(scalar, oprf.blind(b"x").element)
