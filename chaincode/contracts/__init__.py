"""Contracts served by `python -m chaincode` (chosen with CHAINCODE_CONTRACT=module:Class)."""
