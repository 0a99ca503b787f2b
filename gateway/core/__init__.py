"""The gateway's foundations: settings, typed API errors, logging, staff authentication."""
