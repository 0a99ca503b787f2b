"""The MIP contract: passports, isolated accounts, credentials, grants, dispensing, audit.

See docs/chaincode.md for the data model, key layout, endorsement model and threat model. The
contracts it is deployed with (`CONTRACT_SPEC`) and its endorsement policy are in
`chaincode/protocol/deployment.py`, which the gateway and devnet read without loading this
package.
"""
