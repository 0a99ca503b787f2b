"""Holder consent: Ed25519 signatures over a canonical request with a nonce and an expiry.

Holders have no Fabric identity. Their actions reach the chaincode through a gateway, so the
chaincode must be able to tell that the holder (not the gateway's operator) asked for them:
the holder signs `DOMAIN || canonical_json(envelope)` with the passport or account key
(`chaincode/protocol/holder_requests.py`, which the gateway signs with), and
every endorsing peer checks the signature, the expiry against the transaction timestamp,
and that the nonce was never used with that key (the nonce record is part of the write set,
so two concurrent uses of one nonce cannot both commit: MVCC refuses the second).

A request as it travels in a transaction argument::

    {"action": "grant.create", "body": {...}, "nonce": "<16+ chars>", "expires": <unix s>,
     "channel": "mipchannel", "signer": "<base64 Ed25519 public key>",
     "signature": "<base64 signature>"}
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from chaincode.mip.errors import BadSignature, ClockSkew, Expired, InvalidRequest, Replay
from chaincode.protocol import encoding
from chaincode.protocol.encoding import b64
from chaincode.protocol.holder_requests import MAX_REQUEST_TTL_S, signing_payload
from chaincode.shim import Context, create_composite_key

__all__ = ["MAX_REQUEST_TTL_S", "b64", "signing_payload"]  # re-exported for the contract

NONCE_OBJECT = "mip.nonce"

# How far a proposal's timestamp may be from this endorser's clock, ahead or behind. Every
# expiry and window is judged by the proposal timestamp (all endorsers must compute the same
# read-write set, so it cannot be each one's own clock), and the timestamp is the client's
# choice; each endorser therefore refuses one dated further than this from its own clock. The
# peer's own time window (Fabric 3.x peer.authentication.timewindow) is 15 minutes, far too
# loose here: holder requests live at most MAX_REQUEST_TTL_S (10 minutes) and a read window is
# 300 s, so 15 minutes would let a client stretch either by more than its whole length. 120 s
# bounds the stretch of any expiry to 2 minutes while tolerating clocks that NTP keeps within
# seconds (docs/chaincode.md, "Time").
CLOCK_SKEW_ENV = "MIP_CLOCK_SKEW_S"
DEFAULT_CLOCK_SKEW_S = 120
MAX_CLOCK_SKEW_S = 900  # never looser than the peer's own window


def clock_skew_from_env(env: Mapping[str, str] | None = None) -> int:
    """MIP_CLOCK_SKEW_S (whole seconds, 1..900; default 120). A bad value stops the chaincode
    server at start rather than silently running with another bound."""
    raw = (os.environ if env is None else env).get(CLOCK_SKEW_ENV, "").strip()
    if not raw:
        return DEFAULT_CLOCK_SKEW_S
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"{CLOCK_SKEW_ENV} must be a whole number of seconds, got {raw!r}") from None
    if not 1 <= value <= MAX_CLOCK_SKEW_S:
        raise ValueError(f"{CLOCK_SKEW_ENV} must be 1 to {MAX_CLOCK_SKEW_S} s, got {value}")
    return value


CLOCK_SKEW_S = clock_skew_from_env()
# The endorser's own clock. Test seam only: contract tests that fake a stub with a fixed
# timestamp replace it with a clock that agrees; production never does.
wall_clock: Callable[[], float] = time.time
_FIELDS = {"action", "body", "nonce", "expires", "channel", "signer", "signature"}


@dataclass(frozen=True)
class HolderRequest:
    action: str
    body: dict[str, Any]
    nonce: str
    expires: int
    channel: str
    signer: bytes  # raw 32-byte Ed25519 public key
    signature: bytes

    def signed_bytes(self) -> bytes:
        return signing_payload(self.action, self.body, self.nonce, self.expires, self.channel,
                               self.signer)


def unb64(text: Any, what: str) -> bytes:
    """Standard base64 of `text`, or InvalidRequest naming the field."""
    return encoding.unb64(text, what, InvalidRequest)


def parse_request(raw: Any) -> HolderRequest:
    if not isinstance(raw, dict):
        raise InvalidRequest("holder request must be a JSON object")
    missing = _FIELDS - raw.keys()
    extra = raw.keys() - _FIELDS
    if missing or extra:
        raise InvalidRequest(
            f"holder request fields wrong (missing {sorted(missing)}, unexpected {sorted(extra)})"
        )
    action, body, nonce, expires, channel = (
        raw["action"], raw["body"], raw["nonce"], raw["expires"], raw["channel"]
    )
    if not isinstance(action, str) or not action:
        raise InvalidRequest("action must be a non-empty string")
    if not isinstance(body, dict):
        raise InvalidRequest("body must be an object")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
        raise InvalidRequest("nonce must be a string of 16 to 128 characters")
    if not isinstance(expires, int) or isinstance(expires, bool):
        raise InvalidRequest("expires must be an integer (unix seconds)")
    if not isinstance(channel, str):
        raise InvalidRequest("channel must be a string")
    signer = unb64(raw["signer"], "signer")
    if len(signer) != 32:
        raise InvalidRequest("signer must be a 32-byte Ed25519 public key")
    signature = unb64(raw["signature"], "signature")
    if len(signature) != 64:
        raise InvalidRequest("signature must be 64 bytes")
    return HolderRequest(action, body, nonce, expires, channel, signer, signature)


def tx_unix_time(ctx: Context) -> int:
    """The proposal's timestamp (unix seconds), the time every expiry is judged by; refused
    with ClockSkew when it is more than CLOCK_SKEW_S from this endorser's clock.

    Only the accept/refuse decision uses the local clock: the value returned (and written to
    the ledger) is the proposal's, identical on every endorser, so honest endorsers produce
    identical read-write sets.
    """
    stamp = int(ctx.stub.get_tx_timestamp().seconds)
    skew = stamp - wall_clock()
    if abs(skew) > CLOCK_SKEW_S:
        direction = "ahead of" if skew > 0 else "behind"
        raise ClockSkew(f"the proposal is dated {abs(skew):.0f} s {direction} this endorser's "
                        f"clock (at most {CLOCK_SKEW_S} s allowed); check the clocks")
    return stamp


def _checked(ctx: Context, raw: Any, action: str, expected_signer: bytes | None,
             now: int) -> HolderRequest:
    """The checks every holder request passes, read or write: action, channel, the pinned
    signer, expiry against `now` (at most MAX_REQUEST_TTL_S ahead) and the signature."""
    request = parse_request(raw)
    if request.action != action:
        raise InvalidRequest(f"request is for {request.action!r}, not {action!r}")
    if request.channel != ctx.stub.channel_id:
        raise InvalidRequest("request was signed for another channel")
    if expected_signer is not None and request.signer != expected_signer:
        raise BadSignature("request is not signed by the key on record")
    if request.expires < now:
        raise Expired("holder request has expired")
    if request.expires > now + MAX_REQUEST_TTL_S:
        raise InvalidRequest(f"holder request may be valid for at most {MAX_REQUEST_TTL_S} s")
    try:
        Ed25519PublicKey.from_public_bytes(request.signer).verify(
            request.signature, request.signed_bytes())
    except InvalidSignature as exc:
        raise BadSignature("holder signature does not verify") from exc
    return request


def verify_read_request(ctx: Context, raw: Any, action: str, *,
                        expected_signer: bytes | None = None) -> HolderRequest:
    """Check a holder request for a read-only transaction without recording its nonce.

    An evaluate is never ordered, so a nonce "recorded" there would be discarded anyway. This
    is safe for reads because a replayed read request changes nothing and returns only what
    the holder already consented to show to whoever carries that request, and only until its
    expiry (at most MAX_REQUEST_TTL_S). The expiry is checked against the transaction
    timestamp and this peer's own clock: an evaluate's timestamp is chosen by the client and
    nothing has to agree across peers, so the local clock is the honest one here.
    `expected_signer` pins the key as in `verify_holder_request`.
    """
    return _checked(ctx, raw, action, expected_signer, max(tx_unix_time(ctx), int(time.time())))


async def verify_holder_request(
    ctx: Context,
    raw: Any,
    action: str,
    *,
    expected_signer: bytes | None = None,
) -> HolderRequest:
    """Check a holder request for `action`; record its nonce. Raises a typed MipError.

    `expected_signer` pins the key (the passport or account key on record); without it the
    caller must check `request.signer` against its own records.
    """
    # Judged against the transaction's time, which every endorser bounds by its own clock
    # (tx_unix_time): all endorsers agree on it, so they agree on the outcome.
    request = _checked(ctx, raw, action, expected_signer, tx_unix_time(ctx))
    # The nonce key hashes signer and nonce together so that nonce records do not reveal
    # which key (and so which account) made them.
    digest = hashlib.sha256(request.signer + b"\x00" + request.nonce.encode()).hexdigest()
    key = create_composite_key(NONCE_OBJECT, [digest])
    if await ctx.stub.get_state(key) is not None:
        raise Replay("this holder request was already used")
    await ctx.stub.put_state(key, str(request.expires).encode())
    return request
