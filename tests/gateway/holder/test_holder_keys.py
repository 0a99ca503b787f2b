"""Holder key derivation: SLIP-0010 vectors, determinism, isolation, hardened-only, signing."""

from __future__ import annotations

import re
import time
from dataclasses import fields
from typing import Any

import pytest
from bip_utils import Bip32KeyError, Bip32KeyIndex, Bip32Slip10Ed25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from nacl.public import PrivateKey

from chaincode.mip.errors import Replay
from chaincode.mip.holder_auth import parse_request, verify_holder_request
from chaincode.protocol.ids import passport_id_for
from chaincode.shim import Context
from gateway.holder import keys
from gateway.holder.errors import InvalidKeyMaterial
from gateway.holder.x25519 import x25519_private_from_ed25519

# SLIP-0010 test vectors for ed25519 (satoshilabs/slips, slip-0010.md, "Test vector 1/2 for
# ed25519"): path as hardened indexes, chain code, private key, public key (without SLIP-0010's
# 0x00 serialisation prefix).
H = 2**31
SLIP10_VECTORS: list[tuple[str, list[tuple[list[int], str, str, str]]]] = [
    ("000102030405060708090a0b0c0d0e0f", [
        ([], "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb",
         "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7",
         "a4b2856bfec510abab89753fac1ac0e1112364e7d250545963f135f2a33188ed"),
        ([0], "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69",
         "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3",
         "8c8a13df77a28f3445213a0f432fde644acaa215fc72dcdf300d5efaa85d350c"),
        ([0, 1], "a320425f77d1b5c2505a6b1b27382b37368ee640e3557c315416801243552f14",
         "b1d0bad404bf35da785a64ca1ac54b2617211d2777696fbffaf208f746ae84f2",
         "1932a5270f335bed617d5b935c80aedb1a35bd9fc1e31acafd5372c30f5c1187"),
        ([0, 1, 2], "2e69929e00b5ab250f49c3fb1c12f252de4fed2c1db88387094a0f8c4c9ccd6c",
         "92a5b23c0b8a99e37d07df3fb9966917f5d06e02ddbd909c7e184371463e9fc9",
         "ae98736566d30ed0e9d2f4486a64bc95740d89c7db33f52121f8ea8f76ff0fc1"),
        ([0, 1, 2, 2], "8f6d87f93d750e0efccda017d662a1b31a266e4a6f5993b15f5c1f07f74dd5cc",
         "30d1dc7e5fc04c31219ab25a27ae00b50f6fd66622f6e9c913253d6511d1e662",
         "8abae2d66361c879b900d204ad2cc4984fa2aa344dd7ddc46007329ac76c429c"),
        ([0, 1, 2, 2, 1000000000],
         "68789923a0cac2cd5a29172a475fe9e0fb14cd6adb5ad98a3fa70333e7afa230",
         "8f94d394a8e8fd6b1bc2f3f49f5c47e385281d5c17e65324b0f62483e37e8793",
         "3c24da049451555d51a7014a37337aa4e12d41e485abccfa46b47dfb2af54b7a"),
    ]),
    ("fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a87848"
     "17e7b7875726f6c696663605d5a5754514e4b484542", [
        ([], "ef70a74db9c3a5af931b5fe73ed8e1a53464133654fd55e7a66f8570b8e33c3b",
         "171cb88b1b3c1db25add599712e36245d75bc65a1a5c9e18d76f9f2b1eab4012",
         "8fe9693f8fa62a4305a140b9764c5ee01e455963744fe18204b4fb948249308a"),
        ([0], "0b78a3226f915c082bf118f83618a618ab6dec793752624cbeb622acb562862d",
         "1559eb2bbec5790b0c65d8693e4d0875b1747f4970ae8b650486ed7470845635",
         "86fab68dcb57aa196c77c5f264f215a112c22a912c10d123b0d03c3c28ef1037"),
        ([0, 2147483647], "138f0b2551bcafeca6ff2aa88ba8ed0ed8de070841f0c4ef0165df8181eaad7f",
         "ea4f5bfe8694d8bb74b7b59404632fd5968b774ed545e810de9c32a4fb4192f4",
         "5ba3b9ac6e90e83effcd25ac4e58a1365a9e35a3d3ae5eb07b9e4d90bcf7506d"),
        ([0, 2147483647, 1], "73bd9fff1cfbde33a1b846c27085f711c0fe2d66fd32e139d3ebc28e5a4a6b90",
         "3757c7577170179c7868353ada796c839135b3d30554bbb74a4b1e4a5a58505c",
         "2e66aa57069c86cc18249aecf5cb5a9cebbfd6fadeab056254763874a9352b45"),
        ([0, 2147483647, 1, 2147483646],
         "0902fe8a29f9140480a00ef244bd183e8a13288e4412d8389d140aac1794825a",
         "5837736c89570de861ebc173b1086da4f505d4adb387c6a1b1342d5e4ac9ec72",
         "e33c0f7d81d843c572275f287498e8d408654fdf0d1e065b84e2e6f157aab09b"),
        ([0, 2147483647, 1, 2147483646, 2],
         "5d70af781f3a37b829f0d060924d5e960bdc02e85423494afc0b1a41bbe196d4",
         "551d333177df541ad876a60ea71f00447931c0a9da16f227c11ea080d7391b8d",
         "47150c75db263559a70d5778bf36abbab30fb061ad69f69ece61a72b0cfa4fc0"),
    ]),
]


