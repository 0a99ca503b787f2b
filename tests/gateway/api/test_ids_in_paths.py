"""No bearer-like secret in a URL (issue #16): a session id (holder or enrolment) travels in
its header only, so it never lands in browser history, a proxy's log or a Referer.

Every path parameter of the API is one of the ids below, each decided not to be a secret:
whoever learns it gains nothing without the staff token (or peer signature, or holder
session) the route also needs. A new path parameter fails here until it is added with its
reason (docs/gateway.md "Ids in URLs").
"""

from __future__ import annotations

import re

from fastapi import FastAPI

from gateway.api.router import api_router

NOT_SECRET = {
    "pseudonym": "an account of the caller's own org; deleting it needs the admin's token",
    "review_id": "decided only by a registrar of the enrolling org",
    "passport_id": "public on the ledger (personal: never logged, the access log templates it)",
    "org": "an MSP id",
    "grant_id": "revoked only with the holder's level-2 session",
    "credential_id": "read and revoked only with a staff token of the issuer's role",
    "key_id": "a counter key's public id; revoked by the admin",
    "dataset_id": "an analytics dataset's name",
    "recovery_id": "challenge and finish only for the staff member who started it; a share "
                   "only from a guardian's own level-2 session",
    "record_id": "read and shared only with the holder's session",
    "pickup_id": "every step only for the pharmacist who started it (others get 403)",
    "index": "a frame's position",
    "evaluation_id": "confirmed only with the confirm token under a member org's signature",
    "rotation_id": "a guardian rotation request names a public passport and public key; an "
                   "approval counts only when a guardian signed it",
}
PARAM = re.compile(r"\{([^}:]+)")


def api_paths() -> dict[str, list[str]]:
    app = FastAPI()
    app.include_router(api_router)  # FastAPI includes routers lazily: read the OpenAPI doc
    return {path: PARAM.findall(path) for path in app.openapi()["paths"]}


def test_every_path_parameter_is_a_known_non_secret() -> None:
    paths = api_paths()
    assert paths, "no routes found"
    params = {p for names in paths.values() for p in names}
    assert "session_id" not in params
    assert not any("session" in p for p in params), params
    assert params <= set(NOT_SECRET), params - set(NOT_SECRET)


def test_enrolment_routes_name_the_session_in_a_header() -> None:
    paths = api_paths()
    enrolment = sorted(p for p in paths if p.startswith("/api/v1/enrolments"))
    assert enrolment == [
        "/api/v1/enrolments", "/api/v1/enrolments/current",
        "/api/v1/enrolments/current/challenge", "/api/v1/enrolments/current/finish",
        "/api/v1/enrolments/current/frames", "/api/v1/enrolments/current/guardians",
        "/api/v1/enrolments/current/password", "/api/v1/enrolments/current/screening"], enrolment
    app = FastAPI()
    app.include_router(api_router)
    schemes = app.openapi()["components"]["securitySchemes"]
    assert any(s.get("in") == "header" and s.get("name") == "X-MIP-Enrolment-Session"
               for s in schemes.values()), schemes
