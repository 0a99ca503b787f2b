"""Fabric identity strings of the test identities, and dataset admissions made with them.

`client_id(network, org, role)` is what the chaincode's `caller(ctx).client_id` sees for
`mip.client(org, role)` (Fabric cid's `x509::<subject>::<issuer>`), computed from the
identity's certificate in the network's connection.json.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509
from mip_testkit import MipClients, MipNetwork, user_name

from chaincode.protocol.fabric_identity import go_distinguished_name
from gateway.fabric.connection import ConnectionProfile


def client_id(network: MipNetwork, org: str, role: str | None) -> str:
    profile = ConnectionProfile.load(network.connection)
    user = profile.org(org).users[user_name(role)]
    cert = x509.load_pem_x509_certificate(user.cert_path.read_bytes())
    return f"x509::{go_distinguished_name(cert.subject)}::{go_distinguished_name(cert.issuer)}"


async def admit(mip: MipClients, dataset_id: str, owner: str, org: str,
                role: str = "researcher") -> dict[str, Any]:
    """The owner org's admin admits `mip.client(org, role)` to debit `dataset_id`."""
    admin = await mip.client(owner, "admin")
    return dict(json.loads(await admin.submit(
        "Research:AdmitResearcher", [dataset_id, org, client_id(mip.network, org, role)])))
