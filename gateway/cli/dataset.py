"""`mip dataset add ID --epsilon E --column age=numeric ...`: register a research dataset and
its privacy budget on the ledger (admin of the owner org)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gateway.core.security import StaffMember

from .common import CliError, ConfigOption, guarded, settings_from
from .service_state import AsOption, OrgOption, print_json, with_state

app = typer.Typer(help="Research datasets (differential privacy budgets).",
                  no_args_is_help=True)


def parse_columns(items: list[str]) -> dict[str, str]:
    columns: dict[str, str] = {}
    for item in items:
        name, sep, kind = item.partition("=")
        if not sep or not name or kind not in ("numeric", "categorical"):
            raise CliError(f"--column expects NAME=numeric or NAME=categorical, got {item!r}", 2)
        columns[name] = kind
    if not columns:
        raise CliError("give at least one --column", 2)
    return columns


@app.command()
def add(dataset_id: Annotated[str, typer.Argument(help="the dataset id")],
        org: OrgOption, as_: AsOption,
        epsilon: Annotated[float, typer.Option(
            help="total privacy budget, per account (a holder with k accounts in the dataset "
                 "is protected at k times it)", min=0.001, max=100)] = 1.0,
        column: Annotated[list[str] | None, typer.Option(
            help="NAME=numeric|categorical (repeat)")] = None,
        config: ConfigOption = None) -> None:
    """Register the dataset with its total epsilon (you must be an admin of ORG)."""
    def run() -> None:
        from gateway.services.research import research_service

        columns = parse_columns(column or [])
        member = StaffMember(org, as_, "admin")

        async def call(state: Any) -> dict[str, Any]:
            return await research_service(state).register(member, dataset_id, epsilon, columns)
        print_json(with_state(settings_from(config), call))
    guarded(run)
