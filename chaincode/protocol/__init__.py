"""What the MIP contract and its clients both speak, in one package imported by both.

The contract (`chaincode/mip`) checks what a gateway (`gateway/`) builds: the canonical JSON
that holders sign and hashes are taken over, the holder request signing payload and its TTL,
base64 fields, passport and verifier ids, a pharmacy gateway's attestation bytes, a
credential's public terms and salted hash, the KYC identifiers, nonces and presentation
request, the credential types and scopes, the member orgs, and the chaincode definition
(contracts and endorsement policy) MIP is deployed with, and two of Fabric's own rules both
sides follow: the client identity string (`fabric_identity.py`, Go's DN form) and low-S ECDSA
signatures (`ecdsa.py`). Keeping each of these in one place is
what makes the two sides agree byte for byte. It also holds the gRPC transport setting every
MIP process applies before grpc loads (`grpc_runtime.py`), as chaincode, network and gateway
all call it.

Not here: the Ed25519 -> X25519 conversion. The contract never converts keys (it checks
verifier keys as X25519 keys as registered); only the gateway's sealing and its off-chain
linkage proof do, so its one home is gateway/holder/x25519.py.

Rules (checked by tests/test_import_direction.py): this package imports nothing from
`chaincode.mip`, `chaincode.shim`, `gateway`, `network` or `face_engine`, and only small,
pure dependencies (the standard library, `rfc8785`, `cryptography`); it holds no key
material and no state.
The gateway imports `chaincode.protocol` and nothing else of `chaincode`.
"""
