"""Grants: create, list, revoke (holder-signed, carried by the gateway identity).

The gateway also keeps the `research.aggregate` grants it has seen (from creations,
revocations and listings it carried) in `research_consents`: the contract has no listing by
grantee, and the analytics route needs to know which accounts consented. The cache holds
only grant terms (account pseudonym, grantee, expiry, status), never data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from gateway.store import Database

from .holder_requests import carrier_for, check_signed, request_arg
from .ledger_reads import json_list, json_object

if TYPE_CHECKING:
    from .state import AppState

log = logging.getLogger("mip.gateway.grants")

RESEARCH_SCOPE = "research.aggregate"

SCHEMA = """
CREATE TABLE IF NOT EXISTS research_consents (
    account TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    grantee_org TEXT NOT NULL,
    grantee_role TEXT,
    credential_id TEXT,
    credential_type TEXT,
    expires INTEGER NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (account, grant_id)
);
CREATE INDEX IF NOT EXISTS research_consents_org ON research_consents(grantee_org);
"""


def new_grant_id() -> str:
    return f"g-{secrets.token_hex(12)}"


def remember_research_grants(db: Database, grants: Iterable[dict[str, Any]]) -> None:
    """Keep (or update) the research.aggregate grants among `grants`."""
    db.ensure(SCHEMA)
    rows = [g for g in grants if g.get("scope") == RESEARCH_SCOPE
            and isinstance(g.get("account"), str) and isinstance(g.get("grant_id"), str)
            and isinstance(g.get("expires"), int)]
    if not rows:
        return
    with db.transaction() as conn:
        for g in rows:
            conn.execute(
                "INSERT INTO research_consents (account, grant_id, grantee_org, grantee_role, "
                "credential_id, credential_type, expires, status) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT(account, grant_id) DO UPDATE SET status = excluded.status, "
                "expires = excluded.expires",
                (g["account"], g["grant_id"], str(g.get("grantee_org")), g.get("grantee_role"),
                 g.get("credential_id"), g.get("credential_type"), g["expires"],
                 _cached_status(g)))


def _cached_status(grant: dict[str, Any]) -> str:
    """A listing's `live: false` on an active record means the grant ended some other way
    (its account closed, or it expired): never cache that as an active consent."""
    status = str(grant.get("status"))
    return "ended" if status == "active" and grant.get("live") is False else status


def close_research_consents(db: Database, account: str) -> None:
    """The account was closed: its research consents ended with its grants."""
    db.ensure(SCHEMA)
    with db.transaction() as conn:
        conn.execute("UPDATE research_consents SET status = 'closed' WHERE account = ?",
                     (account,))


def research_grants(db: Database, grantee_org: str) -> list[dict[str, Any]]:
    """The research.aggregate grants to `grantee_org` this gateway has seen (grant records)."""
    db.ensure(SCHEMA)
    return [{**dict(row), "scope": RESEARCH_SCOPE} for row in db.query(
        "SELECT * FROM research_consents WHERE grantee_org = ?", (grantee_org,))]


async def create(state: AppState, signed: dict[str, Any]) -> dict[str, Any]:
    """`Grant:Create` with a holder-signed `grant.create` request."""
    check_signed(signed, "grant.create")
    account = str(signed["body"].get("account"))
    carrier = await carrier_for(state, account)
    grant = json_object(await carrier.submit("Grant:Create", [request_arg(signed)]))
    remember_research_grants(state.db, [grant])
    log.info("grant %s created (scope %s)", grant.get("grant_id"), grant.get("scope"))
    return grant


async def revoke(state: AppState, signed: dict[str, Any], account: str,
                 grant_id: str) -> dict[str, Any]:
    check_signed(signed, "grant.revoke", account=account, grant_id=grant_id)
    carrier = await carrier_for(state, account)
    grant = json_object(await carrier.submit("Grant:Revoke", [request_arg(signed)]))
    remember_research_grants(state.db, [grant])
    log.info("grant %s revoked", grant_id)
    return grant


async def list_grants(state: AppState, signed: dict[str, Any], account: str
                      ) -> list[dict[str, Any]]:
    check_signed(signed, "grant.list", account=account)
    carrier = await carrier_for(state, account)
    grants = json_list(await carrier.evaluate("Grant:List", [request_arg(signed)]))
    remember_research_grants(state.db, grants)
    return grants
