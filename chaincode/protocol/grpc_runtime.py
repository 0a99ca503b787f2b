"""The gRPC transport every MIP process runs on: grpcio's poller-thread I/O, not its EventEngine.

grpcio 1.85 sends client and server socket I/O (TCP and Unix sockets) through its EventEngine by
default: a thread pool polls the sockets and hands each event on to the thread that waits on the
completion queue, which then wakes the asyncio loop. With the experiments `event_engine_client`
and `event_engine_listener` switched off, grpcio's long-standing iomgr transport is used instead
and the completion-queue thread polls the sockets itself, one thread hop fewer per message. In
paired runs of scripts/bench_ledger.py on the 2-core machine that took about 10 % off the CPU
that devnet, the chaincode server and the client each spend per submit and per evaluate
(docs/ledger.md, Performance).

grpcio reads GRPC_EXPERIMENTS once, when `grpc` is first imported, so the packages that speak gRPC
(chaincode, network, gateway) call `use_poller_transport()` from their `__init__`, before any of
their modules imports grpc. A GRPC_EXPERIMENTS the operator set is left alone. It lives in
`chaincode.protocol`, the one part of `chaincode` the gateway imports, because all three packages
call it and it needs nothing but `os`.
"""

from __future__ import annotations

import os

POLLER_TRANSPORT_EXPERIMENTS = "-event_engine_client,-event_engine_listener"


def use_poller_transport() -> None:
    """Ask grpcio (when it is first imported in this process) for its poller-thread transport."""
    os.environ.setdefault("GRPC_EXPERIMENTS", POLLER_TRANSPORT_EXPERIMENTS)
