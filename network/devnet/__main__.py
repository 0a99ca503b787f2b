"""`python -m network.devnet up | identity add | identity revoke | status` (docs/ledger.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from network.devnet.config import DEFAULT_CONTRACT, DEFAULT_POLICY, ConfigError, DevnetConfig

# What `up --contract` takes by name, with the endorsement policy each is deployed under. The
# chaincode devnet serves is named `mip`, so a new data dir serves the MIP contracts under
# MIP's policy (chaincode/protocol/deployment.py), as `scripts/network.sh deploy` does on Fabric;
# the asset-transfer sample (the ledger's own tests and benchmarks) only when asked for.
DEFAULT_NAMED_CONTRACT = "mip"


def named_contracts() -> dict[str, tuple[str, str]]:
    from chaincode.protocol.deployment import CHAINCODE_POLICY, CONTRACT_SPEC

    return {"mip": (CONTRACT_SPEC, CHAINCODE_POLICY),
            "asset": (DEFAULT_CONTRACT, DEFAULT_POLICY)}


def _attrs(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--attr expects NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def _contract_and_policy(args: argparse.Namespace, saved: DevnetConfig | None
                         ) -> tuple[str | None, str | None]:
    """The contract spec and policy to override devnet.json with (None: keep what it says).

    A data dir that already has a devnet.json keeps its contract unless --contract is given;
    a new one gets the MIP contracts. A named contract brings its policy unless --policy."""
    contract: str | None = args.contract
    if contract is None and saved is None:
        contract = DEFAULT_NAMED_CONTRACT
    policy: str | None = args.policy
    if contract is not None and ":" not in contract:
        named = named_contracts()
        if contract not in named:
            raise ConfigError(f"--contract must be one of {sorted(named)} or module:Class[,...], "
                              f"got {contract!r}")
        contract, named_policy = named[contract]
        policy = policy or named_policy
    return contract, policy


def _load_config(args: argparse.Namespace) -> DevnetConfig:
    data = Path(args.data).resolve()
    saved = DevnetConfig.load(data)
    base = saved or DevnetConfig(data_dir=data)
    contract, policy = _contract_and_policy(args, saved)
    return base.with_overrides(
        port=args.port, host=args.host, mtls=True if args.mtls else None,
        chaincode_address=args.chaincode_address, contract=contract, policy=policy,
        collections=str(Path(args.collections).resolve()) if args.collections else None,
        batch_timeout_ms=args.batch_timeout_ms, batch_size=args.batch_size,
        time_window_s=args.time_window_s)


async def _up(config: DevnetConfig) -> int:
    from network.devnet.server import Devnet

    devnet = Devnet(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await devnet.start()
    print(f"devnet ready on {config.host}:{devnet.port} (data {config.data_dir})", flush=True)
    stopper = asyncio.create_task(stop.wait())
    failure = asyncio.create_task(_watch(devnet))
    done, _ = await asyncio.wait({stopper, failure}, return_when=asyncio.FIRST_COMPLETED)
    for task in (stopper, failure):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await devnet.stop()
    return 1 if failure in done else 0


async def _watch(devnet: object) -> None:
    """Return when the committer has failed (devnet must not keep accepting transactions)."""
    while True:
        orderer = getattr(devnet, "orderer", None)
        if orderer is not None and orderer.failed is not None:
            return
        await asyncio.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m network.devnet")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the devnet")
    up.add_argument("--data", required=True)
    up.add_argument("--port", type=int)
    up.add_argument("--host")
    up.add_argument("--mtls", action="store_true")
    up.add_argument("--chaincode-address")
    up.add_argument("--contract",
                    help="mip (the MIP contracts under MIP's majority policy; the default for a "
                         "new data dir), asset (the asset-transfer sample under MAJORITY "
                         "Endorsement), or module:Class[,module:Class...]")
    up.add_argument("--policy", help="chaincode endorsement policy (default: the named "
                                     "contract's, else devnet.json's)")
    up.add_argument("--collections")
    up.add_argument("--batch-timeout-ms", type=float)
    up.add_argument("--batch-size", type=int)
    up.add_argument("--time-window-s", type=float,
                    help="refuse proposals whose timestamp is further than this from devnet's "
                         "clock (default 900, Fabric 3.x's peer.authentication.timewindow)")
    ident = sub.add_parser("identity", help="manage identities")
    isub = ident.add_subparsers(dest="action", required=True)
    add = isub.add_parser("add", help="enrol a new identity (accepted without restart)")
    add.add_argument("--data", required=True)
    add.add_argument("--org", required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--attr", action="append", default=[])
    add.add_argument("--ou", default="client")
    rev = isub.add_parser("revoke", help="put an identity's certificate on its org CA's CRL "
                          "(a running devnet applies it within 0.1 s)")
    rev.add_argument("--data", required=True)
    rev.add_argument("--org", required=True)
    rev.add_argument("--name", required=True)
    st = sub.add_parser("status", help="print ledger height and transaction counts")
    st.add_argument("--data", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    if args.command == "up":
        try:
            config = _load_config(args)
        except ConfigError as exc:
            print(f"devnet: {exc}", file=sys.stderr)
            return 2
        from network.devnet.event_loop import run

        return run(_up(config))
    if args.command == "identity":
        from network.devnet import pki

        try:
            if args.action == "revoke":
                done = pki.revoke_identity(Path(args.data), args.org, args.name)
                state = "revoked" if done.newly_revoked else "already revoked"
                print(f"{state}: serial {done.serial_number:x} on {done.crl}")
                return 0
            folder = pki.add_identity(Path(args.data), args.org, args.name, _attrs(args.attr),
                                      ou=args.ou)
        except pki.PKIError as exc:
            print(f"devnet: {exc}", file=sys.stderr)
            return 1
        print(folder)
        return 0
    from network.devnet.config import LEDGER_FILE
    from network.devnet.store import Store

    path = Path(args.data) / LEDGER_FILE
    if not path.is_file():
        print(f"devnet: no ledger at {path}", file=sys.stderr)
        return 1
    store = Store(path)
    try:
        total, valid = store.tx_count()
        print(f"height {store.height()} transactions {total} valid {valid}")
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
