"""Staff authentication: bearer tokens issued by the CLI, each bound to one Fabric identity.

`mip identity add --org HospitalMSP --name alice --role doctor` mints alice's Fabric identity
(certificate attribute `mip.role=doctor`) and a gateway token for her. The gateway keeps only
sha256(token): a token is 32 random bytes, so a fast hash is enough, and a copy of the
database does not let anyone act as staff. Every ledger call made for a request is signed
with the authenticated member's own identity, so the ledger's audit names the person.

An org's gateway (`org` given) issues and accepts tokens of its own org's staff only
(gateway/core/org_scope.py): a token row of another org, however it got into the database,
authenticates nobody.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

from gateway.store import Database

from .errors import Forbidden, Unauthenticated
from .org_scope import NotThisOrg

SCHEMA = """
CREATE TABLE IF NOT EXISTS staff_tokens (
    token_hash TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS staff_tokens_member ON staff_tokens(org, name);
"""

ROLES = ("registrar", "doctor", "pharmacist", "school_registrar", "researcher", "auditor",
         "admin", "gateway")
TOKEN_PREFIX = "mipst_"  # noqa: S105 (a marker that makes leaked tokens greppable)


@dataclass(frozen=True)
class StaffMember:
    org: str
    name: str
    role: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Desk:
    """A staff member as authenticated by one token: what a holder session is bound to
    (gateway/services/holders.py). `token_digest` is the sha256 the registry stores, so the
    binding keeps no token in memory; another token of the same member is another desk."""

    staff: StaffMember
    token_digest: str = field(repr=False)


class StaffRegistry:
    def __init__(self, db: Database, org: str | None = None) -> None:
        self.db = db
        self.org = org  # the gateway's org; None on an all-orgs (development) gateway
        db.ensure(SCHEMA)

    def _own(self, org: str, action: str) -> None:
        if self.org is not None and org != self.org:
            raise NotThisOrg(self.org, org, action)

    def issue(self, org: str, name: str, role: str, ttl_s: float | None = None) -> str:
        """A new token for the Fabric identity `name` of `org` (shown once, stored hashed)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
        self._own(org, "issue staff tokens")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO staff_tokens (token_hash, org, name, role, created, expires) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_hash(token), org, name, role, now, now + ttl_s if ttl_s else None))
        return token

    def authenticate(self, token: str) -> StaffMember:
        row = self.db.query_one(
            "SELECT org, name, role, expires, revoked FROM staff_tokens WHERE token_hash = ?",
            (_hash(token),))
        if row is None or row["revoked"]:
            raise Unauthenticated("unknown or revoked staff token")
        if row["expires"] is not None and row["expires"] < time.time():
            raise Unauthenticated("staff token expired")
        self._own(str(row["org"]), "accept staff tokens")
        return StaffMember(row["org"], row["name"], row["role"])

    def desk(self, token: str) -> Desk:
        """The staff member of `token` and the token's digest (raises as `authenticate`)."""
        return Desk(self.authenticate(token), _hash(token))

    def revoke_member(self, org: str, name: str) -> int:
        self._own(org, "revoke staff tokens")
        with self.db.transaction() as conn:
            cur = conn.execute("UPDATE staff_tokens SET revoked = 1 WHERE org = ? AND name = ?",
                               (org, name))
            return int(cur.rowcount)


def require_role(member: StaffMember, roles: tuple[str, ...], orgs: tuple[str, ...] = ()) -> None:
    """Refuse early with a clear error (the contract checks the same on the ledger)."""
    if member.role not in roles:
        raise Forbidden(f"this needs one of the roles {', '.join(roles)}; "
                        f"you are {member.role}", code="wrong_role")
    if orgs and member.org not in orgs:
        raise Forbidden(f"this needs a member of {', '.join(orgs)}", code="wrong_org")
