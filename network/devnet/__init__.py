"""MIP devnet: a single-process Fabric 2.5 development network persisted to SQLite."""
