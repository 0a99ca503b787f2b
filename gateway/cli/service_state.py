"""Run one service call of the gateway in-process (the CLI as a staff member or holder)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from gateway.core.config import Settings
from gateway.services.state import AppState, build_state

from .common import say

T = TypeVar("T")

OrgOption = Annotated[str, typer.Option("--org", help="your org's MSP id")]
AsOption = Annotated[str, typer.Option("--as", help="your Fabric identity name in that org")]


def with_state(settings: Settings, call: Callable[[AppState], Awaitable[T]]) -> T:
    async def run() -> T:
        state = build_state(settings)
        try:
            return await call(state)
        finally:
            await state.close()
    return asyncio.run(run())


def print_json(value: Any) -> None:
    say(json.dumps(value, indent=2, sort_keys=True))
