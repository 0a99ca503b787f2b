"""`mip audit --org ORG --as AUDITOR [--since T]`: the org's access records (auditor role)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import typer

from gateway.core.security import StaffMember

from .common import CliError, ConfigOption, guarded, settings_from
from .service_state import AsOption, OrgOption, print_json, with_state


def parse_since(value: str | None, now: float) -> int:
    """Unix seconds, an ISO date/time, or a relative `30m`/`24h`/`7d`; default 24 h ago."""
    if value is None:
        return int(now - 24 * 3600)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value[-1:] in units and value[:-1].isdigit():
        return int(now - int(value[:-1]) * units[value[-1]])
    if value.isdigit():
        return int(value)
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        raise CliError(f"--since: {value!r} is not a time (unix seconds, ISO date, "
                       "or 30m / 24h / 7d)", 2) from None


def audit(org: OrgOption, as_: AsOption,
          since: Annotated[str | None, typer.Option(
              help="from when: unix seconds, ISO time, or 30m/24h/7d (default 24h)")] = None,
          config: ConfigOption = None) -> None:
    """Who in your org read which credential, when and why (Access:AuditorLog)."""
    def run() -> None:
        from gateway.services import audit as service

        now = time.time()
        start = parse_since(since, now)
        member = StaffMember(org, as_, "auditor")

        async def call(state: Any) -> list[dict[str, Any]]:
            return await service.org_log(state, member, start, int(now) + 1)
        print_json(with_state(settings_from(config), call))
    guarded(run)
