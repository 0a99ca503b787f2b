"""Which accounts consented to enter a researcher's aggregates (`research.aggregate` grants).

The contract records the grants (`Grant:List`, docs/chaincode-transactions.md "Grants") but
does not enforce research consent: selecting the consenting accounts is the analysis
service's job. A grant counts when all of these hold:

- scope `research.aggregate`, status `active` (a revoked grant never counts), and, when the
  record carries the contract's `live` flag, that flag is true;
- it has not expired at `now` (`expires` > now, unix seconds: the contract's own rule);
- the grantee org is the researcher's org, and a grant narrowed to a role names the
  researcher's role;
- when a credential type is asked for, the grant covers it: `credential_type` equal, or
  `credential_id` among the ids of that type the caller knows.

Malformed grant records are skipped, never counted: consent has to be shown, not assumed.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

RESEARCH_SCOPE = "research.aggregate"
RESEARCHER_ROLE = "researcher"


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def grant_consents(
    grant: Mapping[str, Any],
    *,
    researcher_org: str,
    now: int,
    role: str = RESEARCHER_ROLE,
    credential_type: str | None = None,
    credential_ids: Collection[str] = (),
) -> bool:
    """True if `grant` (a `Grant:List` record) is live consent for this researcher."""
    if not isinstance(grant, Mapping):
        return False
    expires = _int(grant.get("expires"))
    if (grant.get("scope") != RESEARCH_SCOPE or grant.get("status") != "active"
            or grant.get("live", True) is not True or expires is None or expires <= now):
        return False
    if grant.get("grantee_org") != researcher_org:
        return False
    grantee_role = grant.get("grantee_role")
    if grantee_role is not None and grantee_role != role:
        return False
    if credential_type is not None:
        if grant.get("credential_type") == credential_type:
            return True
        granted_id = grant.get("credential_id")
        return isinstance(granted_id, str) and granted_id in credential_ids
    return True


def consenting_accounts(
    grants: Iterable[Mapping[str, Any]],
    *,
    researcher_org: str,
    now: int,
    role: str = RESEARCHER_ROLE,
    credential_type: str | None = None,
    credential_ids: Collection[str] = (),
) -> frozenset[str]:
    """The accounts with at least one grant that `grant_consents` accepts."""
    accounts = set()
    for grant in grants:
        account = grant.get("account") if isinstance(grant, Mapping) else None
        if isinstance(account, str) and account and grant_consents(
                grant, researcher_org=researcher_org, now=now, role=role,
                credential_type=credential_type, credential_ids=credential_ids):
            accounts.add(account)
    return frozenset(accounts)


def consenting_records(
    records: Sequence[Mapping[str, Any]], consenting: Collection[str], holder_field: str
) -> list[Mapping[str, Any]]:
    """The records whose holder (`record[holder_field]`) is among the consenting accounts."""
    wanted = frozenset(consenting)
    return [r for r in records
            if isinstance(holder := r.get(holder_field), str) and holder in wanted]
