"""What a holder signs: `DOMAIN || canonical_json(envelope)` (Ed25519, passport or account key).

The contract checks these bytes on every endorser (chaincode/mip/holder_auth.py); the gateway
and holders' own clients build them. A request as it travels in a transaction argument::

    {"action": "grant.create", "body": {...}, "nonce": "<16+ chars>", "expires": <unix s>,
     "channel": "mipchannel", "signer": "<base64 Ed25519 public key>",
     "signature": "<base64 signature>"}
"""

from __future__ import annotations

from typing import Any

from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.encoding import b64

DOMAIN = b"MIP-HOLDER-REQUEST-V1\n"
# A signed request is meant to be used right away; a long-lived one would be a bearer token.
MAX_REQUEST_TTL_S = 600


def signing_payload(action: str, body: dict[str, Any], nonce: str, expires: int, channel: str,
                    signer: bytes) -> bytes:
    """The exact bytes a holder signs (the contract verifies, the gateway and tests sign)."""
    envelope = {
        "action": action,
        "body": body,
        "nonce": nonce,
        "expires": expires,
        "channel": channel,
        "signer": b64(signer),
    }
    return DOMAIN + canonical_json(envelope)
