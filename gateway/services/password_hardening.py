"""The enrolling org's side of the vault's password hardening (vault version 3).

The enrolling org E wraps a holder's master secret under Argon2id(password), the face-factor
key, its own OPRF output and the helper org H's OPRF output (gateway/holder/vault_v3.py). H
is the next org after E in `RING` (deterministic: the same for every vault of E); with
`vault_helpers: 2` a second wrap names the org after H (H2), so that either helper can
answer (docs/gateway.md "Password hardening": the trade-off).

E reaches H in process when this gateway serves every org (devnet, demo, tests: the same
counted service, `password_oprf.py`), else over HTTP at `org_gateways[H]` with a request
signed by E's service identity (gateway/core/peer_auth.py). A per-org gateway with no
address for any of its helpers cannot harden: in development mode it keeps writing version 2
(logged), in production enrolment and recovery are refused (503
`password_helper_unavailable`).

Unlock: a version-3 vault asks its helpers in order and uses the first that answers (a helper
that is down or has locked the passport is skipped; when none answers, 503 or 423 come back
and the unlock is not counted as a failure at E). Once the whole unlock succeeded (face
too: `settle`) E shows that helper the confirm token, which clears its count. A version-1
or -2 vault opens as before and is wrapped again as version 3 (fresh salt) when a helper
answers.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from chaincode.protocol.encoding import b64, unb64
from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL
from gateway.core.errors import ApiError, Locked
from gateway.core.peer_auth import PeerSigner
from gateway.holder import oprf, vault, vault_v3
from gateway.holder.errors import UnlockFailed
from gateway.holder.vault import KdfParams

from .ledger import SERVICE_USER
from .password_oprf import OprfLocked, own_output, password_oprf_service
from .peer_requests import peer_requests

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.password_hardening")

# The consortium's listing order; each org's helper is the next one, cyclically.
RING = (HOSPITAL, SCHOOL, PHARMACY)
OPRF_PATH = "/api/v1/oprf/evaluations"
HELPER_TIMEOUT_S = 15.0


class HelperUnavailable(ApiError):
    """No helper org answered (none configured, all down or refusing)."""

    status, code = 503, "password_helper_unavailable"


class HelperLocked(Locked):
    """Every helper org has locked this passport's password checks for now."""

    code = "password_helper_locked"


def helpers_for(enrolling_org: str, count: int = 1) -> list[str]:
    """The next `count` orgs after `enrolling_org` in `RING`."""
    at = RING.index(enrolling_org)
    return [RING[(at + i) % len(RING)] for i in range(1, count + 1)]


@dataclass(frozen=True)
class HelperAnswer:
    helper: str
    shares: vault_v3.Shares
    evaluation_id: str


