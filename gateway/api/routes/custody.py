"""The custody API: another member org's gateway acting for a custodial holder of this org
(gateway/services/custody.py; docs/gateway.md, "Holders at another org's desk").

Every route is for gateways, not people: the caller is the org whose service identity signed
the request (gateway/core/peer_auth.py), and a session answers its own caller only. Session
handles travel in the body (never in a path an access log keeps).

- `POST /custody/unlocks` {passport_id, embedding, password?} -> a custody session.
- `POST /custody/sessions/accounts` {handle, pseudonym, institution, min_level,
  face_commitment} -> the signed `account.open` and the KYC presentation (caller's org only).
- `POST /custody/sessions/accounts/sync` {handle, pseudonym} -> the directory entry, once
  the ledger shows it.
- `POST /custody/sessions/signatures` {handle, account, action, body} -> a holder request
  signed by the key of an account at the caller's org.
- `POST /custody/sessions/passport-signatures` {handle, action, body} -> `passport.vouch`.
- `POST /custody/sessions/linkage-proofs` {handle, account, other_account, ttl_s, nonce?}
  -> a linkage proof designated to the caller's own verifier key.
- `POST /custody/sessions/profile/key` {handle} -> the holder's profile public key;
  `POST /custody/sessions/profile/records` {handle, kind, source (the caller), data,
  metadata} -> a record added to the holder's profile here (write-only for the caller).
- `POST /custody/sessions/end` {handle} -> 204.
- `POST /custody/portraits` {signed_request: the holder's `grant.portrait`} -> the portrait
  for an account of this org, relayed by the gateway whose wallet page the holder uses
  (services/portrait_issue.py; no session: the holder's signature authorises it).

Guardian recovery of a holder enrolled here, run at the caller's desk
(services/recovery_relay.py):
- `POST /custody/recoveries` {passport_id} -> {handle, guardians, threshold}, bound to the
  caller;
- `POST /custody/recoveries/shares/sealed` {handle, guardian} -> the sealed share addressed
  to that guardian, and `POST /custody/recoveries/shares` {handle, guardian, mnemonic}: for
  the guardian's enrolling org only (it holds the guardian's key);
- `POST /custody/recoveries/ready` {handle}: the checks before the caller spends its face
  challenge; `POST /custody/recoveries/finish` {handle, embedding, new_password}.
And for a guardian enrolled here, unlocked at the caller's desk:
- `POST /custody/sessions/recovery-shares` {handle, custodian, recovery}: open that
  guardian's share of the recovery `recovery` held by `custodian` and give it there.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from chaincode.protocol.encoding import b64, unb64
from gateway.api.body_limits import PROFILE_BODY_LIMIT
from gateway.api.deps import StateDep
from gateway.api.models.custody import (
    CustodyAccountOut,
    CustodyRecoveryOut,
    CustodySessionOut,
    CustodyUnlockIn,
    GuardianIn,
    GuardianShareIn,
    HandleIn,
    LinkageProofIn,
    LinkageProofOut,
    MnemonicIn,
    PassportSignIn,
    PrepareAccountIn,
    PreparedAccountOut,
    ProfileAddIn,
    ProfileKeyCustodyOut,
    RecoveryFinishCustodyIn,
    RecoveryFinishCustodyOut,
    RecoveryStartIn,
    SealedShareOut,
    SharesOut,
    SignedOut,
    SignIn,
    SyncAccountIn,
)
from gateway.api.models.grants import PreparedPortrait, PreparePortraitRequest
from gateway.api.models.profile import ProfileRecordOut
from gateway.api.routes.profile import _store as profile_store
from gateway.core.errors import InvalidRequest
from gateway.holder import keys
from gateway.profile.errors import InvalidRecord
from gateway.services import portrait_issue
from gateway.services.custody import (
    NotCallerInstitution,
    custody_service,
    decode_embedding,
    session_out,
)
from gateway.services.holder_recovery import recovery_service
from gateway.services.recovery_relay import give_share_from, require_guardians_custodian

router = APIRouter(prefix="/custody", tags=["custody"])


async def calling_org(request: Request, state: StateDep) -> str:
    """The member org whose gateway signed this request for this gateway, now (401
    `peer_unauthenticated` otherwise)."""
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return custody_service(state).authenticate(request.headers, request.method, path, body)


CallerDep = Annotated[str, Depends(calling_org)]


@router.post("/unlocks", response_model=CustodySessionOut, status_code=201)
async def unlock(body: CustodyUnlockIn, state: StateDep, caller: CallerDep) -> CustodySessionOut:
    service = custody_service(state)
    session = await service.unlock(caller, body.passport_id, decode_embedding(body.embedding),
                                   body.password)
    return CustodySessionOut.model_validate(session_out(session))


@router.post("/sessions/accounts", response_model=PreparedAccountOut, status_code=201)
async def prepare_account(body: PrepareAccountIn, state: StateDep,
                          caller: CallerDep) -> PreparedAccountOut:
    service = custody_service(state)
    session = service.session(caller, body.handle)
    request, presentation = await service.prepare_account(
        session, body.pseudonym, body.institution, body.min_level, body.face_commitment)
    return PreparedAccountOut(request=request, presentation=presentation)


@router.post("/sessions/accounts/sync", response_model=CustodyAccountOut)
async def sync_account(body: SyncAccountIn, state: StateDep,
                       caller: CallerDep) -> CustodyAccountOut:
    service = custody_service(state)
    entry = await service.sync_account(service.session(caller, body.handle), body.pseudonym)
    return CustodyAccountOut.model_validate(entry.to_dict())


@router.post("/sessions/signatures", response_model=SignedOut)
async def sign(body: SignIn, state: StateDep, caller: CallerDep) -> SignedOut:
    service = custody_service(state)
    session = service.session(caller, body.handle)
    return SignedOut(request=service.sign(session, body.account, body.action, body.body))


@router.post("/sessions/passport-signatures", response_model=SignedOut)
async def passport_sign(body: PassportSignIn, state: StateDep, caller: CallerDep) -> SignedOut:
    service = custody_service(state)
    session = service.session(caller, body.handle)
    return SignedOut(request=service.passport_sign(session, body.action, body.body))


@router.post("/portraits", response_model=PreparedPortrait)
async def relayed_portrait(body: PreparePortraitRequest, state: StateDep,
                           caller: CallerDep) -> PreparedPortrait:
    """A holder's `grant.portrait` another member org's gateway relays for an account of this
    org: made here as for the holder's own request to this gateway (never relayed again)."""
    return PreparedPortrait(**await portrait_issue.prepare(
        state, body.signed_request.envelope(), relay=False))


