"""MIP chaincode: a chaincode-as-a-service shim over Fabric's protos, and the contracts."""
