"""The recipient's side of the portrait: receive, keep sealed, check, delete (docs/gateway.md,
"Pharmacy face check: the portrait", steps 2 and 3).

A pharmacist hands in the sealed portrait the holder carries (with the pickup, or beforehand
by `deposit`). Before anything is kept, it is checked as the verdict will check it: reads
through this gateway's own peer of `Account:Get` (institution, face commitment), `Grant:Get`
(this org's grant, live, of the pickup scope, naming this prescription, carrying the portrait
commitment) and `Portrait:GetKeys(institution)`, then `face_engine.portrait.accept` with this
org's sealing key. A refusal is a typed error (`portrait_*`, 409; malformed 422; expired 410)
and nothing is written. What is kept: the sealed bytes as received, keyed by (account, grant),
with the portrait's expiry; never the opened embedding, which exists in memory for one verdict.

Deletion: a portrait is deleted when it is found expired or its grant ended (revoked, expired,
account closed) at any check, when the prescription its grant names is used up by a dispense
here, and expired rows at every hand-in; a grant by credential type (not naming one
prescription) keeps its portrait until the grant or the portrait ends. This gateway learns of a
revocation only when it next reads the grant.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import sqlite3
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from face_engine.portrait import (
    MAX_SEALED_BYTES,
    MalformedPortrait,
    PortraitError,
    PortraitExpectation,
    PortraitExpired,
    PortraitHeader,
    VerifiedPortrait,
    accept,
    read_header,
)
from gateway.core.errors import ApiError, Conflict, Gone, NotFound
from gateway.fabric import ChaincodeError

from .ledger_reads import json_object
from .portrait_issue import PICKUP_SCOPE
from .portrait_keys import keys_record, portrait_keys, record_key

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.pharmacy")

SCHEMA = """
CREATE TABLE IF NOT EXISTS pharmacy_portraits (
    account TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    sealed BLOB NOT NULL,
    received REAL NOT NULL,
    expires INTEGER NOT NULL,
    prescription_id TEXT,
    PRIMARY KEY (account, grant_id)
);
"""


class PortraitRefused(ApiError):
    """A portrait that did not pass a check; `code` is the library's (`portrait_*`)."""

    status = 409


def refused(exc: PortraitError) -> ApiError:
    status = 422 if isinstance(exc, MalformedPortrait) else (
        410 if isinstance(exc, PortraitExpired) else 409)
    return PortraitRefused(exc.message, code=exc.code, status=status)


