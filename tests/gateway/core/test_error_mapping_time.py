"""A ledger call refused for time becomes 503 `clock_skew`, from the peers' time window
(gateway.fabric.ClockSkew) and from the contract's own bound (MipError `clock_skew`)."""

from __future__ import annotations

import grpc
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gateway.core.errors import install_error_handlers
from gateway.fabric import ClockSkew, GatewayError
from gateway.fabric.errors import EndorseError, ErrorDetail, _combined


def _client(error: Exception) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/call")
    async def call() -> None:
        raise error

    return TestClient(app, raise_server_exceptions=False)


def test_peer_time_window_refusal_is_clock_skew() -> None:
    refused = _combined(EndorseError, ClockSkew)(
        "failed to endorse transaction, see attached details for more info",
        code=grpc.StatusCode.ABORTED,
        details=(ErrorDetail("peer0", "HospitalMSP", "request unauthorized due to incorrect "
                             "timestamp ..."),))
    r = _client(refused).get("/call")
    assert r.status_code == 503 and r.json()["error"]["code"] == "clock_skew"
    # Any other ledger failure stays ledger_unavailable.
    r = _client(GatewayError("boom")).get("/call")
    assert r.status_code == 503 and r.json()["error"]["code"] == "ledger_unavailable"


def test_contract_clock_skew_is_503() -> None:
    from gateway.fabric import ChaincodeError

    refused = _combined(EndorseError, ChaincodeError)("x", code=grpc.StatusCode.ABORTED)
    assert isinstance(refused, ChaincodeError)
    refused.chaincode_status, refused.chaincode_message = 503, "clock_skew: dated 300 s ahead"
    r = _client(refused).get("/call")
    assert r.status_code == 503
    assert r.json()["error"] == {"code": "clock_skew", "message": "dated 300 s ahead"}