def raw_public(private: Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.mark.parametrize(("seed", "chains"), SLIP10_VECTORS, ids=["vector1", "vector2"])
def test_slip10_ed25519_vectors(seed: str, chains: list[tuple[list[int], str, str, str]]) -> None:
    root = Bip32Slip10Ed25519.FromSeed(bytes.fromhex(seed))
    for indexes, chain_code, private, public in chains:
        node = root
        for index in indexes:
            node = node.ChildKey(Bip32KeyIndex.HardenIndex(index))
        path = "m" + "".join(f"/{i}'" for i in indexes)
        assert root.DerivePath(path).PrivateKey().Raw().ToHex() == private
        assert node.ChainCode().ToHex() == chain_code
        assert node.PrivateKey().Raw().ToHex() == private
        assert node.PublicKey().RawCompressed().ToHex() == "00" + public
        # The keys the holder library hands out are `cryptography` objects built from the
        # SLIP-0010 private key: their public key must be the vector's.
        as_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private))
        assert raw_public(as_key).hex() == public


def test_non_hardened_ed25519_children_are_refused() -> None:
    root = Bip32Slip10Ed25519.FromSeed(bytes.fromhex(SLIP10_VECTORS[0][0]))
    with pytest.raises(Bip32KeyError):
        root.ChildKey(0)
    with pytest.raises(Bip32KeyError):
        root.DerivePath("m/0'/1")
    public_only = Bip32Slip10Ed25519.FromPublicKey(root.PublicKey().RawCompressed().ToBytes())
    for index in (0, Bip32KeyIndex.HardenIndex(0)):
        with pytest.raises(Bip32KeyError):
            public_only.ChildKey(index)


def test_library_paths_are_slip10_paths() -> None:
    master = keys.new_master_secret()
    root = Bip32Slip10Ed25519.FromSeed(master)
    institution = keys.institution_index("HospitalMSP")
    cases = [
        (keys.passport_key(master), keys.passport_path(), f"m/{keys.MIP_PURPOSE}'/0'"),
        (keys.account_key(master, "HospitalMSP", 3), keys.account_path("HospitalMSP", 3),
         f"m/{keys.MIP_PURPOSE}'/1'/{institution}'/3'"),
    ]
    for pair, path, literal in cases:
        assert pair.path == path == literal
        assert pair.public_raw == root.DerivePath(path).PublicKey().RawCompressed().ToBytes()[1:]
    assert keys.profile_path() == f"m/{keys.MIP_PURPOSE}'/2'/0'"
    profile_seed = root.DerivePath(keys.profile_path()).PrivateKey().Raw().ToBytes()
    assert bytes(keys.profile_key(master)) == bytes(PrivateKey.from_seed(profile_seed))


