"""Fabric block construction and hashing (protoutil.BlockHeaderBytes / BlockDataHash).

The header hash is SHA-256 over the ASN.1 DER encoding (cryptography's ASN.1 encoder) of
SEQUENCE { INTEGER number, OCTET STRING previous_hash, OCTET STRING data_hash } exactly as
Go's encoding/asn1 marshals Fabric's asn1Header; the data hash is SHA-256 over the
concatenated envelopes (Fabric 2.5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

# cryptography's declarative ASN.1 (documented since 47.0, still marked unstable): a change to
# it fails the Go-verified vectors in tests/network/devnet/test_devnet_ledger.py.
from cryptography.hazmat import asn1

from network.devnet._protos import common_pb2

TX_FILTER_INDEX = common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER
METADATA_SLOTS = len(common_pb2.BlockMetadataIndex.items())


class ChainError(ValueError):
    """Stored blocks do not form a valid hash chain."""


@asn1.sequence
class _Asn1Header:
    """Fabric's asn1Header (protoutil/blockutils.go): Go's encoding/asn1 marshals its *big.Int
    and two byte slices as SEQUENCE { INTEGER, OCTET STRING, OCTET STRING }, in DER."""

    number: int
    previous_hash: bytes
    data_hash: bytes


def block_header_bytes(header: Any) -> bytes:
    """DER bytes of the header, as protoutil.BlockHeaderBytes produces them."""
    return asn1.encode_der(
        _Asn1Header(
            number=int(header.number),
            previous_hash=bytes(header.previous_hash),
            data_hash=bytes(header.data_hash),
        )
    )


def block_header_hash(header: Any) -> bytes:
    return hashlib.sha256(block_header_bytes(header)).digest()


def block_data_hash(data: Iterable[bytes]) -> bytes:
    digest = hashlib.sha256()
    for item in data:
        digest.update(item)
    return digest.digest()


def new_block(number: int, previous_hash: bytes, envelopes: Sequence[bytes]) -> Any:
    """A block with header and data filled in and empty metadata slots (as the orderer cuts it)."""
    block = common_pb2.Block()
    block.header.number = number
    block.header.previous_hash = previous_hash
    block.data.data.extend(envelopes)
    block.header.data_hash = block_data_hash(envelopes)
    block.metadata.metadata.extend([b""] * METADATA_SLOTS)
    return block


def set_tx_filter(block: Any, codes: Sequence[int]) -> None:
    """Record the committer's validation codes (one byte per transaction), as Fabric peers do."""
    block.metadata.metadata[TX_FILTER_INDEX] = bytes(codes)


def tx_filter(block: Any) -> bytes:
    return bytes(block.metadata.metadata[TX_FILTER_INDEX])


def verify_block(block: Any, expected_number: int, previous_hash: bytes) -> bytes:
    """Check one block against its predecessor; return its header hash."""
    if block.header.number != expected_number:
        raise ChainError(f"block {expected_number} has number {block.header.number}")
    if block.header.previous_hash != previous_hash:
        raise ChainError(f"block {expected_number}: previous_hash does not match block "
                         f"{expected_number - 1}")
    if block.header.data_hash != block_data_hash(block.data.data):
        raise ChainError(f"block {expected_number}: data_hash does not match its data")
    return block_header_hash(block.header)
