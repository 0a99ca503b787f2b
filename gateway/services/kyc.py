"""The gateway as each member org's anoncreds KYC issuer (docs/chaincode-transactions.md,
"KYC issuers").

On first need for an org, `ensure(org)` creates the org's `KycIssuer` (CL key generation with
safe primes: seconds, so in a worker thread, once), stores its private parts sealed under the
key provider's `kyc-issuer` KEK (gateway/core/keys: in the PKCS#11 token in production), registers
its public documents on the ledger (`Account:RegisterKycIssuer`) and publishes its first revocation
registry (`Account:PublishKycRevocation`). Tails files live under `<data_dir>/kyc-tails/<org>`.

Who signs the registration: `Account:RegisterKycIssuer` and `PublishKycRevocation` need the
`admin` role, so they are made as the org's `admin` Fabric identity (the devnet kit and
`mip identity add --role admin` mint one per org), or as the staff member who triggered the
need when that member is an admin of the org. A registrar's enrolment thus triggers the
admin's registration: the ledger's audit names the org's admin identity for it.

Registries roll over: each holds `Settings.kyc_registry_size` credentials. When the current
one is full, issuing opens the org's next registry of the same credential definition
(gateway/kyc/issuer.py) and publishes it with `Account:PublishKycRevocation` (the same
transaction, under the same majority endorsement, as the first) before the credential is
handed over; a registry whose publication failed is published at the next `ensure`. Each
credential's registry is recorded with its index (`kyc_credentials.rev_reg_id`), so revoking
updates and publishes the status list of the registry it was issued from; the contract
verifies a presentation against the registry it names, so credentials of every registry
keep opening accounts.

Issuing: `issue(org, wallet, level, passport_id)` runs the issuance protocol between the
org's issuer and the holder's wallet (`KycHolder.obtain`) and records the credential's
revocation index against the passport (the issuer needs it to revoke), then saves the
issuer (its next index moved).

An org's gateway (`Settings.org`) creates, loads and issues as its own org's issuer only
(gateway/core/org_scope.py): another org's issuer private key is never made or opened there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

import anyio
from anoncreds import AnoncredsError  # type: ignore[import-untyped]

from gateway.core.errors import ApiError
from gateway.core.org_scope import require_own_org
from gateway.core.security import StaffMember
from gateway.fabric import ChaincodeError, Contract
from gateway.kyc.issuer import KycIssuer
from gateway.kyc.state import issuer_from_state, issuer_state
from gateway.kyc.wallet import KycHolder

from .holder_sealing import KYC_ISSUER_LABEL, PurposeKey, open_sealed, seal

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.kyc")

SCHEMA = """
CREATE TABLE IF NOT EXISTS kyc_issuers (
    org TEXT PRIMARY KEY,
    cred_def_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    registered INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS kyc_credentials (
    passport_id TEXT NOT NULL,
    org TEXT NOT NULL,
    rev_index INTEGER,
    rev_reg_id TEXT,
    kyc_level INTEGER NOT NULL,
    issued REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS kyc_credentials_passport ON kyc_credentials(passport_id);
"""

ADMIN_USER = "admin"


class KycService:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)
        columns = {row["name"] for row in self.db.query("PRAGMA table_info(kyc_credentials)")}
        if "rev_reg_id" not in columns:
            # A database from before registries rolled over: its credentials are all in the
            # issuer's first registry (NULL here, read as that one by `revoke`).
            with self.db.transaction() as conn:
                conn.execute("ALTER TABLE kyc_credentials ADD COLUMN rev_reg_id TEXT")
        self._key = PurposeKey(KYC_ISSUER_LABEL, state.keys.kek("kyc-issuer"))
        self._issuers: dict[str, KycIssuer] = {}
        self._org_locks: dict[str, asyncio.Lock] = {}
        self._issue_lock = threading.Lock()  # issuing moves the issuer's next index

    # --- persistence ---------------------------------------------------------------------
    def _save(self, issuer: KycIssuer, *, registered: bool | None = None) -> None:
        with self.db.transaction() as conn:
            self._save_in(conn, issuer, registered=registered)

    def _save_in(self, conn: sqlite3.Connection, issuer: KycIssuer, *,
                 registered: bool | None = None) -> None:
        """`_save` inside the caller's transaction (with what must commit together)."""
        blob = seal(self._key, json.dumps(issuer_state(issuer)).encode(), issuer.org.encode())
        conn.execute(
            "INSERT INTO kyc_issuers (org, cred_def_id, sealed, registered, updated) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (org) DO UPDATE SET "
            "sealed = excluded.sealed, updated = excluded.updated",
            (issuer.org, issuer.cred_def_id, blob, int(bool(registered)), time.time()))
        if registered is not None:
            conn.execute("UPDATE kyc_issuers SET registered = ? WHERE org = ?",
                         (int(registered), issuer.org))

    def _load(self, org: str) -> tuple[KycIssuer, bool] | None:
        require_own_org(self.state.settings, org, "open the KYC issuer")
        row = self.db.query_one("SELECT sealed, registered FROM kyc_issuers WHERE org = ?",
                                (org,))
        if row is None:
            return None
        raw = open_sealed(self._key, bytes(row["sealed"]), org.encode())
        issuer = issuer_from_state(json.loads(raw))
        issuer.registry_size = self.state.settings.kyc_registry_size  # of registries to come
        return issuer, bool(row["registered"])

    def loaded(self, org: str) -> KycIssuer | None:
        """The org's issuer if it exists (from memory or the database), without creating it."""
        issuer = self._issuers.get(org)
        if issuer is None:
            found = self._load(org)
            if found is not None:
                issuer = self._issuers.setdefault(org, found[0])
        return issuer

    def issuers_by_cred_def(self) -> dict[str, KycIssuer]:
        """Every issuer this gateway holds, by credential definition id (to open wallets)."""
        own = self.state.settings.org
        for row in self.db.query("SELECT org FROM kyc_issuers"):
            if own is None or row["org"] == own:
                self.loaded(str(row["org"]))
        return {issuer.cred_def_id: issuer for issuer in self._issuers.values()}

    # --- creation and registration -------------------------------------------------------
    def _admin_contract(self, org: str, member: StaffMember | None) -> Contract:
        if member is not None and member.org == org and member.role == "admin":
            return self.state.ledger.for_staff(member)
        return self.state.ledger.contract(org, ADMIN_USER)

    async def ensure(self, org: str, member: StaffMember | None = None) -> KycIssuer:
        """The org's issuer, created, stored, registered and published on first need."""
        require_own_org(self.state.settings, org, "create or use the KYC issuer")
        lock = self._org_locks.setdefault(org, asyncio.Lock())
        async with lock:
            found = self._load(org) if org not in self._issuers else None
            if found is not None:
                self._issuers[org] = found[0]
                registered = found[1]
            elif org in self._issuers:
                return self._issuers[org]
            else:
                tails = self.state.settings.data_dir / "kyc-tails" / org
                tails.mkdir(parents=True, exist_ok=True)
                # A fresh tag per creation: a ledger reused across gateway data dirs keeps
                # earlier issuers, and a definition id registers once.
                tag = f"kyc{secrets.token_hex(4)}"
                started = time.perf_counter()
                issuer = await anyio.to_thread.run_sync(
                    lambda: KycIssuer(org, tag,
                                      max_credentials=self.state.settings.kyc_registry_size,
                                      tails_dir=str(tails)))
                log.info("KYC issuer created for %s in %.1f s", org,
                         time.perf_counter() - started)
                self._save(issuer, registered=False)
                self._issuers[org] = issuer
                registered = False
            issuer = self._issuers[org]
            if not registered:
                await self._register(issuer, member)
            elif issuer.unpublished():
                await self._publish_new_registries(issuer, member)
            return issuer

    async def _register(self, issuer: KycIssuer, member: StaffMember | None) -> None:
        contract = self._admin_contract(issuer.org, member)
        listed = json.loads(await contract.evaluate("Account:ListKycIssuers"))
        if issuer.cred_def_id not in {item.get("cred_def_id") for item in listed}:
            await contract.submit("Account:RegisterKycIssuer", list(issuer.public_documents()))
        if issuer.revocable:
            for registry in issuer.registries.values():
                await contract.submit("Account:PublishKycRevocation",
                                      list(issuer.revocation_documents(registry.rev_reg_id)))
                issuer.mark_published(registry.rev_reg_id)
        self._save(issuer, registered=True)
        log.info("KYC issuer of %s registered on the ledger", issuer.org)

    async def _publish_new_registries(self, issuer: KycIssuer,
                                      member: StaffMember | None) -> None:
        """Publish the registries the issuer opened since (rolled over to when one filled)."""
        contract = self._admin_contract(issuer.org, member)
        for registry in issuer.unpublished():
            listed = await self._published(contract, registry.rev_reg_id)
            if not listed:
                await contract.submit("Account:PublishKycRevocation",
                                      list(issuer.revocation_documents(registry.rev_reg_id)))
            with self._issue_lock:
                issuer.mark_published(registry.rev_reg_id)
                self._save(issuer)
            log.info("KYC revocation registry %s published", registry.rev_reg_id)

    @staticmethod
    async def _published(contract: Contract, rev_reg_id: str) -> bool:
        """Whether the ledger has the registry already (a publication whose answer was lost)."""
        try:
            await contract.evaluate("Account:GetKycRevocation", [rev_reg_id])
        except ChaincodeError as exc:
            if exc.chaincode_message.startswith("not_found"):
                return False
            raise
        return True

    # --- issuing and revoking ------------------------------------------------------------
    async def issue(self, org: str, wallet: KycHolder, kyc_level: int, passport_id: str,
                    member: StaffMember | None = None) -> int | None:
        """Issue a level-`kyc_level` credential of `org` into `wallet`; returns its index
        (in the registry `wallet.rev_reg_id(...)` names). A full registry rolls over: the new
        one is published before this returns."""
        issuer = await self.ensure(org, member)

        def run() -> int | None:
            with self._issue_lock:
                index = wallet.obtain(issuer, kyc_level=kyc_level)
                self._save(issuer)
                with self.db.transaction() as conn:
                    conn.execute(
                        "INSERT INTO kyc_credentials (passport_id, org, rev_index, rev_reg_id, "
                        "kyc_level, issued) VALUES (?, ?, ?, ?, ?, ?)",
                        (passport_id, org, index, wallet.rev_reg_id(issuer.cred_def_id),
                         kyc_level, time.time()))
                return index

        try:
            index = await anyio.to_thread.run_sync(run)
        except AnoncredsError as exc:
            # E.g. a registry that could not be opened (its tails file not written): the
            # enrolment or upgrade fails with a code the desk can act on, not a 500.
            log.error("KYC issuance at %s failed: %s", org, exc.code.name)
            raise ApiError("the org's KYC issuer could not issue a credential; try again",
                           code="kyc_issuance_failed", status=503) from None
        if issuer.unpublished():
            async with self._org_locks.setdefault(org, asyncio.Lock()):
                await self._publish_new_registries(issuer, member)
        return index

    def forget_credentials(self, passport_id: str) -> None:
        """Drop the index records of a passport whose enrolment did not complete."""
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM kyc_credentials WHERE passport_id = ?", (passport_id,))

    async def revoke(self, org: str, passport_id: str, member: StaffMember | None = None,
                     *, below_level: int | None = None) -> int:
        """Revoke the passport's live credentials of `org` (those below `below_level` only,
        if given) and publish the new status list. Returns how many were revoked."""
        issuer = await self.ensure(org, member)
        rows = self.db.query(
            "SELECT rowid, rev_index, rev_reg_id, kyc_level FROM kyc_credentials WHERE "
            "passport_id = ? AND org = ? AND revoked = 0 AND rev_index IS NOT NULL",
            (passport_id, org))
        rows = [r for r in rows if below_level is None or int(r["kyc_level"]) < below_level]
        if not rows:
            return 0
        first = next(iter(issuer.registries))  # where credentials recorded before rollover are
        touched: list[str] = []
        with self._issue_lock:
            for row in rows:
                registry = str(row["rev_reg_id"] or first)
                issuer.revoke(int(row["rev_index"]), registry)
                if registry not in touched:
                    touched.append(registry)
            # The issuer's new status lists and the rows marked revoked commit together: a
            # crash leaves both before or both after (never an index revoked in the list
            # while its row says live, which a retry would revoke twice).
            with self.db.transaction() as conn:
                self._save_in(conn, issuer)
                conn.executemany("UPDATE kyc_credentials SET revoked = 1 WHERE rowid = ?",
                                 [(int(r["rowid"]),) for r in rows])
        contract = self._admin_contract(org, member)
        for registry in touched:
            await contract.submit("Account:PublishKycRevocation",
                                  list(issuer.revocation_documents(registry)))
        return len(rows)

    async def publish_revocations(self, org: str, passport_id: str,
                                  member: StaffMember | None = None) -> int:
        """Publish every status list that revoked a credential of the passport and is newer
        here than on the ledger (a publication a crash or a failure cut off after the rows
        were marked revoked); returns how many were published now."""
        rows = self.db.query(
            "SELECT DISTINCT rev_reg_id FROM kyc_credentials WHERE passport_id = ? AND org = ? "
            "AND revoked = 1 AND rev_index IS NOT NULL", (passport_id, org))
        if not rows:
            return 0
        issuer = await self.ensure(org, member)
        first = next(iter(issuer.registries))
        contract = self._admin_contract(org, member)
        published = 0
        for registry in dict.fromkeys(str(r["rev_reg_id"] or first) for r in rows):
            local = int(issuer.registry(registry).status_list.to_dict()["timestamp"])
            if await self._published_at(contract, registry) >= local:
                continue
            try:
                await contract.submit("Account:PublishKycRevocation",
                                      list(issuer.revocation_documents(registry)))
            except ChaincodeError as exc:
                # A publication ordered late (after the read above) made this list current.
                if "must be newer" not in exc.chaincode_message:
                    raise
            published += 1
            log.info("KYC status list of %s published again", registry)
        return published

    @staticmethod
    async def _published_at(contract: Contract, rev_reg_id: str) -> int:
        """The timestamp of the registry's status list on the ledger (0: not published)."""
        try:
            raw = await contract.evaluate("Account:GetKycRevocation", [rev_reg_id])
        except ChaincodeError as exc:
            if exc.chaincode_message.startswith("not_found"):
                return 0
            raise
        status_list = json.loads(raw).get("status_list")
        return int(status_list.get("timestamp", 0)) if isinstance(status_list, dict) else 0


def kyc_service(state: AppState) -> KycService:
    return state.service("kyc", KycService)
