"""Authorization matrix: every transaction of the MIP chaincode against every (org, role).

Each row names the cells allowed to run a transaction. For every row, each of the 27 cells
(3 orgs x 8 roles + a role-less user) calls it on devnet:

- a denied cell must get `access_denied` from the chaincode (the args are otherwise valid, so
  no other check can be what refuses it), and
- an allowed cell must succeed, with fresh arguments of its own.

`test_matrix_covers_every_transaction` ties the rows to GetMetadata, so a transaction added
later without a row fails the suite.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from anoncreds import (  # type: ignore[import-untyped]
    CredentialDefinition,
    RevocationRegistryDefinition,
    RevocationStatusList,
)
from credential_kit import (
    CounterGateway,
    Issued,
    grant,
    grant_body,
    issue,
    issue_args,
    sample_content,
)
from identity_kit import admit, client_id
from mip_testkit import (
    ORGS,
    ROLES,
    Account,
    Holder,
    HolderKey,
    MipClients,
    face_commitment,
    new_holder,
    new_id,
    open_account,
    open_request,
    register_body,
    register_passport,
    register_provisional_passport,
    request_arg,
)

from chaincode.protocol.canonical import canonical_json
from chaincode.protocol.kyc import cred_def_id, issuer_id, rev_reg_id, schema_id
from gateway.fabric import ChaincodeError
from gateway.kyc.issuer import KycIssuer

HOSPITAL, SCHOOL, PHARMACY = ORGS
Cell = tuple[str, str | None]
CELLS: list[Cell] = [(org, role) for org in ORGS for role in (*ROLES, None)]
ANYONE = frozenset(CELLS)


def cells(roles: set[str], orgs: tuple[str, ...] = ORGS) -> frozenset[Cell]:
    return frozenset((org, role) for org in orgs for role in roles)


CARRIERS = cells({"gateway", "registrar"})  # who may carry a holder-signed request


@dataclass
class Call:
    tx: str
    args: list[str]
    evaluate: bool = False
    transient: dict[str, bytes] | None = None
    endorsing_orgs: list[str] | None = None


Maker = Callable[[Cell | None], Awaitable[Call]]


@dataclass
class Env:
    """Shared material of one row, created on first use."""

    mip: MipClients
    kyc_issuers: dict[str, KycIssuer]
    _holder: Holder | None = None
    _accounts: dict[str, Account] = field(default_factory=dict)

    async def holder(self) -> Holder:
        if self._holder is None:
            self._holder = await new_holder(self.mip, self.kyc_issuers)
        return self._holder

    async def account(self, institution: str = HOSPITAL) -> Account:
        if institution not in self._accounts:
            self._accounts[institution] = await open_account(
                self.mip, await self.holder(), institution)
        return self._accounts[institution]

    async def prescription(self) -> Issued:
        return await issue(self.mip, await self.account(HOSPITAL), "prescription")


Row = Callable[[Env], Awaitable[tuple[frozenset[Cell], Maker]]]
ROWS: dict[str, Row] = {}


def row(label: str) -> Callable[[Row], Row]:
    def register(fn: Row) -> Row:
        ROWS[label] = fn
        return fn
    return register


def constant(call: Call) -> Maker:
    async def make(_cell: Cell | None) -> Call:
        return call
    return make


# --- Config ---------------------------------------------------------------------------------


@row("Config:Set")
async def _config_set(env: Env) -> tuple[frozenset[Cell], Maker]:
    reader = await env.mip.client(HOSPITAL, None)
    current = json.loads(await reader.evaluate("Config:Get", ["vouch_k"]))["value"]
    # Writing the current value keeps other tests' threshold; once set, every org endorses.
    return cells({"admin"}), constant(Call("Config:Set", ["vouch_k", str(current)],
                                           endorsing_orgs=list(ORGS)))


@row("Config:Get")
async def _config_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    return ANYONE, constant(Call("Config:Get", ["vouch_k"], evaluate=True))


# --- Passport -------------------------------------------------------------------------------


@row("Passport:Register")
async def _passport_register(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        request = HolderKey.generate().sign_request("passport.register", register_body())
        return Call("Passport:Register", [request_arg(request)])
    return cells({"registrar"}), make


@row("Passport:Get")
async def _passport_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    holder = await env.holder()
    return ANYONE, constant(Call("Passport:Get", [holder.passport["id"]], evaluate=True))


@row("Passport:Vouch")
async def _passport_vouch(env: Env) -> tuple[frozenset[Cell], Maker]:
    _, vouchee = await register_passport(env.mip, HOSPITAL, level=2)

    async def make(_cell: Cell | None) -> Call:
        voucher, _ = await register_passport(env.mip, SCHOOL, level=2)
        request = voucher.sign_request("passport.vouch", {"vouchee": vouchee["id"]})
        return Call("Passport:Vouch", [request_arg(request)])
    return CARRIERS, make


def _status_row(tx: str, extra: list[str], suspend_first: bool = False) -> Row:
    async def build(env: Env) -> tuple[frozenset[Cell], Maker]:
        async def make(_cell: Cell | None) -> Call:
            _, record = await register_passport(env.mip, HOSPITAL, level=1)
            if suspend_first:
                registrar = await env.mip.client(HOSPITAL, "registrar")
                await registrar.submit("Passport:Suspend", [record["id"], "matrix"])
            return Call(tx, [record["id"], "matrix reason", *extra])
        # The enrolling org's registrar only: another org's has no say in its passports.
        return frozenset({(HOSPITAL, "registrar")}), make
    return build


row("Passport:Suspend")(_status_row("Passport:Suspend", []))
row("Passport:Reinstate")(_status_row("Passport:Reinstate", [], suspend_first=True))
row("Passport:Revoke")(_status_row("Passport:Revoke", ["false"]))


@row("Passport:Revoke[fraud]")
async def _passport_revoke_fraud(env: Env) -> tuple[frozenset[Cell], Maker]:
    # Any org's registrar may propose a fraudulent revocation (it takes a majority to act).
    async def make(_cell: Cell | None) -> Call:
        _, record = await register_passport(env.mip, HOSPITAL, level=1)
        return Call("Passport:Revoke", [record["id"], "matrix fraud", "true"],
                    endorsing_orgs=list(ORGS))
    return cells({"registrar"}), make


@row("Passport:Screen")
async def _passport_screen(env: Env) -> tuple[frozenset[Cell], Maker]:
    # Any org's registrar records its org's screening outcome (a majority decides).
    async def make(cell: Cell | None) -> Call:
        if cell is None:  # refused before the passport is read
            _, record = await register_passport(env.mip, HOSPITAL, level=1)
        else:
            _, record = await register_provisional_passport(env.mip, HOSPITAL)
        return Call("Passport:Screen", [record["id"], "clear", "matrix screening"])
    return cells({"registrar"}), make


@row("Passport:RotateKey")
async def _passport_rotate(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        guardians = [HolderKey.generate(), HolderKey.generate()]
        _, record = await register_passport(env.mip, HOSPITAL, guardians=guardians, threshold=2)
        new_key = HolderKey.generate().public
        body = {"passport_id": record["id"], "new_public_key": new_key}
        approvals = [g.sign_request("passport.rotate", body) for g in guardians]
        return Call("Passport:RotateKey", [record["id"], new_key, json.dumps(approvals)])
    return CARRIERS, make


@row("Passport:SetFaceCommitment")
async def _passport_set_face(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        key, record = await register_passport(env.mip, HOSPITAL, level=2)
        body = {"passport_id": record["id"], "face_commitment": face_commitment(),
                "previous": record["face_commitment"]}
        request = key.sign_request("passport.face", body)
        return Call("Passport:SetFaceCommitment", [record["id"], request_arg(request)])
    # Carriers of the enrolling org only: its gateway holds the passport's face reference.
    return frozenset({(HOSPITAL, "gateway"), (HOSPITAL, "registrar")}), make


@row("Passport:MoveKey")
async def _passport_move(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        old, record = await register_passport(env.mip, HOSPITAL)
        device = HolderKey.generate()
        body = {"passport_id": record["id"], "new_public_key": device.public}
        return Call("Passport:MoveKey", [
            record["id"], request_arg(old.sign_request("passport.move", body)),
            request_arg(device.sign_request("passport.move", body))])
    return CARRIERS, make


# --- Account --------------------------------------------------------------------------------


def _issuer_documents(issuer: KycIssuer, org: str) -> tuple[str, str]:
    """The issuer's public documents re-labelled for `org` under a fresh tag.

    Key material is shared with `issuer`: fine for an authorization test, and it spares a
    few seconds of CL key generation per allowed cell.
    """
    schema_json, cred_def_json = issuer.public_documents()
    schema, cred_def = json.loads(schema_json), json.loads(cred_def_json)
    schema["issuerId"] = cred_def["issuerId"] = issuer_id(org)
    cred_def["schemaId"] = schema_id(org)
    cred_def["tag"] = "m" + secrets.token_hex(6)
    return json.dumps(schema), json.dumps(cred_def)


@row("Account:RegisterKycIssuer")
async def _account_register_issuer(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(cell: Cell | None) -> Call:
        org = cell[0] if cell is not None else HOSPITAL
        return Call("Account:RegisterKycIssuer",
                    list(_issuer_documents(env.kyc_issuers[HOSPITAL], org)))
    return cells({"admin"}), make


@row("Account:PublishKycRevocation")
async def _account_publish_revocation(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(cell: Cell | None) -> Call:
        org = cell[0] if cell is not None else HOSPITAL
        schema_json, cred_def_json = _issuer_documents(env.kyc_issuers[HOSPITAL], org)
        admin = await env.mip.client(org, "admin")
        await admin.submit("Account:RegisterKycIssuer", [schema_json, cred_def_json])
        tag = json.loads(cred_def_json)["tag"]
        cred_def = CredentialDefinition.load(cred_def_json)
        registry, registry_private = RevocationRegistryDefinition.create(
            cred_def_id(org, tag), cred_def, issuer_id(org), "r1", "CL_ACCUM", 4,
            tails_dir_path=tempfile.mkdtemp(prefix="mip-matrix-tails-"))
        status = RevocationStatusList.create(cred_def, rev_reg_id(org, tag, "r1"), registry,
                                             registry_private, issuer_id(org), True,
                                             int(time.time()))
        return Call("Account:PublishKycRevocation", [registry.to_json(), status.to_json()])
    return cells({"admin"}), make


@row("Account:GetKycRevocation")
async def _account_get_revocation(env: Env) -> tuple[frozenset[Cell], Maker]:
    holder = await env.holder()
    assert holder.kyc_issuer is not None and holder.kyc_issuer.rev_reg_id is not None
    return ANYONE, constant(Call("Account:GetKycRevocation", [holder.kyc_issuer.rev_reg_id],
                                 evaluate=True))


@row("Account:Reprove")
async def _account_reprove(env: Env) -> tuple[frozenset[Cell], Maker]:
    holder = await env.holder()

    async def make(_cell: Cell | None) -> Call:
        account = await open_account(env.mip, holder, SCHOOL)
        presentation = holder.wallet.present(account.key.public_raw, account.pseudonym, 2,
                                             reprove=True)
        request = account.sign("account.reprove", {"pseudonym": account.pseudonym})
        return Call("Account:Reprove", [account.pseudonym, request_arg(request),
                                        json.dumps(presentation)])
    return CARRIERS, make


@row("Account:ListKycIssuers")
async def _account_list_issuers(env: Env) -> tuple[frozenset[Cell], Maker]:
    return ANYONE, constant(Call("Account:ListKycIssuers", [], evaluate=True))


@row("Account:Open")
async def _account_open(env: Env) -> tuple[frozenset[Cell], Maker]:
    holder = await env.holder()

    async def make(_cell: Cell | None) -> Call:
        _, _, request, presentation = open_request(holder, SCHOOL)
        return Call("Account:Open", [request, presentation])
    return CARRIERS, make


@row("Account:Get")
async def _account_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account()
    return ANYONE, constant(Call("Account:Get", [account.pseudonym], evaluate=True))


@row("Account:FindByKey")
async def _account_find_by_key(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account()
    request = account.sign("account.find", {})
    return CARRIERS, constant(Call("Account:FindByKey", [request_arg(request)], evaluate=True))


@row("Account:Close")
async def _account_close(env: Env) -> tuple[frozenset[Cell], Maker]:
    holder = await env.holder()

    async def make(_cell: Cell | None) -> Call:
        account = await open_account(env.mip, holder, PHARMACY)
        request = account.sign("account.close", {"pseudonym": account.pseudonym})
        return Call("Account:Close", [account.pseudonym, request_arg(request)])
    return CARRIERS, make


@row("Account:RotateKey")
async def _account_rotate(env: Env) -> tuple[frozenset[Cell], Maker]:
    holder = await env.holder()

    async def make(_cell: Cell | None) -> Call:
        account = await open_account(env.mip, holder, SCHOOL)
        device = HolderKey.generate()
        body = {"pseudonym": account.pseudonym, "new_public_key": device.public}
        return Call("Account:RotateKey", [
            account.pseudonym, request_arg(account.sign("account.rotate", body)),
            request_arg(device.sign_request("account.rotate", body))])
    return CARRIERS, make


# --- Credential -----------------------------------------------------------------------------


def _issue_row(cred_type: str, org: str, role: str) -> Row:
    async def build(env: Env) -> tuple[frozenset[Cell], Maker]:
        account = await env.account(org)

        async def make(_cell: Cell | None) -> Call:
            content = sample_content(cred_type)
            return Call("Credential:Issue", issue_args(
                new_id(), cred_type, account.pseudonym, content, canonical_json(content),
                secrets.token_bytes(16)))
        return frozenset({(org, role)}), make
    return build


@row("Credential:Store")
async def _credential_store(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        issued = await env.prescription()  # issued and stored: storing again is idempotent
        return Call("Credential:Store", [issued.credential_id], transient=issued.transient,
                    endorsing_orgs=[HOSPITAL])
    return frozenset({(HOSPITAL, "doctor")}), make


@row("Credential:Purge")
async def _credential_purge(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account(HOSPITAL)

    async def make(_cell: Cell | None) -> Call:
        issued = await env.prescription()
        request = account.sign("credential.erase", {"credential_id": issued.credential_id})
        gateway = await env.mip.client(HOSPITAL, "gateway")
        await gateway.submit("Credential:Erase", [request_arg(request)])
        return Call("Credential:Purge", [issued.credential_id], endorsing_orgs=[HOSPITAL])
    # The issuer org's carriers and issuing role (a private write needs membership).
    return cells({"gateway", "registrar", "doctor"}, (HOSPITAL,)), make


row("Credential:Issue[prescription]")(_issue_row("prescription", HOSPITAL, "doctor"))
row("Credential:Issue[record]")(_issue_row("record", HOSPITAL, "doctor"))
row("Credential:Issue[diploma]")(_issue_row("diploma", SCHOOL, "school_registrar"))
row("Credential:Issue[transcript]")(_issue_row("transcript", SCHOOL, "school_registrar"))


@row("Credential:Get")
async def _credential_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    issued = await env.prescription()
    return ANYONE, constant(Call("Credential:Get", [issued.credential_id], evaluate=True))


@row("Credential:Verify")
async def _credential_verify(env: Env) -> tuple[frozenset[Cell], Maker]:
    issued = await env.prescription()
    return ANYONE, constant(Call("Credential:Verify", [issued.credential_id], evaluate=True,
                                 transient=issued.transient))


@row("Credential:Revoke")
async def _credential_revoke(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        issued = await env.prescription()
        return Call("Credential:Revoke", [issued.credential_id, "matrix"])
    return frozenset({(HOSPITAL, "doctor")}), make


@row("Credential:Erase")
async def _credential_erase(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account(HOSPITAL)

    async def make(_cell: Cell | None) -> Call:
        issued = await env.prescription()
        request = account.sign("credential.erase", {"credential_id": issued.credential_id})
        return Call("Credential:Erase", [request_arg(request)])
    # Public writes only (the tombstone): any org's carrier; Purge drops the content.
    return CARRIERS, make


# --- Grant ----------------------------------------------------------------------------------


@row("Grant:Create")
async def _grant_create(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account(HOSPITAL)

    async def make(_cell: Cell | None) -> Call:
        body = grant_body(account, PHARMACY, "medical.prescription",
                          credential_type="prescription")
        return Call("Grant:Create", [request_arg(account.sign("grant.create", body))])
    return CARRIERS, make


@row("Grant:Revoke")
async def _grant_revoke(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account(HOSPITAL)

    async def make(_cell: Cell | None) -> Call:
        created = await grant(env.mip, account, PHARMACY, "medical.prescription",
                              credential_type="prescription")
        body = {"account": account.pseudonym, "grant_id": created["grant_id"]}
        return Call("Grant:Revoke", [request_arg(account.sign("grant.revoke", body))])
    return CARRIERS, make


@row("Grant:List")
async def _grant_list(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account(HOSPITAL)
    request = account.sign("grant.list", {"account": account.pseudonym})
    return CARRIERS, constant(Call("Grant:List", [request_arg(request)], evaluate=True))


@row("Grant:Get")
async def _grant_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account(HOSPITAL)
    created = await grant(env.mip, account, PHARMACY, "medical.prescription",
                          credential_type="prescription")
    # The grantee org's staff, whatever their role; every other org is refused.
    return (cells({*ROLES}, (PHARMACY,)) | {(PHARMACY, None)},
            constant(Call("Grant:Get", [account.pseudonym, created["grant_id"]],
                          evaluate=True)))


# --- Access ---------------------------------------------------------------------------------


async def _granted_prescription(env: Env) -> Issued:
    issued = await env.prescription()
    await grant(env.mip, await env.account(HOSPITAL), PHARMACY, "medical.prescription",
                credential_id=issued.credential_id, grantee_role="pharmacist")
    return issued


@row("Access:Request")
async def _access_request(env: Env) -> tuple[frozenset[Cell], Maker]:
    issued = await _granted_prescription(env)
    # The issuing role of the issuing org, and the grantee (org and role named in the grant).
    return frozenset({(HOSPITAL, "doctor"), (PHARMACY, "pharmacist")}), constant(
        Call("Access:Request", [issued.credential_id, "medical.prescription", "matrix"]))


@row("Access:Read")
async def _access_read(env: Env) -> tuple[frozenset[Cell], Maker]:
    issued = await _granted_prescription(env)
    pharmacist = await env.mip.client(PHARMACY, "pharmacist")
    access_id = (await pharmacist.submit(
        "Access:Request", [issued.credential_id, "medical.prescription", "matrix"])).decode()
    # Only the client that made the audited request reads under it.
    return frozenset({(PHARMACY, "pharmacist")}), constant(
        Call("Access:Read", [access_id], evaluate=True, endorsing_orgs=[HOSPITAL]))


@row("Access:HolderLog")
async def _access_holder_log(env: Env) -> tuple[frozenset[Cell], Maker]:
    account = await env.account(HOSPITAL)
    request = account.sign("access.log", {"account": account.pseudonym})
    return CARRIERS, constant(Call("Access:HolderLog", [request_arg(request)], evaluate=True))


@row("Access:AuditorLog")
async def _access_auditor_log(env: Env) -> tuple[frozenset[Cell], Maker]:
    return cells({"auditor"}), constant(
        Call("Access:AuditorLog", ["0", str(int(time.time()) + 3600)], evaluate=True))


# --- Pharmacy -------------------------------------------------------------------------------


@row("Pharmacy:RegisterGatewayKey")
async def _pharmacy_register_key(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        counter = CounterGateway.generate()
        return Call("Pharmacy:RegisterGatewayKey", [counter.key_id, counter.public_pem])
    return frozenset({(PHARMACY, "admin")}), make


@row("Pharmacy:RevokeGatewayKey")
async def _pharmacy_revoke_key(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        counter = CounterGateway.generate()
        await counter.register(env.mip)
        return Call("Pharmacy:RevokeGatewayKey", [counter.key_id])
    return frozenset({(PHARMACY, "admin")}), make


@row("Pharmacy:Dispense")
async def _pharmacy_dispense(env: Env) -> tuple[frozenset[Cell], Maker]:
    counter = CounterGateway.generate()
    await counter.register(env.mip)
    account = await env.account(HOSPITAL)

    async def make(_cell: Cell | None) -> Call:
        issued = await _granted_prescription(env)
        attestation = counter.attest(issued.credential_id, account.pseudonym)
        return Call("Pharmacy:Dispense", [issued.credential_id, json.dumps(attestation)],
                    endorsing_orgs=[HOSPITAL, PHARMACY])
    return frozenset({(PHARMACY, "pharmacist")}), make


# --- Research -------------------------------------------------------------------------------


@row("Research:RegisterDataset")
async def _research_register(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        return Call("Research:RegisterDataset", [new_id("ds"), "1000000"])
    return cells({"admin"}), make


async def _dataset(env: Env) -> str:
    dataset_id = new_id("ds")
    admin = await env.mip.client(HOSPITAL, "admin")
    await admin.submit("Research:RegisterDataset", [dataset_id, "1000000"])
    return dataset_id


@row("Research:AdmitResearcher")
async def _research_admit(env: Env) -> tuple[frozenset[Cell], Maker]:
    dataset_id = await _dataset(env)

    async def make(_cell: Cell | None) -> Call:
        # A fresh (never admitted) identity string per call: an admission is made once.
        researcher = client_id(env.mip.network, SCHOOL, "researcher") + secrets.token_hex(4)
        return Call("Research:AdmitResearcher", [dataset_id, SCHOOL, researcher])
    # Only the owner org's admin: another org's admin may not give away its budget.
    return frozenset({(HOSPITAL, "admin")}), make


@row("Research:DismissResearcher")
async def _research_dismiss(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        dataset_id = await _dataset(env)
        await admit(env.mip, dataset_id, HOSPITAL, SCHOOL)
        return Call("Research:DismissResearcher",
                    [dataset_id, SCHOOL, client_id(env.mip.network, SCHOOL, "researcher")])
    return frozenset({(HOSPITAL, "admin")}), make


@row("Research:Researchers")
async def _research_researchers(env: Env) -> tuple[frozenset[Cell], Maker]:
    dataset_id = await _dataset(env)
    return ANYONE, constant(Call("Research:Researchers", [dataset_id], evaluate=True))


@row("Research:Debit")
async def _research_debit(env: Env) -> tuple[frozenset[Cell], Maker]:
    dataset_id = await _dataset(env)
    # The owner admits its own researcher and SchoolMSP's; PharmacyMSP's researcher, never
    # admitted, is refused like any other role.
    await admit(env.mip, dataset_id, HOSPITAL, HOSPITAL)
    await admit(env.mip, dataset_id, HOSPITAL, SCHOOL)

    async def make(_cell: Cell | None) -> Call:
        digest = hashlib.sha256(secrets.token_bytes(8)).hexdigest()
        return Call("Research:Debit", [dataset_id, "10", digest])
    return cells({"researcher"}, (HOSPITAL, SCHOOL)), make


@row("Research:Get")
async def _research_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    dataset_id = await _dataset(env)
    return ANYONE, constant(Call("Research:Get", [dataset_id], evaluate=True))


# --- Linkage verifier keys -----------------------------------------------------------------


def _verifier_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw,
                                                                    PublicFormat.Raw)
    return base64.b64encode(public).decode()


@row("Linkage:RegisterVerifierKey")
async def _linkage_register(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        return Call("Linkage:RegisterVerifierKey", [_verifier_key()])
    return cells({"admin"}), make


@row("Linkage:GetVerifierKey")
async def _linkage_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    await (await env.mip.client(HOSPITAL, "admin")).submit(
        "Linkage:RegisterVerifierKey", [_verifier_key()])
    return ANYONE, constant(Call("Linkage:GetVerifierKey", [HOSPITAL], evaluate=True))


# --- Portrait keys -------------------------------------------------------------------------


def _portrait_keys() -> list[str]:
    return [base64.b64encode(HolderKey.generate().public_raw).decode(), _verifier_key()]


@row("Portrait:RegisterKeys")
async def _portrait_register(env: Env) -> tuple[frozenset[Cell], Maker]:
    async def make(_cell: Cell | None) -> Call:
        return Call("Portrait:RegisterKeys", _portrait_keys())
    return cells({"admin"}), make


@row("Portrait:GetKeys")
async def _portrait_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    await (await env.mip.client(HOSPITAL, "admin")).submit("Portrait:RegisterKeys",
                                                           _portrait_keys())
    return ANYONE, constant(Call("Portrait:GetKeys", [HOSPITAL], evaluate=True))


# --- Screening requests ---------------------------------------------------------------------


@row("Screening:Request")
async def _screening_request(env: Env) -> tuple[frozenset[Cell], Maker]:
    return cells({"registrar"}), constant(Call("Screening:Request", []))


@row("Screening:Get")
async def _screening_get(env: Env) -> tuple[frozenset[Cell], Maker]:
    recorded = json.loads(await (await env.mip.client(HOSPITAL, "registrar")).submit(
        "Screening:Request", []))
    return ANYONE, constant(Call("Screening:Get", [recorded["request_id"]], evaluate=True))


@row("Screening:Usage")
async def _screening_usage(env: Env) -> tuple[frozenset[Cell], Maker]:
    day = str(int(time.time()) // 86_400)
    return ANYONE, constant(Call("Screening:Usage", [HOSPITAL, day], evaluate=True))


@row("org.hyperledger.fabric:GetMetadata")
async def _metadata(env: Env) -> tuple[frozenset[Cell], Maker]:
    return ANYONE, constant(Call("org.hyperledger.fabric:GetMetadata", [], evaluate=True))


# --- the tests ------------------------------------------------------------------------------


async def _run(mip: MipClients, cell: Cell, call: Call) -> bytes:
    contract = await mip.client(*cell)
    if call.evaluate:
        return await contract.evaluate(call.tx, call.args, transient=call.transient,
                                       endorsing_orgs=call.endorsing_orgs)
    return await contract.submit(call.tx, call.args, transient=call.transient,
                                 endorsing_orgs=call.endorsing_orgs)


def _describe(result: Any) -> str:
    if isinstance(result, ChaincodeError):
        return f"chaincode error {result.chaincode_message[:120]!r}"
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {str(result)[:200]}"
    return "success"


@pytest.mark.parametrize("label", sorted(ROWS))
async def test_matrix_row(
    label: str, mip: MipClients, kyc_issuers: dict[str, KycIssuer]
) -> None:
    env = Env(mip, kyc_issuers)
    allowed, make = await ROWS[label](env)
    assert allowed <= ANYONE
    failures: list[str] = []
    # Denied cells first, all at once, with one shared (otherwise valid) call: a refused
    # proposal commits nothing, so the call stays valid for the next cell.
    shared = await make(None)
    denied = [cell for cell in CELLS if cell not in allowed]
    results = await asyncio.gather(*(_run(mip, cell, shared) for cell in denied),
                                   return_exceptions=True)
    for cell, result in zip(denied, results, strict=True):
        if not (isinstance(result, ChaincodeError)
                and result.chaincode_message.startswith("access_denied: ")):
            failures.append(f"{cell}: expected access_denied, got {_describe(result)}")
    for cell in sorted(allowed, key=str):
        call = await make(cell)
        try:
            await _run(mip, cell, call)
        except Exception as exc:
            failures.append(f"{cell}: expected success, got {_describe(exc)}")
    assert not failures, f"{label}:\n" + "\n".join(failures)


async def test_matrix_covers_every_transaction(mip: MipClients) -> None:
    contract = await mip.client(HOSPITAL, None)
    metadata = json.loads(await contract.evaluate("org.hyperledger.fabric:GetMetadata"))
    listed = {f"{name}:{tx['name']}"
              for name, spec in metadata["contracts"].items() for tx in spec["transactions"]}
    covered = {label.split("[")[0] for label in ROWS}
    assert listed == covered
