"""The gateway's own durable state (SQLite): staff tokens, sessions, wrapped holder secrets."""

from .db import Database, open_database

__all__ = ["Database", "open_database"]
