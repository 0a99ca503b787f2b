"""The real Fabric 2.5 network for local use, driven by scripts/network.sh.

The bash script runs Fabric's own binaries (peer, orderer, configtxgen, osnadmin); the small
Python helpers here do what bash does badly: crypto material and connection.json (shared with
devnet through `network.devnet.pki`), rendering the configtx template, building a reproducible
chaincode-as-a-service package, and waiting until the Gateway can endorse.
"""
