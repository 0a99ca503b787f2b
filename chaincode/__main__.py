"""`python -m chaincode`: serve the configured contract as chaincode-as-a-service."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from chaincode.shim.config import ConfigError, ServerConfig, load_contracts
from chaincode.shim.router import Router
from chaincode.shim.server import ChaincodeServer

_log = logging.getLogger("chaincode")


async def serve(config: ServerConfig) -> None:
    router = Router(load_contracts(config.contract_spec))
    server = ChaincodeServer(config, router)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    waiter = asyncio.create_task(server.wait())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    _log.info("shutting down")
    await server.stop(grace=2.0)
    for task in (waiter, stopper):
        task.cancel()


def _use_uvloop() -> None:
    """Serve on uvloop when installed (as devnet's own chaincode already does): grpc.aio hands
    every completed stream operation to the event loop, and uvloop does that hop in C
    (measured on devnet: chaincode CPU per submit 0.80 -> 0.71 ms). `MIP_EVENT_LOOP=asyncio`
    keeps the standard loop."""
    if os.environ.get("MIP_EVENT_LOOP", "auto").strip().lower() == "asyncio":
        return
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("CHAINCODE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = ServerConfig.from_env()
        _use_uvloop()
        asyncio.run(serve(config))
    except ConfigError as exc:
        print(f"chaincode: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
