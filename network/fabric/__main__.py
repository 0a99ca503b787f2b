"""`python -m network.fabric <command>`: the Python steps of scripts/network.sh.

  crypto STATE [--orderers 1|3]                 crypto material (cryptogen layout)
  render TEMPLATE OUT NAME=VALUE...             fill a `${NAME}` config template
  package OUT --label L --address A [--tls-org MSP --tls-host H...]   CCaaS package; prints id
  profile STATE --endpoint MSP=host:port... [--chaincode N --file F]   write STATE/F
  wait-ready PROFILE [--timeout S]              until every org's Gateway can endorse
  peer-config CORE_YAML OUT_DIR < `peer version`  OUT_DIR/core.yaml for that release; prints it
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.fabric import ready  # the client-side readiness check lives with the client
from network.devnet.pki import PKIError
from network.fabric import crypto, package, profile, render, version


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"{what} expects NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m network.fabric")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("crypto", help="generate crypto material")
    p.add_argument("state", type=Path)
    p.add_argument("--orderers", type=int, default=1, help="orderer nodes (1 or 3)")
    p = sub.add_parser("render", help="render a config template")
    p.add_argument("template", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("values", nargs="*", metavar="NAME=VALUE")
    p = sub.add_parser("package", help="build a CCaaS chaincode package, print its id")
    p.add_argument("out", type=Path)
    p.add_argument("--label", required=True)
    p.add_argument("--address", required=True, help="host:port the peer dials")
    p.add_argument("--dial-timeout", default="10s")
    p.add_argument("--state", type=Path, help="state dir (needed with --tls-org)")
    p.add_argument("--tls-org", help="MSP id whose TLS CA issues the chaincode TLS pairs")
    p.add_argument("--tls-host", action="append", default=[], help="chaincode server SANs")
    p = sub.add_parser("profile", help="write connection.json")
    p.add_argument("state", type=Path)
    p.add_argument("--endpoint", action="append", default=[], metavar="MSP=HOST:PORT")
    p.add_argument("--channel", default="mipchannel")
    p.add_argument("--chaincode", default="mip")
    p.add_argument("--file", default="connection.json", help="file name in STATE")
    p = sub.add_parser("wait-ready", help="wait until each org's Gateway can endorse")
    p.add_argument("profile", type=Path)
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--org", action="append", default=[])
    p = sub.add_parser("peer-config", help="core.yaml for the Fabric release on stdin")
    p.add_argument("core_yaml", type=Path)
    p.add_argument("out_dir", type=Path)
    return parser


def _run(args: argparse.Namespace) -> int:
    if args.command == "crypto":
        crypto.generate(args.state, orderers=args.orderers)
    elif args.command == "render":
        render.render_file(args.template, _pairs(args.values, "render"), args.out)
    elif args.command == "package":
        tls = None
        if args.tls_org:
            if args.state is None or not args.tls_host:
                raise SystemExit("--tls-org needs --state and at least one --tls-host")
            tls = crypto.chaincode_tls(args.state, args.tls_org, args.tls_host)
        print(
            package.build_package(
                args.out, args.label, args.address, tls=tls, dial_timeout=args.dial_timeout
            )
        )
    elif args.command == "profile":
        print(profile.write_profile(args.state, _pairs(args.endpoint, "--endpoint"),
                                    channel=args.channel, chaincode=args.chaincode,
                                    filename=args.file))
    elif args.command == "wait-ready":
        took = asyncio.run(ready.wait_endorsable(args.profile, args.org, timeout=args.timeout))
        print(f"gateway endorses on every org after {took:.1f}s")
    elif args.command == "peer-config":
        found = version.write_peer_config(args.core_yaml, sys.stdin.read(), args.out_dir)
        print(".".join(str(part) for part in found))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (
        render.TemplateError,
        package.PackageError,
        profile.ProfileError,
        crypto.UnknownOrgError,
        crypto.OrdererCountError,
        ready.NotReadyError,
        version.FabricVersionError,
        PKIError,
        OSError,
    ) as exc:
        print(f"network.fabric {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
