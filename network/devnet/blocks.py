"""Fabric block construction and hashing (protoutil.BlockHeaderBytes / BlockDataHash).

The header hash is SHA-256 over the ASN.1 DER encoding of SEQUENCE { INTEGER number,
OCTET STRING previous_hash, OCTET STRING data_hash } exactly as Go's encoding/asn1 marshals
Fabric's asn1Header; the data hash is SHA-256 over the concatenated envelopes (Fabric 2.5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from network.devnet._protos import common_pb2

TX_FILTER_INDEX = common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER
METADATA_SLOTS = len(common_pb2.BlockMetadataIndex.items())


class ChainError(ValueError):
    """Stored blocks do not form a valid hash chain."""


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def block_header_bytes(header: Any) -> bytes:
    """DER bytes of the header, as protoutil.BlockHeaderBytes produces them."""
    number = header.number
    # Minimal two's-complement big-endian; a leading zero byte keeps the value non-negative.
    number_bytes = number.to_bytes((number.bit_length() + 8) // 8, "big")
    content = (
        _der(0x02, number_bytes)
        + _der(0x04, header.previous_hash)
        + _der(0x04, header.data_hash)
    )
    return _der(0x30, content)


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
