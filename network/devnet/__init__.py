"""MIP devnet: a single-process Fabric 2.5 development network persisted to SQLite.

Hand-written because Fabric's peer and orderer exist only as Go binaries (Docker images) and no
Python implementation of them exists; devnet speaks their wire protocols so that the same
client and chaincode run against it and against real Fabric (scripts/network.sh).
"""
