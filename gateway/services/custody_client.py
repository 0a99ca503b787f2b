"""The desk's side of holders at another org's desk: reaching the holder's custodian.

At org O's desk a staff member starts a holder session for passport P as usual
(holders.py). When O's gateway holds no vault for P, it reads `Passport:Get(P)` through its
own peer; if another org E enrolled P, O runs the liveness challenge with its own face
engine and sends E the live embedding and the password (`CustodyClient.unlock`, signed with
O's service identity: gateway/core/peer_auth.py). The desk session becomes a
`RemoteHolderSession`: the same interface the services use (level, accounts, signatures),
whose keys stay at E. It shows only the holder's accounts at O; it signs only through E's
relay, which signs only for accounts at O and for a vouch.

O keeps the unlock's live face for the session (as a local session does): an account opened
here gets O's own protected reference from it, under O's keys (accounts.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from gateway.core.errors import ApiError, Conflict, Locked, NotFound
from gateway.core.peer_auth import PeerSigner
from gateway.holder.keys import HolderKeyPair

from .custody import encode_embedding
from .faces import LiveFace
from .holders import AccountEntry, HolderSession, HolderState, UnlockRefused
from .ledger import SERVICE_USER
from .peer_requests import peer_requests

if TYPE_CHECKING:
    from nacl.public import PrivateKey

    from .state import AppState

log = logging.getLogger("mip.gateway.custody")

CUSTODY_TIMEOUT_S = 30.0


class CustodianUnavailable(ApiError):
    """The holder's enrolling org's gateway cannot be reached (not configured, or down)."""

    status, code = 503, "custodian_unavailable"


class HeldElsewhere(Conflict):
    """What needs the holder's keys here (profile, linkage proofs, guardian shares) is not
    offered for a holder whose keys another org's gateway holds."""

    code = "custody_elsewhere"


