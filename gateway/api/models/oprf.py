"""Request and response models of the password-hardening OPRF service
(gateway/services/password_oprf.py). Bytes travel as standard base64."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

B64_32 = Field(min_length=44, max_length=44, pattern=r"^[A-Za-z0-9+/]{43}=$",
               description="32 bytes, standard base64")


class EvaluationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passport_id: str = Field(min_length=1, max_length=128)
    salt: str = Field(min_length=24, max_length=24, pattern=r"^[A-Za-z0-9+/]{22}==$",
                      description="the vault's 16-byte salt (the key is per salt)")
    blinded_element: str = B64_32


class EvaluationOut(BaseModel):
    evaluation_id: str
    evaluated_element: str = Field(description="this org's key times the blinded element")
    remaining: int = Field(description="unconfirmed evaluations left before the passport "
                                       "locks here")


class ConfirmationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = B64_32
