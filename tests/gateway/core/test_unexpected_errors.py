"""An unexpected exception's text, arguments and traceback reach no log line and no client:
the client gets 500 `internal_error` with a correlation id, the log the same id, the
exception's type and its code location (gateway/core/failures.py, gateway/core/logging.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_kit import bare_app, client

from gateway.core.logging import configure_logging

CANARY = "canary-7f3a9c-private-passport-P1234567"


class _Everything(logging.Handler):
    """Every record any logger emits, rendered with its traceback as a formatter would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formatter_ = logging.Formatter("%(message)s")
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.formatter_.format(record)
        self.lines.append(f"{text}\n{record.args!r}\n{record.exc_text or ''}")


@pytest.fixture
def logs() -> Iterator[tuple[io.StringIO, _Everything]]:
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    everything = _Everything()
    loggers = [logging.getLogger(), logging.getLogger("mip"), logging.getLogger("uvicorn.error")]
    for logger in loggers:
        logger.addHandler(everything)
    try:
        yield stream, everything
    finally:
        for logger in loggers:
            logger.removeHandler(everything)


def _failing(secret: str) -> None:
    holder_password = secret  # a local a traceback renderer with locals would print
    raise ValueError(f"could not parse {holder_password}")


async def test_unexpected_exception_is_a_typed_500_and_logs_no_text(
        tmp_path: Path, logs: tuple[io.StringIO, _Everything]) -> None:
    app = bare_app(tmp_path)

    @app.post("/test-only/fail")
    async def fail(body: dict[str, str]) -> None:
        _failing(body["password"])

    stream, everything = logs
    # raise_app_exceptions=True: nothing may escape to the server (whose log would print it).
    async with client(app) as http:
        response = await http.post("/test-only/fail", json={"password": CANARY})
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error"
    correlation_id = error["details"]["correlation_id"]
    assert len(correlation_id) == 16
    assert CANARY not in response.text

    written = stream.getvalue()
    assert CANARY not in written
    assert all(CANARY not in line for line in everything.lines)
    line = next(line for line in written.splitlines() if correlation_id in line)
    assert "builtins.ValueError" in line
    assert "tests/gateway/core/test_unexpected_errors.py:" in line and "in _failing" in line
    assert "Traceback" not in written


def test_filter_strips_tracebacks_from_any_log_call(
        logs: tuple[io.StringIO, _Everything]) -> None:
    stream, everything = logs
    log = logging.getLogger("mip.somewhere")
    try:
        _failing(CANARY)
    except ValueError:
        log.exception("while doing %s", "work")
    log.warning("stack", stack_info=True)
    written = stream.getvalue()
    assert CANARY not in written
    assert "Traceback" not in written and "Stack (most recent call last)" not in written
    assert "while doing work [builtins.ValueError at tests/gateway/core/" in written
    assert all(CANARY not in line for line in everything.lines)