@router.post("/sessions/end", status_code=204)
async def end(body: HandleIn, state: StateDep, caller: CallerDep) -> Response:
    custody_service(state).end(caller, body.handle)
    return Response(status_code=204)


# --- guardian recovery at the caller's desk --------------------------------------------------
@router.post("/recoveries", response_model=CustodyRecoveryOut, status_code=201)
async def start_recovery(body: RecoveryStartIn, state: StateDep,
                         caller: CallerDep) -> CustodyRecoveryOut:
    rec = await recovery_service(state).start_for(caller, body.passport_id)
    return CustodyRecoveryOut(handle=rec.recovery_id, passport_id=rec.passport_id,
                              guardians=sorted(rec.guardians), threshold=rec.threshold,
                              expires_in_s=max(0.0, rec.expires - time.time()))


@router.post("/recoveries/shares/sealed", response_model=SealedShareOut)
async def sealed_share(body: GuardianIn, state: StateDep, caller: CallerDep) -> SealedShareOut:
    service = recovery_service(state)
    rec = service.by_handle(body.handle)
    await require_guardians_custodian(state, caller, body.guardian)
    return SealedShareOut(sealed=service.release_sealed(rec, body.guardian, caller))


@router.post("/recoveries/shares", response_model=SharesOut, status_code=201)
async def give_share(body: MnemonicIn, state: StateDep, caller: CallerDep) -> SharesOut:
    service = recovery_service(state)
    rec = service.by_handle(body.handle)
    await require_guardians_custodian(state, caller, body.guardian)
    service.add_mnemonic(rec, body.guardian, body.mnemonic)
    return SharesOut(shares=len(rec.mnemonics), threshold=rec.threshold)


