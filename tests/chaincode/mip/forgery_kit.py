"""A dishonest member org, for the tests that attack the endorsement policies.

A dishonest org runs its own peer and its own chaincode server, so it can sign any read-write
set it likes with its peer's key: the contract's code is no defence, only the endorsement
policies the committing peers enforce are. `Forger` does exactly that with nothing but what
one org holds: its peer's signing key and certificate (from its own MSP folder) and one of its
users. It takes a real endorsement of a harmless query from its own peer as the template (so
the proposal, chaincode id and headers are authentic), replaces the results with a read-write
set written by hand, re-signs them as its peer (or as the peers of each org in `orgs`, to show
where a majority is enough) and submits the envelope through its own Gateway.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mip_testkit import CHAINCODE, MipClients

from gateway.fabric.signing import to_low_s
from gateway.fabric.transaction import Status, Transaction

_P: dict[str, Any] = {
    name: importlib.import_module(f"fabric_protos.{path}")
    for name, path in {
        "common": "common.common_pb2",
        "identities": "msp.identities_pb2",
        "proposal": "peer.proposal_pb2",
        "response": "peer.proposal_response_pb2",
        "transaction": "peer.transaction_pb2",
        "rwset": "ledger.rwset.rwset_pb2",
        "kv": "ledger.rwset.kvrwset.kv_rwset_pb2",
    }.items()
}

DOMAINS = {"HospitalMSP": "hospital.mip.local", "SchoolMSP": "school.mip.local",
           "PharmacyMSP": "pharmacy.mip.local"}

# What the committing peers answer a transaction whose endorsements do not satisfy a policy.
POLICY_FAILURE = "ENDORSEMENT_POLICY_FAILURE"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True)
class PeerKey:
    """An org's peer signing identity, read from the org's own MSP folder."""

    serialized: bytes
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load(cls, data_dir: Path, org: str) -> PeerKey:
        domain = DOMAINS[org]
        msp = data_dir / "organizations" / "peerOrganizations" / domain / "peers" / \
            f"peer0.{domain}" / "msp"
        cert = next((msp / "signcerts").glob("*.pem")).read_bytes()
        key = serialization.load_pem_private_key((msp / "keystore" / "priv_sk").read_bytes(),
                                                 password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        serialized = _P["identities"].SerializedIdentity(mspid=org, id_bytes=cert)
        return cls(serialized.SerializeToString(), key)

    def endorse(self, prp: bytes) -> Any:
        signature = self.key.sign(prp + self.serialized, ec.ECDSA(hashes.SHA256()))
        return _P["response"].Endorsement(endorser=self.serialized,
                                          signature=to_low_s(signature, ec.SECP256R1()))


@dataclass
class PrivateWrites:
    """Hashed writes to one collection (the ledger sees only hashes; so does validation)."""

    collection: str
    writes: Mapping[str, bytes | None] = field(default_factory=dict)


def read_write_set(writes: Mapping[str, bytes | None],
                   metadata: Mapping[str, Mapping[str, bytes]] | None = None,
                   private: Sequence[PrivateWrites] = ()) -> bytes:
    """A TxReadWriteSet with blind writes (no reads: nothing for MVCC to refuse) to `mip`.

    A value of None deletes the key; `metadata` sets key metadata (e.g. a key-level
    VALIDATION_PARAMETER)."""
    kv = _P["kv"]
    kvrw = kv.KVRWSet(
        writes=[kv.KVWrite(key=k, is_delete=v is None, value=v or b"")
                for k, v in writes.items()],
        metadata_writes=[
            kv.KVMetadataWrite(key=k, entries=[kv.KVMetadataEntry(name=n, value=v)
                                               for n, v in entries.items()])
            for k, entries in (metadata or {}).items()
        ],
    )
    collections = [
        _P["rwset"].CollectionHashedReadWriteSet(
            collection_name=p.collection,
            hashed_rwset=kv.HashedRWSet(hashed_writes=[
                kv.KVWriteHash(key_hash=sha256(k.encode()), is_delete=v is None,
                               value_hash=b"" if v is None else sha256(v))
                for k, v in p.writes.items()
            ]).SerializeToString(),
        )
        for p in private
    ]
    rwset = _P["rwset"]
    return bytes(rwset.TxReadWriteSet(
        data_model=rwset.TxReadWriteSet.KV,
        ns_rwset=[rwset.NsReadWriteSet(namespace=CHAINCODE, rwset=kvrw.SerializeToString(),
                                       collection_hashed_rwset=collections)],
    ).SerializeToString())


@dataclass
class Forger:
    """`orgs`' peers sign a hand-written read-write set; a user of `orgs[0]` submits it."""

    mip: MipClients
    orgs: tuple[str, ...]

    async def submit(self, writes: Mapping[str, bytes | None] | None = None, *,
                     metadata: Mapping[str, Mapping[str, bytes]] | None = None,
                     private: Sequence[PrivateWrites] = ()) -> Status:
        submitter = self.orgs[0]
        contract = await self.mip.client(submitter, None)
        # The template: a real endorsement of a harmless query by the forger's own peer.
        template = await contract.new_proposal(
            "Config:Get", ["vouch_k"], endorsing_orgs=[submitter]).endorse()
        envelope = self._rewrite(template.envelope,
                                 read_write_set(writes or {}, metadata, private))
        forged = Transaction(template._session, template.transaction_id, envelope)
        submitted = await forged.submit()
        return await submitted.status()

    def _rewrite(self, envelope: Any, results: bytes) -> Any:
        common, proposal, response, transaction = (
            _P["common"], _P["proposal"], _P["response"], _P["transaction"])
        payload = common.Payload.FromString(envelope.payload)
        tx = transaction.Transaction.FromString(payload.data)
        cap = transaction.ChaincodeActionPayload.FromString(tx.actions[0].payload)
        prp = response.ProposalResponsePayload.FromString(cap.action.proposal_response_payload)
        action = proposal.ChaincodeAction.FromString(prp.extension)
        action.results = results
        action.response.payload = b"{}"
        prp.extension = action.SerializeToString()
        prp_bytes = prp.SerializeToString()
        cap.action.proposal_response_payload = prp_bytes
        del cap.action.endorsements[:]
        data_dir = self.mip.network.data_dir
        cap.action.endorsements.extend(PeerKey.load(data_dir, org).endorse(prp_bytes)
                                       for org in self.orgs)
        tx.actions[0].payload = cap.SerializeToString()
        payload.data = tx.SerializeToString()
        return common.Envelope(payload=payload.SerializeToString())
