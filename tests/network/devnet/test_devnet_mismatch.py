"""Endorsements that disagree are refused, as the Fabric gateway refuses them."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from devnet_client import TestClient, error_details, start_devnet

HERE = Path(__file__).resolve().parent


async def test_non_deterministic_results_aborted(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The chaincode subprocess inherits PYTHONPATH, so it can import the test contract.
    monkeypatch.setenv("PYTHONPATH", str(HERE))
    net = await start_devnet(tmp_path / "dn", contract="devnet_random_contract:RandomContract")
    client = TestClient(net.data_dir, net.port)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.endorse(client.proposal("PutRandom", "k1"))
        assert info.value.code() == grpc.StatusCode.ABORTED
        assert "failed to collect enough transaction endorsements" in (info.value.details() or "")
        messages = [d.message for d in error_details(info.value)]
        assert "ProposalResponsePayloads do not match" in messages
        # A single named endorser has nothing to disagree with.
        env = await client.endorse(client.proposal("PutRandom", "k2"), orgs=["HospitalMSP"])
        assert env.payload
    finally:
        await client.close()
        await net.stop()
