"""Key-level endorsement policies, as fabric-chaincode-go's `pkg/statebased`.

The policy is a SignaturePolicyEnvelope "all of these orgs" (NOutOf N of N SignedBy rules,
one MSPRole principal per org, orgs sorted so the bytes are deterministic). Store it with
`stub.set_state_validation_parameter(key, policy.policy())`.
"""

from __future__ import annotations

import enum

from chaincode.shim._protos import DecodeError, msp_principal_pb2, policies_pb2
from chaincode.shim.errors import ShimError


class RoleType(enum.Enum):
    MEMBER = "MEMBER"
    PEER = "PEER"


_ROLE_TO_MSP = {
    RoleType.MEMBER: msp_principal_pb2.MSPRole.MEMBER,
    RoleType.PEER: msp_principal_pb2.MSPRole.PEER,
}


class PolicyError(ShimError, ValueError):
    """Policy bytes that do not parse, or an unsupported role."""


class KeyEndorsementPolicy:
    """Build or edit the set of orgs whose endorsement a key requires."""

    def __init__(self, policy: bytes | None = None) -> None:
        self._orgs: dict[str, int] = {}
        if policy:
            try:
                envelope = policies_pb2.SignaturePolicyEnvelope.FromString(policy)
                for identity in envelope.identities:
                    if identity.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE:
                        role = msp_principal_pb2.MSPRole.FromString(identity.principal)
                        self._orgs[role.msp_identifier] = role.role
            except DecodeError:
                raise PolicyError("error unmarshaling to SignaturePolicy") from None

    def add_orgs(self, role: RoleType | str, *orgs: str) -> None:
        try:
            msp_role = _ROLE_TO_MSP[RoleType(role)]
        except ValueError:
            raise PolicyError(f"role type {role!r} does not exist") from None
        for org in orgs:
            if not org:
                raise PolicyError("an MSP id must not be empty")
            self._orgs[org] = msp_role

    def del_orgs(self, *orgs: str) -> None:
        for org in orgs:
            self._orgs.pop(org, None)

    def list_orgs(self) -> list[str]:
        return sorted(self._orgs)

    def policy(self) -> bytes:
        """The SignaturePolicyEnvelope bytes (deterministic for a given set of orgs)."""
        orgs = self.list_orgs()
        envelope = policies_pb2.SignaturePolicyEnvelope(
            version=0,
            rule=policies_pb2.SignaturePolicy(
                n_out_of=policies_pb2.SignaturePolicy.NOutOf(
                    n=len(orgs),
                    rules=[policies_pb2.SignaturePolicy(signed_by=i) for i in range(len(orgs))],
                )
            ),
            identities=[
                msp_principal_pb2.MSPPrincipal(
                    principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
                    principal=msp_principal_pb2.MSPRole(
                        role=self._orgs[org],
                        msp_identifier=org,
                    ).SerializeToString(),
                )
                for org in orgs
            ],
        )
        return envelope.SerializeToString(deterministic=True)