class PasswordHardening:
    def __init__(self, state: AppState) -> None:
        self.state = state

    # --- which helpers -------------------------------------------------------------------
    def helpers(self, enrolling_org: str) -> list[str]:
        """The helpers this gateway can reach for `enrolling_org`'s vaults, in order."""
        wanted = helpers_for(enrolling_org, self.state.settings.vault_helpers)
        if self.state.settings.org is None:
            return wanted
        return [h for h in wanted if h in self.state.settings.org_gateways]

    def _signer_of(self) -> PeerSigner:
        signer = peer_requests(self.state).signer()
        if signer is None:
            raise HelperUnavailable(f"no service identity {SERVICE_USER!r} of "
                                    f"{self.state.settings.org} in the connection profile")
        return signer

    # --- one helper's answer -------------------------------------------------------------
    async def answer(self, enrolling_org: str, helper: str, passport_id: str, salt: bytes,
                     data: bytes) -> HelperAnswer:
        own = own_output(self.state.keys, enrolling_org, passport_id, salt, data)
        blinded = oprf.blind(data)
        if self.state.settings.org is None:
            evaluation = password_oprf_service(self.state).evaluate(
                enrolling_org, helper, passport_id, salt, blinded.element)
            element, evaluation_id = evaluation.element, evaluation.evaluation_id
        else:
            body = await self._post(helper, OPRF_PATH, {
                "passport_id": passport_id, "salt": b64(salt),
                "blinded_element": b64(blinded.element)})
            try:
                element = unb64(body["evaluated_element"], "evaluated_element", ValueError)
                evaluation_id = str(body["evaluation_id"])
            except (KeyError, TypeError, ValueError):
                raise HelperUnavailable(f"{helper}'s gateway answered without an element") \
                    from None
        try:
            helper_output = oprf.finalize(data, blinded, element)
        except oprf.OprfError:
            raise HelperUnavailable(f"{helper}'s gateway answered an invalid element") from None
        return HelperAnswer(helper, vault_v3.Shares(own, helper_output), evaluation_id)

    async def confirm(self, enrolling_org: str, answer: HelperAnswer, token: bytes) -> None:
        """Best effort: a confirmation that does not arrive leaves one count at the helper."""
        try:
            if self.state.settings.org is None:
                password_oprf_service(self.state).confirm(enrolling_org, answer.helper,
                                                          answer.evaluation_id, token)
            else:
                await self._post(answer.helper, f"{OPRF_PATH}/{answer.evaluation_id}/"
                                 "confirmation", {"token": b64(token)})
        except ApiError as exc:
            log.warning("password OPRF confirmation at %s refused: %s", answer.helper, exc.code)

    async def _post(self, helper: str, path: str, payload: dict[str, Any]) -> Any:
        base = self.state.settings.org_gateways.get(helper)
        if base is None:
            raise HelperUnavailable(f"no address of {helper}'s gateway (org_gateways)")
        if self.state.settings.mode == "production" and not base.startswith("https://"):
            raise HelperUnavailable(f"{helper}'s gateway address must be https in production")
        body = json.dumps(payload, separators=(",", ":")).encode()
        url = base + path
        headers = {"Content-Type": "application/json",
                   **self._signer_of().headers("POST", httpx.URL(url).path, body, helper)}
        try:
            async with peer_requests(self.state).client(helper, HELPER_TIMEOUT_S) as http:
                response = await http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            log.warning("password OPRF call to %s failed: %s", helper, type(exc).__name__)
            raise HelperUnavailable(f"{helper}'s gateway did not answer") from None
        if response.status_code == 204:
            return None
        try:
            data = response.json()
        except ValueError:
            raise HelperUnavailable(f"{helper}'s gateway answered {response.status_code} "
                                    "without JSON") from None
        if response.status_code == 423:
            raise OprfLocked(f"{helper} has locked this passport's password checks for now")
        if response.status_code >= 400:
            code = data.get("error", {}).get("code") if isinstance(data, dict) else None
            log.warning("password OPRF call to %s refused: %s %s", helper,
                        response.status_code, code)
            raise HelperUnavailable(f"{helper}'s gateway refused ({code})")
        return data

    # --- wrap and unwrap -----------------------------------------------------------------
    async def wrap(self, master: bytes, password: str, face_key: bytes, passport_id: str,
                   enrolling_org: str, kdf: KdfParams) -> str:
        """The stored form of a new vault: version 3 under every helper that answers;
        version 2 where no helper is reachable and the mode allows it."""
        helpers = self.helpers(enrolling_org)
        if not helpers:
            if self.state.settings.mode == "production":
                raise HelperUnavailable(
                    "no helper org's gateway is configured (org_gateways): a vault cannot be "
                    "hardened")
            log.warning("no helper org reachable: writing a version-2 vault (development)")
            return (await anyio.to_thread.run_sync(
                lambda: vault.wrap(master, password, face_key, passport_id, kdf=kdf))).to_json()
        pw = vault.check_password(password)
        salt = vault_v3.new_salt()
        data = vault_v3.oprf_input(pw, passport_id)
        answers: list[HelperAnswer] = []
        for helper in helpers:
            try:
                answers.append(await self.answer(enrolling_org, helper, passport_id, salt,
                                                 data))
            except (HelperUnavailable, OprfLocked) as exc:
                log.warning("helper %s did not answer at wrap: %s", helper, exc.code)
        if not answers:
            raise HelperUnavailable("no helper org answered: the vault cannot be hardened")
        pw_key = await anyio.to_thread.run_sync(vault_v3.password_key, pw, salt, kdf)
        blob, tokens = vault_v3.wrap(
            master, pw_key, face_key, passport_id, enrolling_org=enrolling_org, salt=salt,
            kdf=kdf, shares={a.helper: a.shares for a in answers})
        for a in answers:  # registers this salt's confirm token with each helper
            await self.confirm(enrolling_org, a, tokens[a.helper])
        return blob.to_json()

    async def unwrap(self, stored: str, password: str, face_key: bytes, passport_id: str,
                     enrolling_org: str, *, face_matched: bool = True) -> Opened | None:
        """The opened vault, or None for a wrong factor. Helper refusals raise
        `HelperLocked` / `HelperUnavailable`: evidence of nothing about the factors.

        Nothing here depends on whether the password was right beyond the unwrap itself:
        the confirmation and an older vault's upgrade wait for `settle`, which the caller
        runs only once the whole unlock (the face too) succeeded, so the time a failure takes
        does not say which factor was wrong."""
        if vault_v3.blob_version(stored) != vault_v3.VERSION:
            def legacy() -> bytes | None:
                try:
                    return vault.unwrap(stored, password, face_key, passport_id)
                except UnlockFailed:
                    return None

            master = await anyio.to_thread.run_sync(legacy)
            if master is None:
                return None
            return Opened(master, None, vault.WrappedSecret.from_json(stored).kdf_params)
        blob = vault_v3.HardenedSecret.from_json(stored)
        try:
            pw = vault.check_password(password)
        except vault.WeakPassword:
            return None
        if not face_matched:
            # A face that did not match never reaches the helper: junk frames at any desk
            # cannot spend the passport's helper budget (which only the holder's own face
            # can then reach). The password's Argon2id still runs, so the answer takes
            # nearly as long; it lacks the helper's round trip, which tells the desk only
            # what the person standing there knows: whether they are the holder.
            await anyio.to_thread.run_sync(vault_v3.password_key, pw, blob.salt,
                                           blob.kdf_params)
            return None
        data = vault_v3.oprf_input(pw, passport_id)
        answer: HelperAnswer | None = None
        locked = False
        for helper in blob.helpers:
            try:
                answer = await self.answer(enrolling_org, helper, passport_id, blob.salt, data)
                break
            except OprfLocked:
                locked = True
            except HelperUnavailable as exc:
                log.warning("helper %s did not answer at unlock: %s", helper, exc.code)
        if answer is None:
            if locked:
                raise HelperLocked("this passport's password checks are locked for now; try "
                                   "again later")
            raise HelperUnavailable("no helper org answered; try again later")
        pw_key = await anyio.to_thread.run_sync(vault_v3.password_key, pw, blob.salt,
                                                blob.kdf_params)
        try:
            master, token = vault_v3.unwrap(blob, pw_key, face_key, passport_id,
                                            answer.helper, answer.shares)
        except UnlockFailed:
            return None
        return Opened(master, (answer, token), None)

    async def settle(self, opened: Opened, password: str, face_key: bytes, passport_id: str,
                     enrolling_org: str) -> str | None:
        """After a successful unlock: show the helper the confirm token (version 3), or
        wrap an older vault again as version 3 (returned, to be stored; None when no helper
        answers, and the vault keeps its version)."""
        if opened.confirmation is not None:
            answer, token = opened.confirmation
            await self.confirm(enrolling_org, answer, token)
            return None
        assert opened.legacy_kdf is not None
        try:
            upgraded = await self.wrap(opened.master, password, face_key, passport_id,
                                       enrolling_org, opened.legacy_kdf)
        except (HelperUnavailable, OprfLocked) as exc:
            log.warning("vault kept at its version (%s)", exc.code)
            return None
        return upgraded if vault_v3.blob_version(upgraded) == vault_v3.VERSION else None


@dataclass(frozen=True)
class Opened:
    """An unwrapped vault and what `settle` does once the unlock succeeded."""

    master: bytes = field(repr=False)
    confirmation: tuple[HelperAnswer, bytes] | None = field(repr=False)
    legacy_kdf: KdfParams | None  # set for a version-1 or -2 vault (upgrade to 3)


def password_hardening(state: AppState) -> PasswordHardening:
    return state.service("password_hardening", PasswordHardening)
