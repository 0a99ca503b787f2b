"""The off-chain side of MIP's KYC anonymous credentials (anoncreds 0.2.3, CL signatures).

`issuer.py`: an org's KYC issuer, holding its CL private key and revocation registries;
`wallet.py`: the holder's link secret and credentials, and the presentations it makes;
`state.py`: saving both (private key material: callers seal it before it touches a disk).
The contract's side (checking documents, verifying a presentation) is
chaincode/mip/kyc_credentials.py; the terms both share are chaincode/protocol/kyc.py.
"""

from anoncreds import bindings as _anoncreds_bindings  # type: ignore[import-untyped]

# Load the native library now, under Python's import lock. anoncreds' own lazy loader is not
# thread-safe: two threads making their first anoncreds call at once both install its Rust
# logger, and the second panics ("env_logger::init should not be called after logger
# initialized"), failing that call (seen when issuers are created in parallel).
_anoncreds_bindings.get_library()