def test_same_master_same_keys_other_master_other_keys() -> None:
    master = keys.new_master_secret()
    again = bytes(master)
    other = keys.new_master_secret()
    assert keys.passport_key(master).public_raw == keys.passport_key(again).public_raw
    assert keys.account_key(master, "SchoolMSP", 1).public_raw == \
        keys.account_key(again, "SchoolMSP", 1).public_raw
    assert bytes(keys.profile_key(master)) == bytes(keys.profile_key(again))
    assert keys.passport_id(master) == passport_id_for(keys.passport_key(master).public_raw)
    assert keys.passport_key(master).public_raw != keys.passport_key(other).public_raw
    assert keys.account_key(master, "SchoolMSP", 1).public_raw != \
        keys.account_key(other, "SchoolMSP", 1).public_raw


def test_accounts_are_distinct_across_institutions_and_indexes() -> None:
    master = keys.new_master_secret()
    publics = [keys.passport_key(master).public_raw]
    for msp in ("HospitalMSP", "SchoolMSP", "PharmacyMSP", "hospitalmsp"):
        for index in (0, 1, 2, keys.MAX_INDEX):
            publics.append(keys.account_key(master, msp, index).public_raw)
    publics.append(x25519_private_from_ed25519(keys.passport_key(master).private)
                   .public_key.encode())
    publics.append(keys.profile_key(master).public_key.encode())
    assert len(set(publics)) == len(publics)
    assert all(len(p) == 32 for p in publics)


def test_institution_index_is_deterministic_31_bits() -> None:
    indexes = {keys.institution_index(f"Org{i}MSP") for i in range(200)}
    assert len(indexes) == 200
    assert all(0 <= i <= keys.MAX_INDEX for i in indexes)
    assert keys.institution_index("HospitalMSP") == keys.institution_index("HospitalMSP")


def test_leaked_account_key_does_not_give_siblings_or_passport() -> None:
    """A leaked account private key reveals nothing about the master or other accounts.

    Why (SLIP-0010, hardened only): child = HMAC-SHA512(parent chain code, 0x00 || parent key
    || index); HMAC is one-way, so neither the parent key nor its chain code follows from a
    child. Here we check what the public API lets an attacker do with a leaked key: the
    library hands out only the 32-byte private key (no chain code); a node built from it
    derives only its own descendants, none equal to a sibling or the passport key; and
    public derivation, which in BIP-32 links siblings, does not exist for Ed25519.
    """
    master = keys.new_master_secret()
    leaked = keys.account_key(master, "PharmacyMSP", 0)
    assert {f.name for f in fields(leaked)} == {"path", "private", "public_raw"}
    protected = {
        keys.passport_key(master).public_raw,
        keys.account_key(master, "PharmacyMSP", 1).public_raw,
        keys.account_key(master, "HospitalMSP", 0).public_raw,
    }
    leaked_raw = leaked.private.private_bytes_raw()
    # Even with the chain code (which the library never exposes) the attacker's node only
    # reaches the leaked key's own subtree.
    with_chain = Bip32Slip10Ed25519.FromSeed(master).DerivePath(leaked.path)
    for node in (Bip32Slip10Ed25519.FromPrivateKey(leaked_raw), with_chain):
        reachable = {node.PublicKey().RawCompressed().ToBytes()[1:]}
        for index in (0, 1, 2, keys.institution_index("PharmacyMSP"), keys.MIP_PURPOSE):
            child = node.ChildKey(Bip32KeyIndex.HardenIndex(index))
            reachable.add(child.PublicKey().RawCompressed().ToBytes()[1:])
        assert reachable.isdisjoint(protected)
        public_only = Bip32Slip10Ed25519.FromPublicKey(node.PublicKey().RawCompressed().ToBytes())
        with pytest.raises(Bip32KeyError):
            public_only.ChildKey(1)
    assert leaked.public_raw not in protected


