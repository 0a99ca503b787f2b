"""The access log (issue #16): one line per request naming its route by template, never the
concrete path (ids, session ids) or the query string; uvicorn's own access log is off under
`mip serve`."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_kit import bare_app, client

from gateway.core.logging import RedactingFilter

SECRET = "5e55e55e55e55e55e55e55e55e55e55e55e55e55e55e55e55e55e55e55e55e5e"


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("mip.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_routes_are_logged_by_template(tmp_path: Path, access_lines: io.StringIO
                                             ) -> None:
    requests = {
        ("PUT", f"/api/v1/pharmacy/pickups/{SECRET}/frames/3?token={SECRET}"):
            "PUT /api/v1/pharmacy/pickups/{pickup_id}/frames/{index} ",
        ("POST", f"/api/v1/holders/recoveries/{SECRET}/finish"):
            "POST /api/v1/holders/recoveries/{recovery_id}/finish ",
        # An enrolment session id is no path segment any more (X-MIP-Enrolment-Session).
        ("POST", f"/api/v1/enrolments/{SECRET}/frames"): "POST (no route) ",
        ("POST", "/api/v1/holders/sessions/unlock"): "POST /api/v1/holders/sessions/unlock ",
        ("GET", f"/api/v1/passports/{SECRET}"): "GET /api/v1/passports/{passport_id} ",
        ("GET", f"/api/v1/no/such/{SECRET}"): "GET (no route) 404",
        ("GET", f"/counter/{SECRET}.js"): "GET /counter/{path} 404",
        ("GET", "/counter/"): "GET /counter/{path} 200",
        ("GET", "/openapi.json"): "GET /openapi.json 200",
    }
    async with client(bare_app(tmp_path), raise_app_exceptions=False) as http:
        for method, url in requests:
            await http.request(method, url, headers={
                "Authorization": f"Bearer mipst_{SECRET}", "X-MIP-Holder-Session": SECRET})
    lines = access_lines.getvalue().splitlines()
    assert len(lines) == len(requests), lines
    for line, expected in zip(lines, requests.values(), strict=True):
        assert expected in line, (line, expected)
        assert line.startswith("127.0.0.1 ")
    assert SECRET not in access_lines.getvalue()
    assert "?" not in access_lines.getvalue()


def test_mip_serve_turns_uvicorns_access_log_off() -> None:
    source = (Path(__file__).resolve().parents[3] / "gateway" / "cli" / "serve.py").read_text()
    assert "access_log=False" in source and "access_log=True" not in source