@dataclass(eq=False)
class RemoteHolderSession(HolderSession):
    """A desk session whose holder's keys the enrolling org's gateway (`custodian`) holds."""

    custodian: str = ""
    handle: str = field(default="", repr=False)
    kyc_level: int | None = None
    _remote_accounts: list[AccountEntry] = field(default_factory=list, repr=False)

    def wipe(self) -> None:
        super().wipe()
        self._remote_accounts, self.handle = [], ""

    def _elsewhere(self) -> HeldElsewhere:
        return HeldElsewhere(f"this holder's keys are held by {self.custodian}'s gateway; "
                             "this is not offered at another org's desk yet")

    @property
    def master(self) -> bytes:
        raise self._elsewhere()

    @property
    def state(self) -> HolderState:
        raise self._elsewhere()

    def accounts(self) -> list[AccountEntry]:
        self.require_level(2)
        return list(self._remote_accounts)

    def account(self, pseudonym: str) -> AccountEntry:
        self.require_level(2)
        for entry in self._remote_accounts:
            if entry.pseudonym == pseudonym:
                return entry
        raise NotFound("no such account of this holder", code="account_not_found")

    def account_key(self, pseudonym: str) -> HolderKeyPair:
        raise self._elsewhere()

    def sign(self, pseudonym: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        raise self._elsewhere()

    def passport_key(self) -> HolderKeyPair:
        raise self._elsewhere()

    def passport_sign(self, action: str, body: dict[str, Any], *,
                      expires: int | None = None) -> dict[str, Any]:
        raise self._elsewhere()

    def profile_key(self) -> PrivateKey:
        raise self._elsewhere()

    def save(self) -> None:
        raise self._elsewhere()

    def _client(self) -> CustodyClient:
        return custody_client(self.service.state)

    async def signed(self, pseudonym: str, action: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
        self.require_level(2)
        self.account(pseudonym)
        return await self._client().call(self.custodian, "/sessions/signatures", {
            "handle": self.handle, "account": pseudonym, "action": action, "body": body},
            "request")

    async def passport_signed(self, action: str, body: dict[str, Any], *,
                              expires: int | None = None) -> dict[str, Any]:
        self.require_level(2)
        if expires is not None:
            # A deadline set by someone else is a guardian's rotation approval: the custodian
            # signs that at its own desk only (services/guardian_rotation.py says why).
            raise self._elsewhere()
        return await self._client().call(self.custodian, "/sessions/passport-signatures", {
            "handle": self.handle, "action": action, "body": body}, "request")

    async def directory_changed(self, pseudonym: str) -> None:
        """The custodian reads the account back from the ledger and updates its directory;
        this session's copy follows."""
        entry = await self._client().call(self.custodian, "/sessions/accounts/sync", {
            "handle": self.handle, "pseudonym": pseudonym})
        self.remember(_entry(entry))

    def remember(self, entry: AccountEntry) -> None:
        self._remote_accounts = [a for a in self._remote_accounts
                                 if a.pseudonym != entry.pseudonym] + [entry]


def _entry(raw: dict[str, Any]) -> AccountEntry:
    return AccountEntry(str(raw["pseudonym"]), str(raw["institution"]), int(raw["index"]),
                        str(raw["status"]), int(raw["opened"]))


class CustodyClient:
    """Signed calls to other orgs' gateways' custody API."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def signer(self) -> PeerSigner:
        signer = peer_requests(self.state).signer()
        if signer is None:
            raise CustodianUnavailable(f"no service identity {SERVICE_USER!r} of "
                                       f"{self.state.settings.org} in the connection profile")
        return signer

    def base_url(self, org: str) -> str:
        url = self.state.settings.org_gateways.get(org)
        if url is None:
            raise CustodianUnavailable(
                f"this holder's keys are held by {org}'s gateway, and no address of it is "
                "configured (org_gateways)")
        if self.state.settings.mode == "production" and not url.startswith("https://"):
            raise CustodianUnavailable(f"{org}'s gateway address must be https in production")
        return url

    async def call(self, org: str, path: str, payload: dict[str, Any],
                   pick: str | None = None) -> Any:
        """POST `payload` to `org`'s custody API at `path`, signed; its typed errors come
        back as the same ApiError (status and code)."""
        base = self.base_url(org)
        body = json.dumps(payload, separators=(",", ":")).encode()
        full_path = httpx.URL(base + "/api/v1/custody" + path).path
        headers = {"Content-Type": "application/json",
                   **self.signer().headers("POST", full_path, body, org)}
        try:
            async with peer_requests(self.state).client(org, CUSTODY_TIMEOUT_S) as http:
                response = await http.post(base + "/api/v1/custody" + path, content=body,
                                           headers=headers)
        except httpx.HTTPError as exc:
            log.warning("custody call to %s failed: %s", org, type(exc).__name__)
            raise CustodianUnavailable(f"{org}'s gateway did not answer") from None
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            raise CustodianUnavailable(f"{org}'s gateway answered {response.status_code} "
                                       "without JSON") from None
        if response.status_code >= 400:
            error = data.get("error", {}) if isinstance(data, dict) else {}
            code, message = str(error.get("code", "custodian_error")), str(error.get(
                "message", f"{org}'s gateway refused"))
            if code == "unlock_failed":
                raise UnlockRefused(message)
            if code == "unlock_locked":
                raise Locked(message, code=code)
            status = response.status_code
            # The custodian refusing us (bad signature, config) is our fault, not the user's.
            if code in ("peer_unauthenticated", "peer_not_gateway"):
                status, code = 502, "custodian_refused_gateway"
            raise ApiError(message, code=code, status=status)
        return data[pick] if pick is not None else data

    async def unlock(self, custodian: str, passport_id: str, live: LiveFace,
                     password: str | None) -> dict[str, Any]:
        payload: dict[str, Any] = {"passport_id": passport_id,
                                   "embedding": encode_embedding(live)}
        if password is not None:
            payload["password"] = password
        result: dict[str, Any] = await self.call(custodian, "/unlocks", payload)
        return result

    async def prepare_account(self, session: RemoteHolderSession, pseudonym: str,
                              institution: str, min_level: int, face_commitment: str
                              ) -> tuple[dict[str, Any], dict[str, Any]]:
        out = await self.call(session.custodian, "/sessions/accounts", {
            "handle": session.handle, "pseudonym": pseudonym, "institution": institution,
            "min_level": min_level, "face_commitment": face_commitment})
        return dict(out["request"]), dict(out["presentation"])

    async def end(self, session: RemoteHolderSession) -> None:
        if session.handle:
            await self.call(session.custodian, "/sessions/end", {"handle": session.handle})


def custody_client(state: AppState) -> CustodyClient:
    return state.service("custody_client", CustodyClient)


def remote_session(local: HolderSession, custodian: str, passport_id: str, live: LiveFace,
                   face_commitment: str | None, answer: dict[str, Any]) -> RemoteHolderSession:
    """The desk session `local` (started here, same id, desk, staff and challenge) as
    unlocked at the custodian."""
    session = RemoteHolderSession(
        local.session_id, local.staff, local.challenge_id, local.expires, local.service,
        local.desk_digest,
        passport_id=passport_id, enrolling_org=custodian, level=int(answer["level"]),
        live=live, face_commitment=face_commitment, custodian=custodian,
        handle=str(answer["handle"]),
        kyc_level=None if answer.get("kyc_level") is None else int(answer["kyc_level"]))
    session._remote_accounts = [_entry(a) for a in answer.get("accounts", [])]
    return session
