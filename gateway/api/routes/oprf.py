"""The helper org's password-hardening OPRF service, for other org gateways only.

- `POST /oprf/evaluations`: a blinded element in, this org's evaluated element out, counted
  against the passport (423 `oprf_locked` past the budget).
- `POST /oprf/evaluations/{id}/confirmation`: the vault's confirm token; the passport's
  evaluations of that salt stop counting.

Both take a request signed by another member org's gateway (its Fabric service identity,
gateway/core/peer_auth.py): the signature covers the raw body, so the body is read and
checked before it is parsed.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, ValidationError

from chaincode.protocol.encoding import b64, unb64
from gateway.api.deps import StateDep
from gateway.api.models.oprf import ConfirmationIn, EvaluationIn, EvaluationOut
from gateway.services.password_oprf import BadOprfRequest, password_oprf_service

router = APIRouter(tags=["oprf"])
M = TypeVar("M", bound=BaseModel)


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BadOprfRequest(f"invalid body ({where}: {first.get('msg')})") from None


def _body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The body in the OpenAPI schema (the route reads it raw, to check the signature)."""
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": model.model_json_schema()}}}}


@router.post("/oprf/evaluations", response_model=EvaluationOut, status_code=201,
             openapi_extra=_body_schema(EvaluationIn))
async def evaluate(request: Request, state: StateDep) -> EvaluationOut:
    """Evaluate this org's OPRF key on a blinded element (another org's gateway only)."""
    service = password_oprf_service(state)
    raw = await request.body()
    caller = service.authenticate(request.headers, "POST", request.url.path, raw)
    body = _parse(EvaluationIn, raw)
    evaluation = service.evaluate(
        caller, service.own_org(), body.passport_id,
        unb64(body.salt, "salt", BadOprfRequest),
        unb64(body.blinded_element, "blinded_element", BadOprfRequest))
    return EvaluationOut(evaluation_id=evaluation.evaluation_id,
                         evaluated_element=b64(evaluation.element),
                         remaining=evaluation.remaining)


@router.post("/oprf/evaluations/{evaluation_id}/confirmation", status_code=204,
             openapi_extra=_body_schema(ConfirmationIn))
async def confirm(evaluation_id: Annotated[str, Path(min_length=1, max_length=64)],
                  request: Request, state: StateDep) -> Response:
    """The vault opened: stop counting this passport's evaluations of that salt."""
    service = password_oprf_service(state)
    raw = await request.body()
    caller = service.authenticate(request.headers, "POST", request.url.path, raw)
    body = _parse(ConfirmationIn, raw)
    service.confirm(caller, service.own_org(), evaluation_id,
                    unb64(body.token, "token", BadOprfRequest))
    return Response(status_code=204)
