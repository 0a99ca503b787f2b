"""The MIP contract: passports, isolated accounts, credentials, grants, dispensing, audit.

See docs/chaincode.md for the data model, key layout, endorsement model and threat model.
"""

# Every MIP contract, as `CHAINCODE_CONTRACT` takes them (`module:Class`, comma separated).
# The first is the default contract for unqualified transaction names.
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
    ]
)
