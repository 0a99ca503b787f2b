"""network.devnet.event_loop: uvloop when installed, the stdlib loop on request."""

from __future__ import annotations

import asyncio

import pytest

from network.devnet import event_loop


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_asyncio_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.ENV, "asyncio")
    assert event_loop.loop_name() == "asyncio"
    assert event_loop.run(_loop_type()).startswith("asyncio")


def test_auto_prefers_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvloop is a declared dependency (pyproject.toml): its absence is an install error.
    import uvloop  # noqa: F401
    monkeypatch.delenv(event_loop.ENV, raising=False)
    assert event_loop.loop_name() == "uvloop"
    assert event_loop.run(_loop_type()).startswith("uvloop")


def test_uvloop_required_but_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setenv(event_loop.ENV, "uvloop")
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import now raises ImportError
    with pytest.raises(RuntimeError, match="not installed"):
        event_loop.loop_factory()

