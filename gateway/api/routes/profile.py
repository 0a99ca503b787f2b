"""The holder's smart profile (level-2 holder session): add, list, open, share records.

Records are stored by gateway/profile (`<data_dir>/profile.sqlite`), encrypted to the
holder's profile key (derived from the master secret, m/P'/2'/0'); sharing seals a record's
key to a grantee's X25519 profile key (`GET /profile/key` tells a holder theirs).

At another org's desk, for a holder whose keys the enrolling org's gateway holds, the key and
adding a record go to that gateway (the record is stored there, sealed to the holder's key,
its `source` the desk's org); listing, opening and sharing records are 409
`custody_elsewhere`: a desk org could otherwise read the whole profile.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from nacl.public import PublicKey

from chaincode.protocol.encoding import b64, unb64
from gateway.api.body_limits import PROFILE_BODY_LIMIT
from gateway.api.deps import HolderDep, StateDep
from gateway.api.models.profile import (
    RECORD_ID,
    ProfileKeyOut,
    ProfileRecordData,
    ProfileRecordIn,
    ProfileRecordList,
    ProfileRecordOut,
    ShareIn,
)
from gateway.core.errors import Forbidden, InvalidRequest, NotFound
from gateway.profile import AccessDenied, ProfileStore, RecordNotFound
from gateway.profile.errors import InvalidRecord
from gateway.services.custody_client import RemoteHolderSession, custody_client
from gateway.services.state import AppState

router = APIRouter(tags=["profile"])
RecordId = Annotated[str, Path(pattern=RECORD_ID)]


def _store(state: AppState) -> ProfileStore:
    return state.service("profile_store",
                         lambda s: ProfileStore(s.settings.data_dir / "profile.sqlite"))


def _unb64(text: str, what: str) -> bytes:
    return unb64(text, what, InvalidRequest)


@router.get("/profile/key", response_model=ProfileKeyOut)
async def profile_key(state: StateDep, holder: HolderDep) -> ProfileKeyOut:
    holder.require_level(2)
    if isinstance(holder, RemoteHolderSession):
        # The public half only, from the holder's custodian (docs/gateway.md, "Holders at
        # another org's desk": records can be added here, never read).
        out = await custody_client(state).call(holder.custodian, "/sessions/profile/key",
                                               {"handle": holder.handle})
        return ProfileKeyOut(public_key=str(out["public_key"]))
    return ProfileKeyOut(public_key=b64(
        bytes(holder.profile_key().public_key)))


@router.post("/profile/records", response_model=ProfileRecordOut, status_code=201,
             max_body_size=PROFILE_BODY_LIMIT)
async def add_record(body: ProfileRecordIn, state: StateDep,
                     holder: HolderDep) -> ProfileRecordOut:
    holder.require_level(2)
    if isinstance(holder, RemoteHolderSession):
        # Stored in the holder's profile at their custodian, sealed to their key there: this
        # desk adds a record it cannot read back.
        out = await custody_client(state).call(holder.custodian, "/sessions/profile/records", {
            "handle": holder.handle, "kind": body.kind, "source": body.source,
            "data": body.data, "metadata": body.metadata})
        return ProfileRecordOut.model_validate(out)
    me = holder.profile_key()
    try:
        record_id = _store(state).add_record(me.public_key, body.kind, body.source,
                                             _unb64(body.data, "data"), body.metadata)
    except InvalidRecord as exc:
        raise InvalidRequest(str(exc), code="invalid_record") from None
    info = next(r for r in _store(state).list_records(me) if r.record_id == record_id)
    return ProfileRecordOut(record_id=info.record_id, kind=info.kind, source=info.source,
                            created=info.created, size=info.size, metadata=info.metadata,
                            owned=info.owned)


@router.get("/profile/records", response_model=ProfileRecordList)
async def list_records(state: StateDep, holder: HolderDep) -> ProfileRecordList:
    holder.require_level(2)
    return ProfileRecordList(records=[
        ProfileRecordOut(record_id=i.record_id, kind=i.kind, source=i.source,
                         created=i.created, size=i.size, metadata=i.metadata, owned=i.owned)
        for i in _store(state).list_records(holder.profile_key())])


@router.get("/profile/records/{record_id}", response_model=ProfileRecordData)
async def open_record(record_id: RecordId, state: StateDep,
                      holder: HolderDep) -> ProfileRecordData:
    holder.require_level(2)
    try:
        data = _store(state).open_record(record_id, holder.profile_key())
    except (RecordNotFound, AccessDenied):
        # Not yours and not shared to you reads as absent.
        raise NotFound("no such profile record", code="record_not_found") from None
    return ProfileRecordData(record_id=record_id, data=b64(data))


@router.post("/profile/records/{record_id}/shares", status_code=204)
async def share_record(record_id: RecordId, body: ShareIn, state: StateDep,
                       holder: HolderDep) -> Response:
    holder.require_level(2)
    raw = _unb64(body.grantee_public_key, "grantee_public_key")
    if len(raw) != 32:
        raise InvalidRequest("grantee_public_key must be 32 bytes", code="invalid_key")
    try:
        _store(state).share(record_id, holder.profile_key(), PublicKey(raw))
    except RecordNotFound:
        raise NotFound("no such profile record", code="record_not_found") from None
    except AccessDenied:
        raise Forbidden("only the record's owner shares it", code="not_owner") from None
    return Response(status_code=204)
