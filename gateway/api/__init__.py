"""HTTP API: dependencies (`deps`), one router module per area (`routes/`)."""
