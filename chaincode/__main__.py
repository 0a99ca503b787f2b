"""`python -m chaincode`: serve the configured contract as chaincode-as-a-service."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from chaincode.shim.completion_loop import CompletionQueueEventLoop
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


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("CHAINCODE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = ServerConfig.from_env()
        # The server's own loop: it waits on gRPC's completion queue (shim/completion_loop.py).
        with asyncio.Runner(loop_factory=CompletionQueueEventLoop) as runner:
            runner.run(serve(config))
    except ConfigError as exc:
        print(f"chaincode: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
