"""Block 0: a CONFIG transaction naming the channel's orgs and their MSP roots.

Deliberately simplified: the ConfigGroup tree has the Application and Orderer groups with one
group per org holding its MSP value (FabricMSPConfig: name, root certs, TLS root certs and the
revocation list of `msp/crls/` at creation, as configtxgen writes them; NodeOU config omitted); no
policies, capabilities or consensus values. Devnet never updates it: later CRLs are read from
`msp/crls/` by the running devnet's MSPs (network/devnet/msp.py).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from network.devnet._protos import common_pb2, configtx_pb2, msp_config_pb2, timestamp_pb2
from network.devnet.messages import compute_txid
from network.devnet.orgs import OrgSpec


def _pems(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob("*.pem"))] if folder.is_dir() else []


def _org_group(msp_id: str, msp_dir: Path) -> Any:
    fabric = msp_config_pb2.FabricMSPConfig(
        name=msp_id, root_certs=_pems(msp_dir / "cacerts"),
        tls_root_certs=_pems(msp_dir / "tlscacerts"),
        revocation_list=_pems(msp_dir / "crls"))
    value = msp_config_pb2.MSPConfig(type=0, config=fabric.SerializeToString())
    group = configtx_pb2.ConfigGroup()
    group.values["MSP"].value = value.SerializeToString()
    return group


def genesis_envelope(
    channel: str,
    peer_orgs: Sequence[tuple[OrgSpec, Path]],
    orderer_org: tuple[OrgSpec, Path],
    signer: Any,
) -> bytes:
    """A signed CONFIG envelope; `*_orgs` pair each org with its org-level msp/ folder."""
    config = configtx_pb2.Config(sequence=0)
    app = config.channel_group.groups["Application"]
    for org, msp_dir in peer_orgs:
        app.groups[org.msp_id].CopyFrom(_org_group(org.msp_id, msp_dir))
    orderer = config.channel_group.groups["Orderer"]
    orderer.groups[orderer_org[0].msp_id].CopyFrom(_org_group(*(orderer_org[0].msp_id,
                                                                orderer_org[1])))
    nonce = os.urandom(24)
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    chdr = common_pb2.ChannelHeader(type=common_pb2.HeaderType.CONFIG, version=1,
                                    channel_id=channel, timestamp=ts,
                                    tx_id=compute_txid(nonce, signer.serialized))
    shdr = common_pb2.SignatureHeader(creator=signer.serialized, nonce=nonce)
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=chdr.SerializeToString(),
                                 signature_header=shdr.SerializeToString()),
        data=configtx_pb2.ConfigEnvelope(config=config).SerializeToString())
    payload_bytes = payload.SerializeToString()
    return common_pb2.Envelope(payload=payload_bytes,
                               signature=signer.sign(payload_bytes)).SerializeToString()
