"""The chaincode definition MIP is deployed with (its contracts and its endorsement policy), in
one place for the contract, devnet, the gateway's CLI (which launches devnet and
`scripts/network.sh` with them, and so imports no contract code), `scripts/network.sh`
(checked by a test) and the benchmarks.

Trust model (docs/chaincode.md, "Threat model"): any ONE member org may be dishonest: it runs
its own peer and chaincode server and can sign any read-write set. Whatever a policy lets one
org endorse alone, that org can write. So:

- the chaincode-level policy is a majority of the member orgs' peers: every public key is
  created under it (a key-level policy only applies once its key exists), and every public key
  without a key-level policy stays under it, so an honest org's chaincode is always among the
  endorsers of a public write;
- no public record carries a key-level policy that one org satisfies alone (that would replace
  the majority for that key); the two key-level policies kept are stricter than a majority:
  settings need every member org, a prescription's fill counter its issuer org AND PharmacyMSP;
- a private data collection's endorsement policy is its data holder's org alone: the only
  transactions endorsed by one org are those that write nothing but that collection
  (`Credential:Store`, `Credential:Purge`), and what they write counts only where it matches a
  hash that a majority committed on the public ledger.
"""

from __future__ import annotations

from chaincode.protocol.orgs import HOSPITAL, PHARMACY, SCHOOL

# Every MIP contract, as `CHAINCODE_CONTRACT` and devnet's `--contract` take them
# (`module:Class`, comma separated): names only, so importing this loads no contract code. The
# first is the default contract for unqualified transaction names.
CONTRACT_SPEC = ",".join(
    [
        "chaincode.mip.passports:PassportContract",
        "chaincode.mip.accounts:AccountContract",
        "chaincode.mip.config:ConfigContract",
        "chaincode.mip.credentials:CredentialContract",
        "chaincode.mip.grants:GrantContract",
        "chaincode.mip.access:AccessContract",
        "chaincode.mip.dispense:PharmacyContract",
        "chaincode.mip.research:ResearchContract",
        "chaincode.mip.verifier_keys:LinkageContract",
        "chaincode.mip.portraits:PortraitContract",
        "chaincode.mip.screening:ScreeningContract",
    ]
)

# Orgs in the order policies name them (Fabric evaluates principals in order; keep it stable).
POLICY_ORGS = (HOSPITAL, SCHOOL, PHARMACY)
MAJORITY = len(POLICY_ORGS) // 2 + 1

# Fabric's policy language, as `peer lifecycle chaincode approveformyorg --signature-policy`
# and devnet's `--policy` take it.
CHAINCODE_POLICY = (
    f"OutOf({MAJORITY}, " + ", ".join(f"'{org}.peer'" for org in POLICY_ORGS) + ")"
)