@router.post("/recoveries/ready", response_model=SharesOut)
async def recovery_ready(body: HandleIn, state: StateDep, caller: CallerDep) -> SharesOut:
    service = recovery_service(state)
    rec = service.for_caller(caller, body.handle)
    await service.ready(rec)
    return SharesOut(shares=len(rec.mnemonics), threshold=rec.threshold)


@router.post("/recoveries/finish", response_model=RecoveryFinishCustodyOut)
async def finish_recovery(body: RecoveryFinishCustodyIn, state: StateDep,
                          caller: CallerDep) -> RecoveryFinishCustodyOut:
    result = await recovery_service(state).finish_for(
        caller, body.handle, decode_embedding(body.embedding), body.new_password)
    return RecoveryFinishCustodyOut(passport_id=result.passport_id,
                                    face_reenrolled=result.face_reenrolled,
                                    shares=result.shares)


@router.post("/sessions/recovery-shares", response_model=SharesOut, status_code=201)
async def guardian_share(body: GuardianShareIn, state: StateDep,
                         caller: CallerDep) -> SharesOut:
    """The guardian (enrolled here, unlocked at level 2 at the caller's desk) gives their
    share: opened here with their passport key, sent to the recovery's custodian."""
    session = custody_service(state).session(caller, body.handle)
    session.require_level(2)
    shares, threshold = await give_share_from(
        state, keys.passport_key(session.master).private, session.passport_id,
        body.custodian, body.recovery)
    return SharesOut(shares=shares, threshold=threshold)


@router.post("/sessions/linkage-proofs", response_model=LinkageProofOut, status_code=201)
async def linkage_proof(body: LinkageProofIn, state: StateDep,
                        caller: CallerDep) -> LinkageProofOut:
    service = custody_service(state)
    session = service.session(caller, body.handle)
    return LinkageProofOut(**await service.linkage_proof(
        session, body.account, body.other_account, body.ttl_s, body.nonce))


@router.post("/sessions/profile/key", response_model=ProfileKeyCustodyOut)
async def profile_key(body: HandleIn, state: StateDep, caller: CallerDep) -> ProfileKeyCustodyOut:
    session = custody_service(state).session(caller, body.handle)
    return ProfileKeyCustodyOut(public_key=b64(bytes(
        keys.profile_key(session.master).public_key)))


@router.post("/sessions/profile/records", response_model=ProfileRecordOut, status_code=201,
             max_body_size=PROFILE_BODY_LIMIT)
async def profile_add(body: ProfileAddIn, state: StateDep,
                      caller: CallerDep) -> ProfileRecordOut:
    """A record the holder adds at the caller's desk, its source the caller's org: stored
    here, sealed to the holder's profile key; the caller gets its listing entry only."""
    session = custody_service(state).session(caller, body.handle)
    if body.source != caller:
        raise NotCallerInstitution(f"a record added at {caller}'s desk has source {caller}")
    me = keys.profile_key(session.master)
    store = profile_store(state)
    try:
        record_id = store.add_record(me.public_key, body.kind, body.source,
                                     unb64(body.data, "data", InvalidRequest), body.metadata)
    except InvalidRecord as exc:
        raise InvalidRequest(str(exc), code="invalid_record") from None
    info = next(r for r in store.list_records(me) if r.record_id == record_id)
    return ProfileRecordOut(record_id=info.record_id, kind=info.kind, source=info.source,
                            created=info.created, size=info.size, metadata=info.metadata,
                            owned=info.owned)
