"""Files only the gateway's own user may read: its databases and its log.

SQLite creates a database with the process's umask (0644 usually), and its `-wal` and `-shm`
files with the database's mode. So the database is created 0600 here before SQLite opens it,
and an existing one (and its `-wal`/`-shm`) narrowed to 0600: the files hold holders' records,
sealed face references and the log of what was done.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

PRIVATE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _create_private(path: Path) -> None:
    # Never open (and close) a descriptor of an EXISTING database: closing any descriptor of a
    # file drops every POSIX lock this process holds on it, SQLite's included, so a connection
    # already open in this process would lose its locks and see (or write) the file unguarded.
    # A file this call creates has no connection yet; an existing one is only chmod-ed.
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE)
    except FileExistsError:
        os.chmod(path, PRIVATE)
        return
    os.close(fd)
    os.chmod(path, PRIVATE)  # whatever the umask


def prepare_sqlite_file(path: Path) -> None:
    """Before `sqlite3.connect(path)`: the database exists and is 0600, and so are its side
    files if a previous run left them."""
    _create_private(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, PRIVATE)


def open_private_append(path: Path) -> BinaryIO:
    """`open(path, "ab")` for a file that is created, or narrowed to, 0600."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, PRIVATE)
    os.fchmod(fd, PRIVATE)
    return os.fdopen(fd, "ab")