def decode(encoded: str) -> bytes:
    """A sealed portrait from its base64 form (as the grant response gives it)."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise PortraitRefused("the portrait is not base64", code="portrait_malformed",
                              status=422) from None
    if not raw or len(raw) > MAX_SEALED_BYTES:
        raise PortraitRefused(f"a sealed portrait is 1 to {MAX_SEALED_BYTES} bytes",
                              code="portrait_malformed", status=422)
    return raw


@dataclass(frozen=True)
class Checked:
    """A portrait that passed every check (no embedding kept here)."""

    header: PortraitHeader
    sealed: bytes
    expectation: PortraitExpectation
    expires: int
    prescription_id: str | None  # the one prescription its grant names, if it names one


def _retrieve(task: asyncio.Future[dict[str, Any]]) -> None:
    # A read whose check stopped at an earlier refusal is never awaited: take its outcome
    # here so that asyncio reports no exception nobody retrieved.
    if not task.cancelled():
        task.exception()


def _started(read: Awaitable[dict[str, Any]]) -> asyncio.Future[dict[str, Any]]:
    task = asyncio.ensure_future(read)
    task.add_done_callback(_retrieve)
    return task


class PortraitReads:
    """The ledger reads a portrait's check makes (`Account:Get`, `Grant:Get`,
    `Portrait:GetKeys`), started together instead of one after another; `expectation`
    takes their answers in its own order, so each refusal is the one the reads one after
    another would give. Reads only: nothing is written by starting them.

    `Portrait:GetKeys` needs the account's institution, which `Account:Get` gives; it is
    started at once for the issuer the portrait's own statement names (opened with this
    org's key, nothing trusted), and used only if the institution turns out to be that
    org; otherwise the keys of the institution are read afresh (and the portrait is then
    refused as signed by another org, as before)."""

    def __init__(self, reader: Any, header: PortraitHeader, claimed_issuer: str | None
                 ) -> None:
        self.reader = reader
        self.account = _started(_evaluate(reader, "Account:Get", [header.account],
                                          "account"))
        self.grant = _started(_evaluate(reader, "Grant:Get", [header.account,
                                                             header.grant_id], "grant"))
        self.claimed_issuer = claimed_issuer
        self._keys = None if claimed_issuer is None else _started(
            keys_record(reader, claimed_issuer))

    async def keys(self, institution: str) -> dict[str, Any]:
        if self._keys is not None and self.claimed_issuer == institution:
            return await self._keys
        self.discard_keys()
        return await keys_record(self.reader, institution)

    def discard_keys(self) -> None:
        if self._keys is not None:
            self._keys.cancel()

    def discard(self) -> None:
        for task in (self.account, self.grant):
            task.cancel()
        self.discard_keys()


class PharmacyPortraits:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.db = state.db
        self.db.ensure(SCHEMA)

    # --- checks ---------------------------------------------------------------------------
    def start_reads(self, org: str, sealed: bytes) -> PortraitReads | None:
        """The check's ledger reads of `sealed`, started now (`check(..., reads=)`); None
        when its header does not parse or names another recipient (the check refuses
        those before reading anything)."""
        try:
            header = read_header(sealed)
        except PortraitError:
            return None
        if header.recipient_org != org:
            return None
        try:
            claimed: str | None = portrait_keys(self.state, org).recipient().open(
                sealed).statement.issuer_org
        except PortraitError:
            claimed = None  # refused by the check itself, in its order
        return PortraitReads(self.state.ledger.carrier(org), header, claimed)

    async def expectation(self, org: str, header: PortraitHeader,
                          prescription: dict[str, Any] | None = None,
                          reads: PortraitReads | None = None
                          ) -> tuple[PortraitExpectation, str | None]:
        """What the ledger says the portrait must be, read through this org's own peer; the
        prescription the grant names (None for a grant by type). Typed refusals. `reads`:
        the same reads, already started (`start_reads`)."""
        if header.recipient_org != org:
            raise PortraitRefused("the portrait is sealed to another org",
                                  code="portrait_wrong_recipient")
        if prescription is not None and header.account != prescription.get("subject_account"):
            raise PortraitRefused("the portrait is of another account than the "
                                  "prescription's", code="portrait_binding_mismatch")
        reader = self.state.ledger.carrier(org)
        if reads is None:
            reads = PortraitReads(reader, header, None)
        account = await reads.account
        if account.get("status") != "open":
            self.forget(header.account, header.grant_id)
            raise Conflict("the holder closed this account", code="account_closed")
        grant = await reads.grant
        if grant.get("live") is not True:
            self.forget(header.account, header.grant_id)
            raise Gone("the portrait's grant has ended", code="portrait_grant_ended")
        if grant.get("scope") != PICKUP_SCOPE or grant.get("grantee_org") != org:
            raise PortraitRefused("the portrait's grant is not this pharmacy's pickup grant",
                                  code="portrait_binding_mismatch")
        named = grant.get("credential_id")
        if prescription is not None and (
                named != prescription.get("id") if named is not None
                else grant.get("credential_type") != prescription.get("type")):
            raise PortraitRefused("the portrait's grant does not cover this prescription",
                                  code="portrait_binding_mismatch")
        if not isinstance(grant.get("portrait_commitment"), str):
            raise PortraitRefused("the holder's grant commits to no portrait",
                                  code="portrait_commitment_mismatch")
        institution = str(account["institution"])
        issuer = await reads.keys(institution)
        return PortraitExpectation(
            account=header.account, grant_id=header.grant_id, issuer_org=institution,
            issuer_key=record_key(issuer, "signing_key"),
            issuer_key_id=str(issuer["signing_key_id"]),
            grant_commitment=str(grant["portrait_commitment"]),
            reference_commitment=str(account.get("face_commitment"))), (
            str(named) if named is not None else None)

    def accept(self, org: str, sealed: bytes, expectation: PortraitExpectation
               ) -> VerifiedPortrait:
        """Open and check with this org's sealing key; a refusal as a typed API error (an
        expired portrait is deleted)."""
        try:
            return accept(portrait_keys(self.state, org).recipient(), sealed, expectation,
                          int(time.time()))
        except PortraitExpired as exc:
            self.forget(expectation.account, expectation.grant_id)
            raise refused(exc) from None
        except PortraitError as exc:
            raise refused(exc) from None

    async def check(self, org: str, sealed: bytes,
                    prescription: dict[str, Any] | None = None,
                    reads: PortraitReads | None = None) -> Checked:
        """Every check of a handed-in portrait; writes nothing. `reads`: its ledger reads,
        started earlier by `start_reads(org, sealed)`."""
        try:
            header = read_header(sealed)
        except PortraitError as exc:
            raise refused(exc) from None
        expectation, named = await self.expectation(org, header, prescription, reads)
        verified = self.accept(org, sealed, expectation)
        return Checked(header, sealed, expectation, verified.expires, named)

    # --- what is kept ---------------------------------------------------------------------
    def keep(self, checked: Checked, conn: sqlite3.Connection | None = None) -> None:
        """Keep the checked portrait (and drop expired ones); with `conn`, in the caller's
        transaction."""
        if conn is None:
            with self.db.transaction() as own:
                self.keep(checked, own)
            return
        now = time.time()
        conn.execute("DELETE FROM pharmacy_portraits WHERE expires <= ?", (int(now),))
        conn.execute(
            "INSERT INTO pharmacy_portraits (account, grant_id, sealed, received, expires, "
            "prescription_id) VALUES (?,?,?,?,?,?) ON CONFLICT(account, grant_id) DO "
            "UPDATE SET sealed = excluded.sealed, received = excluded.received, "
            "expires = excluded.expires",
            (checked.header.account, checked.header.grant_id, checked.sealed, now,
             checked.expires, checked.prescription_id))

    async def deposit(self, org: str, sealed: bytes) -> dict[str, Any]:
        """Check and keep a portrait handed in before its pickup."""
        checked = await self.check(org, sealed)
        self.keep(checked)
        log.info("portrait received for a grant")
        return {"account": checked.header.account, "grant_id": checked.header.grant_id,
                "expires": checked.expires}

    def sealed(self, account: str, grant_id: str) -> bytes | None:
        row = self.db.query_one("SELECT sealed, expires FROM pharmacy_portraits WHERE "
                                "account = ? AND grant_id = ?", (account, grant_id))
        if row is None:
            return None
        if int(row["expires"]) <= time.time():
            self.forget(account, grant_id)
            return None
        return bytes(row["sealed"])

    def latest_grant(self, account: str, prescription_id: str) -> str | None:
        """The grant of the newest kept portrait of `account` that may serve this
        prescription (its grant names it, or names none)."""
        row = self.db.query_one(
            "SELECT grant_id FROM pharmacy_portraits WHERE account = ? AND expires > ? AND "
            "(prescription_id IS NULL OR prescription_id = ?) ORDER BY received DESC LIMIT 1",
            (account, int(time.time()), prescription_id))
        return None if row is None else str(row["grant_id"])

    def forget(self, account: str, grant_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM pharmacy_portraits WHERE account = ? AND grant_id = ?",
                         (account, grant_id))

    def used_up(self, prescription_id: str, conn: sqlite3.Connection | None = None) -> None:
        """The prescription has no fill left: the portraits of grants naming it go (with
        `conn`, in the caller's transaction)."""
        if conn is None:
            with self.db.transaction() as own:
                self.used_up(prescription_id, own)
            return
        conn.execute("DELETE FROM pharmacy_portraits WHERE prescription_id = ?",
                     (prescription_id,))


async def _evaluate(reader: Any, fn: str, args: list[str], what: str) -> dict[str, Any]:
    try:
        return json_object(await reader.evaluate(fn, args))
    except ChaincodeError as exc:
        message = exc.chaincode_message
        if message.startswith("not_found: "):
            raise NotFound(f"no such {what} on the ledger",
                           code=f"portrait_{what}_not_found") from None
        if message.startswith("access_denied: "):
            raise PortraitRefused("the portrait's grant is not to this org",
                                  code="portrait_wrong_recipient") from None
        raise


def pharmacy_portraits(state: AppState) -> PharmacyPortraits:
    return state.service("pharmacy_portraits", PharmacyPortraits)
