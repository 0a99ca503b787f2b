"""MIP networks: devnet (embedded, Fabric wire protocols) and the real Fabric consortium."""
