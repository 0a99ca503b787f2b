"""The MIP contract: passports, isolated accounts, credentials, grants, dispensing, audit.

See docs/chaincode.md for the data model, key layout, endorsement model and threat model.
"""
