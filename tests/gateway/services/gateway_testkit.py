"""Test kit for the gateway service: one MIP devnet per session, the app on httpx.

    async def test_x(gw: GatewayClient) -> None:
        doctor = gw.staff("HospitalMSP", "doctor")      # headers with a staff token
        r = await gw.http.post("/api/v1/...", json={...}, headers=doctor)
        assert_error(r, 403, "wrong_role")

`gw.state` is the AppState (database, ledger, face engine); the face engine is loaded once
per session and shared. The devnet is tests/chaincode/mip's (`running_mip_devnet`), with one
Fabric identity per (org, role) named after the role, and the gateway's service identity.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[3]
MIP_TESTS = REPO_ROOT / "tests" / "chaincode" / "mip"
if str(MIP_TESTS) not in sys.path:
    sys.path.append(str(MIP_TESTS))

from gateway.core.config import Settings  # noqa: E402
from gateway.services.state import AppState  # noqa: E402

ORGS = ("HospitalMSP", "SchoolMSP", "PharmacyMSP")
LIVENESS_SEED = 1234


def make_settings(data_dir: Path, connection: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir, "connection": connection, "argon2_profile": "interactive",
        "liveness_seed": LIVENESS_SEED, "mode": "development", **overrides}
    return Settings(**values)


@dataclass
class GatewayClient:
    state: AppState
    http: httpx.AsyncClient
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, org: str, role: str) -> str:
        """A staff token for the identity named `role` in `org` (minted by the devnet kit)."""
        key = (org, role)
        if key not in self._tokens:
            self._tokens[key] = self.state.staff.issue(org, role, role)
        return self._tokens[key]

    def staff(self, org: str, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(org, role)}"}


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    return str(body["error"]["code"])


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the typed error `code` with HTTP `status`; returns the error body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert error_code(response) == code, response.text
    return dict(response.json()["error"])
