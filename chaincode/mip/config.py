"""Channel-wide settings (`mip.config`), changed by an admin of a member org.

A setting is one public-state key per name. Once a setting has been written, its key carries a
key-level endorsement policy naming every member org, so a later change must be endorsed by
all of them: one org's admin cannot, say, lower the vouching threshold for everyone alone.
(The very first write of a name cannot be so guarded, as a new key has no policy yet; until
then the default below applies, which is the value the consortium agreed on.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chaincode.mip.errors import InvalidRequest
from chaincode.mip.holder_auth import tx_unix_time
from chaincode.mip.staff import MEMBER_ORGS, require_staff
from chaincode.shim import (
    Context,
    Contract,
    KeyEndorsementPolicy,
    RoleType,
    create_composite_key,
    transaction,
)

CONFIG_OBJECT = "mip.config"


@dataclass(frozen=True)
class Setting:
    default: int
    low: int
    high: int
    meaning: str


SETTINGS: dict[str, Setting] = {
    "vouch_k": Setting(2, 1, 10, "distinct level-2+ vouches that lift a passport to level 3"),
    # 1: every new passport is provisional (level 1, no vouching) until registrars of a
    # majority of member orgs record the consortium-wide duplicate screening's outcome
    # (Passport:Screen). 0 until every org's gateway runs that screening (docs/face.md).
    "screening_required": Setting(0, 0, 1, "new passports stay provisional until a majority "
                                           "of orgs clears their duplicate screening"),
    # Consortium-wide private screening requests an org may record per UTC day
    # (chaincode/mip/screening.py): what bounds a dishonest querier's crafted queries.
    "screening_quota_daily": Setting(1000, 1, 1_000_000, "screening requests each org may "
                                                         "record per UTC day"),
}


def config_key(name: str) -> str:
    return create_composite_key(CONFIG_OBJECT, [name])


def _setting(name: str) -> Setting:
    setting = SETTINGS.get(name)
    if setting is None:
        raise InvalidRequest(f"unknown setting {name!r}; known: {sorted(SETTINGS)}")
    return setting


async def get_setting(ctx: Context, name: str) -> int:
    """The current value of setting `name` (its default if never set)."""
    setting = _setting(name)
    raw = await ctx.stub.get_state(config_key(name))
    if raw is None:
        return setting.default
    value = json.loads(raw)["value"]
    if not isinstance(value, int):
        raise InvalidRequest(f"setting {name!r} on the ledger is not an integer")
    return value


class ConfigContract(Contract):
    """Channel-wide settings: read by anyone on the channel, set by an admin."""

    name = "Config"

    @transaction()
    async def Set(self, ctx: Context, name: str, value: int) -> dict[str, object]:
        """Set `name` to `value` (admin of a member org; later changes need every org)."""
        staff = require_staff(ctx, {"admin"})
        setting = _setting(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequest("value must be an integer")
        if not setting.low <= value <= setting.high:
            raise InvalidRequest(f"{name} must be between {setting.low} and {setting.high}")
        key = config_key(name)
        record = {"name": name, "value": value, "set_by": staff.msp_id,
                  "updated": tx_unix_time(ctx)}
        await ctx.stub.put_state(key, json.dumps(record, sort_keys=True).encode())
        policy = KeyEndorsementPolicy()
        policy.add_orgs(RoleType.PEER, *sorted(MEMBER_ORGS))
        await ctx.stub.set_state_validation_parameter(key, policy.policy())
        return record

    @transaction(read_only=True)
    async def Get(self, ctx: Context, name: str) -> dict[str, object]:
        """The value of `name` and whether it is the default."""
        setting = _setting(name)
        raw = await ctx.stub.get_state(config_key(name))
        if raw is None:
            return {"name": name, "value": setting.default, "default": True}
        record = json.loads(raw)
        return {"name": name, "value": record["value"], "default": False,
                "set_by": record["set_by"], "updated": record["updated"]}
