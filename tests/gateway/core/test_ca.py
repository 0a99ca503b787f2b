"""gateway/core/ca.py: the gateway's one door to the org CAs, with errors of its own (callers
never catch devnet's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.ca import CAError, CertificateAuthority, IdentityExists, LocalCA, local_ca
from network.devnet import pki


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    data_dir = tmp_path_factory.mktemp("ca")
    pki.generate_network(data_dir)
    return local_ca(data_dir / "connection.json")


def test_add_read_revoke(ca: LocalCA) -> None:
    authority: CertificateAuthority = ca
    authority.add_identity("SchoolMSP", "erin", {"mip.role": "auditor"})
    assert authority.identity_attrs("SchoolMSP", "erin")["mip.role"] == "auditor"
    with pytest.raises(IdentityExists):
        authority.add_identity("SchoolMSP", "erin", {"mip.role": "auditor"})
    done = authority.revoke_identity("SchoolMSP", "erin")
    assert done.msp_id == "SchoolMSP" and done.newly_revoked and done.crl.is_file()
    assert authority.revoke_identity("SchoolMSP", "erin").newly_revoked is False


def test_refusals_are_ca_errors(ca: LocalCA, tmp_path: Path) -> None:
    with pytest.raises(CAError):
        ca.identity_attrs("SchoolMSP", "nobody")
    with pytest.raises(CAError):
        ca.add_identity("NoSuchMSP", "x", {})
    with pytest.raises(CAError):
        ca.add_identity("SchoolMSP", "bad name!", {})
    with pytest.raises(CAError):
        LocalCA(tmp_path).revoke_identity("SchoolMSP", "erin")  # no CA material here