def test_pseudonyms_are_random_64_hex() -> None:
    pseudonyms = {keys.new_pseudonym() for _ in range(50)}
    assert len(pseudonyms) == 50
    assert all(re.fullmatch(r"[0-9a-f]{64}", p) for p in pseudonyms)


@pytest.mark.parametrize("bad", [b"", b"\x00" * 31, b"\x00" * 33, "00" * 32, None])
def test_bad_master_secret_refused(bad: Any) -> None:
    with pytest.raises(InvalidKeyMaterial):
        keys.passport_key(bad)


@pytest.mark.parametrize("index", [-1, keys.MAX_INDEX + 1, True, 1.0])
def test_bad_account_index_refused(index: Any) -> None:
    with pytest.raises(InvalidKeyMaterial):
        keys.account_key(keys.new_master_secret(), "HospitalMSP", index)


@pytest.mark.parametrize("msp", ["", "x" * 257, None])
def test_bad_msp_id_refused(msp: Any) -> None:
    with pytest.raises(InvalidKeyMaterial):
        keys.account_key(keys.new_master_secret(), msp, 0)


def test_repr_shows_no_private_key() -> None:
    pair = keys.passport_key(keys.new_master_secret())
    text = repr(pair)
    assert pair.private.private_bytes_raw().hex() not in text
    assert pair.public_b64 in text


# --- signing requests the contract accepts -------------------------------------------------


class _Timestamp:
    def __init__(self, seconds: int) -> None:
        self.seconds = seconds


class _FakeStub:
    """The four stub calls `verify_holder_request` makes, over a dict."""

    channel_id = "mipchannel"

    def __init__(self, now: int) -> None:
        self.now = now
        self.state: dict[str, bytes] = {}

    def get_tx_timestamp(self) -> _Timestamp:
        return _Timestamp(self.now)

    async def get_state(self, key: str) -> bytes | None:
        return self.state.get(key)

    async def put_state(self, key: str, value: bytes) -> None:
        self.state[key] = value


async def test_signed_request_verifies_in_the_contract_once() -> None:
    pair = keys.account_key(keys.new_master_secret(), "HospitalMSP", 0)
    body = {"grantee_org": "SchoolMSP", "scope": ["name"], "n": 3}
    request = pair.sign_request("grant.create", body)
    assert set(request) == {"action", "body", "nonce", "expires", "channel", "signer",
                            "signature"}
    assert request["signer"] == pair.public_b64
    stub = _FakeStub(int(time.time()))
    ctx = Context(stub)  # type: ignore[arg-type]
    checked = await verify_holder_request(ctx, request, "grant.create",
                                          expected_signer=pair.public_raw)
    assert checked.body == body
    with pytest.raises(Replay):
        await verify_holder_request(ctx, request, "grant.create")


def test_signature_is_over_the_contract_payload() -> None:
    pair = keys.passport_key(keys.new_master_secret())
    request = keys.sign_holder_request(pair.private, "passport.vouch", {"vouchee": "ab" * 32},
                                       nonce="n" * 16, expires=1_900_000_000)
    parsed = parse_request(request)
    pair.private.public_key().verify(parsed.signature, parsed.signed_bytes())
    # Ed25519 is deterministic: the same inputs give the same request, byte for byte.
    assert request == pair.sign_request("passport.vouch", {"vouchee": "ab" * 32},
                                        nonce="n" * 16, expires=1_900_000_000)
    assert parsed.expires == 1_900_000_000 and parsed.channel == "mipchannel"


@pytest.mark.parametrize("kwargs", [
    {"ttl": 601}, {"ttl": 0}, {"nonce": "short"}, {"body": {"x": 1.5}}, {"action": ""},
])
def test_unsignable_requests_refused(kwargs: dict[str, Any]) -> None:
    pair = keys.passport_key(keys.new_master_secret())
    args: dict[str, Any] = {"action": "passport.vouch", "body": {"vouchee": "x"}}
    args.update(kwargs)
    with pytest.raises(InvalidKeyMaterial):
        keys.sign_holder_request(pair.private, **args)
