"""`mip passport show ID`: a passport's public record on the ledger."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from gateway.core.security import StaffMember

from .common import ConfigOption, guarded, settings_from
from .service_state import AsOption, OrgOption, print_json, with_state

app = typer.Typer(help="Passports (public records).", no_args_is_help=True)


@app.command()
def show(passport_id: Annotated[str, typer.Argument(help="64 hex characters")],
         org: OrgOption, as_: AsOption, config: ConfigOption = None) -> None:
    """Print the passport's public record (KYC level, status, vouches), read as you."""
    def run() -> None:
        member = StaffMember(org, as_, "")

        async def call(state: object) -> object:
            from gateway.services.state import AppState

            assert isinstance(state, AppState)
            return json.loads(await state.ledger.for_staff(member).evaluate(
                "Passport:Get", [passport_id]))
        print_json(with_state(settings_from(config), call))
    guarded(run)
