#!/usr/bin/env python3
"""Latency of the MIP contract's transactions on devnet, and the one-fill dispense race.

Starts a fresh devnet serving the MIP contracts (`chaincode.protocol.deployment.CONTRACT_SPEC`)
under the MIP chaincode policy (`CHAINCODE_POLICY` there, a majority of the three orgs)
with the MIP private data collections, exactly as tests/chaincode/mip does, and mints one
identity per (org, role) it needs. Then, through the project's Gateway client
(gateway.fabric), as the identities the contract expects (holder requests signed by the
holder's own Ed25519 key, gateway.holder.keys.sign_holder_request), it runs N sequential
rounds (after `--warmup` untimed ones) of one holder's life:

    Passport:Register (registrar)  ->  Account:Open (gateway, anoncreds KYC presentation)
    ->  Credential:Issue + Credential:Store (doctor; Store endorsed by the issuer org alone)
    ->  Grant:Create (gateway, account-signed, to PharmacyMSP)  ->  Access:Request
    (pharmacist)  ->  Access:Read (evaluate on the issuer org's peer)  ->  Pharmacy:Dispense
    (pharmacist, a registered counter key's attestation; endorsed by HospitalMSP and
    PharmacyMSP)  ->  Grant:Revoke (gateway, account-signed)  ->  Research:Debit (a researcher
    the dataset's owner org admitted)

and times each call alone (a submit: endorse + submit + wait for commit). Client-side work a
call needs (the KYC credential and its presentation, signing a request, an attestation) is
done before its timer starts. It prints the median and p95 in ms per transaction and the mean
CPU ms each process spent in it (devnet, its chaincode subprocess, this client; utime+stime from
/proc, as scripts/bench_ledger.py measures them: on a shared machine that figure moves much
less than wall-clock latency). Last, 50 concurrent dispenses of one one-fill prescription
(`--race`): exactly one must succeed; the others' invalidation codes (or chaincode error
codes) are counted, and the exit status is 1 if not exactly one fill was taken.

    python scripts/bench_mip.py [--n 20] [--warmup 1] [--race 50] [--json PATH]

The last line printed is the summary as one JSON object (machine, policy, figures);
`--json PATH` also writes it with the raw samples (ms per call, per transaction).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_ledger import CpuMeter, start_devnet  # noqa: E402
from bench_meta import RunMeta, median, percentile  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: E402

from chaincode.mip.kyc_credentials import (  # noqa: E402
    check_issuer_documents,
    check_revocation_documents,
    verify_account_presentation,
)
from chaincode.protocol.canonical import canonical_json  # noqa: E402
from chaincode.protocol.credential_terms import public_terms, salted_hash  # noqa: E402
from chaincode.protocol.deployment import CHAINCODE_POLICY, CONTRACT_SPEC  # noqa: E402
from chaincode.protocol.fabric_identity import go_distinguished_name  # noqa: E402
from chaincode.protocol.kyc import account_nonce  # noqa: E402
from gateway.fabric import ChaincodeError, CommitError, Contract, Gateway  # noqa: E402
from gateway.fabric.connection import ConnectionProfile  # noqa: E402
from gateway.holder.keys import sign_holder_request  # noqa: E402
from gateway.kyc.issuer import KycIssuer  # noqa: E402
from gateway.kyc.wallet import KycHolder  # noqa: E402
from gateway.services.counter_key import CounterKey  # noqa: E402
from network.devnet.event_loop import loop_name, run  # noqa: E402
from network.devnet.pki import add_identity  # noqa: E402

HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"
CHANNEL, CHAINCODE = "mipchannel", "mip"
COLLECTIONS = REPO / "network" / "fabric" / "collections_config.json"
# The identities the rounds act as: (org, role); each is minted with attribute mip.role=role.
IDENTITIES = (
    (HOSPITAL, "registrar"), (HOSPITAL, "gateway"), (HOSPITAL, "doctor"), (HOSPITAL, "admin"),
    (HOSPITAL, "researcher"), (PHARMACY, "pharmacist"), (PHARMACY, "admin"), (SCHOOL, "admin"),
)
# Reported in this order (also the order of one round).
TRANSACTIONS = (
    "Passport:Register", "Account:Open", "Credential:Issue", "Credential:Store",
    "Credential:Issue+Store", "Grant:Create", "Access:Request", "Access:Read",
    "Pharmacy:Dispense", "Grant:Revoke", "Research:Debit",
)
DATASET_BUDGET_MICRO = 100_000_000  # the most a dataset may have; a round debits 1

T = TypeVar("T")


# --- the network ------------------------------------------------------------------------------


def mint_identities(data_dir: Path) -> None:
    for org, role in IDENTITIES:
        add_identity(data_dir, org, role, {"mip.role": role})


def client_id(profile: Path, org: str, user: str) -> str:
    """What the chaincode's caller(ctx).client_id is for `user` of `org` (Fabric cid's
    `x509::<subject>::<issuer>`): Research:AdmitResearcher admits that identity."""
    cert = x509.load_pem_x509_certificate(
        ConnectionProfile.load(profile).org(org).users[user].cert_path.read_bytes())
    return f"x509::{go_distinguished_name(cert.subject)}::{go_distinguished_name(cert.issuer)}"


@dataclass
class Clients:
    profile: Path
    gateways: dict[tuple[str, str], Gateway] = field(default_factory=dict)

    def __call__(self, org: str, role: str) -> Contract:
        gateway = self.gateways.get((org, role))
        if gateway is None:
            gateway = self.gateways[(org, role)] = Gateway.from_connection(
                self.profile, org, role)
        return gateway.get_network(CHANNEL).get_contract(CHAINCODE)

    async def close(self) -> None:
        for gateway in self.gateways.values():
            await gateway.close()


async def wait_ready(clients: Clients, timeout: float = 60.0) -> None:
    """Until the MIP chaincode answers an evaluate (devnet says "ready" once it is up, but a
    first call may still race the chaincode's registration)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await clients(HOSPITAL, "admin").evaluate("Account:ListKycIssuers")
            return
        except ChaincodeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


# --- one holder's life, timed -----------------------------------------------------------------


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def prescription(refills: int) -> dict[str, Any]:
    return {"drug": "amoxicillin", "strength": "500 mg", "quantity": 21, "refills": refills,
            "prescriber": "Dr Bench", "expiry": int(time.time()) + 30 * 24 * 3600}


def digest() -> str:
    return hashlib.sha256(secrets.token_bytes(16)).hexdigest()


@dataclass
class Recorder:
    """Latency and per-process CPU of each timed call, by transaction name."""

    meter: CpuMeter
    keep: bool = True
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    cpu_ms: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    async def time(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        before = self.meter.sample()
        t0 = time.perf_counter()
        result = await call()
        elapsed = time.perf_counter() - t0
        after = self.meter.sample()
        if self.keep:
            self.add(name, elapsed * 1000, {p: (after[p] - before[p]) * 1000 for p in after})
        return result

    def add(self, name: str, latency_ms: float, cpu_ms: dict[str, float]) -> None:
        self.latency_ms.setdefault(name, []).append(latency_ms)
        per_process = self.cpu_ms.setdefault(name, {})
        for process, ms in cpu_ms.items():
            per_process.setdefault(process, []).append(ms)


@dataclass
class Fixtures:
    """What every round shares: the KYC issuer, the counter key, the research dataset."""

    kyc: KycIssuer
    counter: CounterKey
    dataset_id: str
    pharmacist: str  # the pharmacist's identity string, which attestations name


async def setup(clients: Clients, rounds: int) -> Fixtures:
    # A revocable KYC issuer (as the gateways run them) with room for one credential a round.
    kyc = await asyncio.to_thread(KycIssuer, HOSPITAL, f"bench{secrets.token_hex(4)}",
                                  max_credentials=rounds + 8)
    admin = clients(HOSPITAL, "admin")
    await admin.submit("Account:RegisterKycIssuer", list(kyc.public_documents()))
    await admin.submit("Account:PublishKycRevocation", list(kyc.revocation_documents()))
    counter = CounterKey(f"counter-bench-{secrets.token_hex(6)}",
                         ec.generate_private_key(ec.SECP256R1()))
    await clients(PHARMACY, "admin").submit(
        "Pharmacy:RegisterGatewayKey", [counter.key_id, counter.public_pem])
    dataset_id = f"ds-bench-{secrets.token_hex(6)}"
    school_admin = clients(SCHOOL, "admin")
    await school_admin.submit("Research:RegisterDataset",
                              [dataset_id, str(DATASET_BUDGET_MICRO)])
    await school_admin.submit("Research:AdmitResearcher", [
        dataset_id, HOSPITAL, client_id(clients.profile, HOSPITAL, "researcher")])
    return Fixtures(kyc, counter, dataset_id,
                    client_id(clients.profile, PHARMACY, "pharmacist"))


@dataclass
class HolderAccount:
    pseudonym: str
    key: Ed25519PrivateKey


def issue_args(credential_id: str, pseudonym: str, content: dict[str, Any],
               content_bytes: bytes, salt: bytes) -> list[str]:
    """Credential:Issue's arguments: the public half (salted hash and public terms)."""
    return [credential_id, "prescription", pseudonym, salted_hash(salt, content_bytes),
            json.dumps(public_terms("prescription", content))]


def grant_request(account: HolderAccount, grant_id: str, credential_id: str) -> str:
    return json.dumps(sign_holder_request(account.key, "grant.create", {
        "account": account.pseudonym, "grant_id": grant_id, "grantee_org": PHARMACY,
        "scope": "medical.prescription", "credential_id": credential_id,
        "expires": int(time.time()) + 3600}))


async def holder_round(clients: Clients, fx: Fixtures, rec: Recorder) -> HolderAccount:
    """One round: every transaction once, each timed alone. Returns the account it opened."""
    registrar = clients(HOSPITAL, "registrar")
    gateway = clients(HOSPITAL, "gateway")
    doctor = clients(HOSPITAL, "doctor")
    pharmacist = clients(PHARMACY, "pharmacist")

    passport_key = new_key()
    register = sign_holder_request(passport_key, "passport.register", {
        "face_commitment": digest(), "enrolment_nonce": secrets.token_hex(16),
        "kyc_level": 2, "guardians": [], "guardian_threshold": 0})
    await rec.time("Passport:Register", lambda: registrar.submit(
        "Passport:Register", [json.dumps(register)]))

    wallet = KycHolder()
    await asyncio.to_thread(wallet.obtain, fx.kyc, 2)
    account_key = new_key()
    pseudonym = secrets.token_hex(32)
    open_request = sign_holder_request(account_key, "account.open", {
        "pseudonym": pseudonym, "institution": HOSPITAL, "min_level": 2,
        "face_commitment": digest()})
    presentation = await asyncio.to_thread(wallet.present, public_raw(account_key), pseudonym, 2)
    await rec.time("Account:Open", lambda: gateway.submit(
        "Account:Open", [json.dumps(open_request), json.dumps(presentation)]))

    account = HolderAccount(pseudonym, account_key)
    content = prescription(refills=0)
    content_bytes = canonical_json(content)
    salt = secrets.token_bytes(32)
    credential_id = f"pres-{secrets.token_hex(12)}"
    t0 = time.perf_counter()
    issue_cpu = rec.meter.sample()
    await rec.time("Credential:Issue", lambda: doctor.submit("Credential:Issue", issue_args(
        credential_id, pseudonym, content, content_bytes, salt)))
    await rec.time("Credential:Store", lambda: doctor.submit(
        "Credential:Store", [credential_id], transient={"content": content_bytes, "salt": salt},
        endorsing_orgs=[HOSPITAL]))
    if rec.keep:
        after = rec.meter.sample()
        rec.add("Credential:Issue+Store", (time.perf_counter() - t0) * 1000,
                {p: (after[p] - issue_cpu[p]) * 1000 for p in after})

    grant_id = f"g-{secrets.token_hex(8)}"
    grant = grant_request(account, grant_id, credential_id)
    await rec.time("Grant:Create", lambda: gateway.submit("Grant:Create", [grant]))

    access_id = (await rec.time("Access:Request", lambda: pharmacist.submit(
        "Access:Request", [credential_id, "medical.prescription", "dispense"]))).decode()
    fields = json.loads(await rec.time("Access:Read", lambda: pharmacist.evaluate(
        "Access:Read", [access_id], endorsing_orgs=[HOSPITAL])))
    if fields.get("fields", {}).get("drug") != content["drug"]:
        raise SystemExit(f"Access:Read returned unexpected fields: {fields}")

    attestation = fx.counter.attest(credential_id, pseudonym, fx.pharmacist)
    await rec.time("Pharmacy:Dispense", lambda: pharmacist.submit(
        "Pharmacy:Dispense", [credential_id, json.dumps(attestation)],
        endorsing_orgs=[HOSPITAL, PHARMACY]))

    revoke = sign_holder_request(account_key, "grant.revoke",
                                 {"account": pseudonym, "grant_id": grant_id})
    await rec.time("Grant:Revoke", lambda: gateway.submit("Grant:Revoke", [json.dumps(revoke)]))

    researcher = clients(HOSPITAL, "researcher")
    await rec.time("Research:Debit", lambda: researcher.submit(
        "Research:Debit", [fx.dataset_id, "1", digest()]))
    return account


# --- the dispense race ------------------------------------------------------------------------


def outcome(result: object) -> str:
    """"ok", a CommitError's validation code name, or a chaincode error's code."""
    if isinstance(result, bytes):
        return "ok"
    if isinstance(result, CommitError):
        return result.code_name
    if isinstance(result, ChaincodeError):
        return result.chaincode_message.partition(":")[0]
    return type(result).__name__


async def dispense_race(clients: Clients, fx: Fixtures, account: HolderAccount,
                        concurrent: int) -> dict[str, Any]:
    """`concurrent` dispenses at once of one fresh one-fill prescription of `account`, granted
    to the pharmacy, each with its own valid attestation: the fill counter's read-write
    conflict must let exactly one commit."""
    doctor = clients(HOSPITAL, "doctor")
    content = prescription(refills=0)
    content_bytes = canonical_json(content)
    salt = secrets.token_bytes(32)
    credential_id = f"pres-{secrets.token_hex(12)}"
    await doctor.submit("Credential:Issue", issue_args(
        credential_id, account.pseudonym, content, content_bytes, salt))
    await doctor.submit("Credential:Store", [credential_id],
                        transient={"content": content_bytes, "salt": salt},
                        endorsing_orgs=[HOSPITAL])
    await clients(HOSPITAL, "gateway").submit("Grant:Create", [
        grant_request(account, f"g-{secrets.token_hex(8)}", credential_id)])
    pharmacist = clients(PHARMACY, "pharmacist")
    attestations = [fx.counter.attest(credential_id, account.pseudonym, fx.pharmacist)
                    for _ in range(concurrent)]
    t0 = time.perf_counter()
    results = await asyncio.gather(*(
        pharmacist.submit("Pharmacy:Dispense", [credential_id, json.dumps(a)],
                          endorsing_orgs=[HOSPITAL, PHARMACY])
        for a in attestations), return_exceptions=True)
    wall_ms = (time.perf_counter() - t0) * 1000
    outcomes = Counter(outcome(r) for r in results)
    record = json.loads(await pharmacist.evaluate("Credential:Get", [credential_id]))
    fills = record.get("fills", {})
    return {"concurrent": concurrent, "fills_allowed": fills.get("allowed"),
            "fills_used": fills.get("used"), "successes": outcomes.pop("ok", 0),
            "failures": dict(outcomes.most_common()), "wall_ms": round(wall_ms, 1)}


def kyc_verify_ms(kyc: KycIssuer, rounds: int = 5) -> float:
    """Median ms of verifying one Account:Open presentation (CL predicate + non-revocation)
    in this process, on the same machine and load: what each endorsing peer's chaincode
    spends of Account:Open's time."""
    wallet = KycHolder()
    wallet.obtain(kyc, 2)
    key, pseudonym = new_key(), secrets.token_hex(32)
    presentation = wallet.present(public_raw(key), pseudonym, 2)
    documents = check_issuer_documents(kyc.org, *kyc.public_documents())
    registry = check_revocation_documents(documents, *kyc.revocation_documents())
    nonce = account_nonce(public_raw(key), pseudonym)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        verify_account_presentation(presentation, nonce, 2, {kyc.cred_def_id: documents},
                                    {registry.rev_reg_id: registry})
        times.append(time.perf_counter() - start)
    return round(median(times) * 1000, 1)


# --- the report -------------------------------------------------------------------------------


def summarize(rec: Recorder) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in TRANSACTIONS:
        samples = rec.latency_ms.get(name)
        if not samples:
            continue
        out[name] = {
            "p50_ms": round(median(samples), 2),
            "p95_ms": round(percentile(samples, 95), 2),
            "n": len(samples),
            # A mean, not a median: /proc counts in clock ticks (10 ms), so one call's CPU
            # is 0 or a tick; summed over the calls the rounding averages out.
            "cpu_ms": {p: round(statistics.fmean(v), 2) for p, v in rec.cpu_ms[name].items()},
        }
    return out


def race_ok(race: dict[str, Any]) -> bool:
    return race["successes"] == 1 and race["fills_allowed"] == race["fills_used"] == 1


async def bench(profile: Path, args: argparse.Namespace, meter: CpuMeter
                ) -> tuple[Recorder, dict[str, Any] | None, dict[str, float]]:
    clients = Clients(profile)
    try:
        await wait_ready(clients)
        t0 = time.monotonic()
        fx = await setup(clients, args.warmup + args.n)
        setup_s = time.monotonic() - t0
        warm = Recorder(meter, keep=False)
        for _ in range(args.warmup):
            await holder_round(clients, fx, warm)
        rec = Recorder(meter)
        for _ in range(args.n):
            account = await holder_round(clients, fx, rec)
        race = (await dispense_race(clients, fx, account, args.race)
                if args.race > 0 else None)
        verify_ms = await asyncio.to_thread(kyc_verify_ms, fx.kyc)
    finally:
        await clients.close()
    return rec, race, {"setup_s": round(setup_s, 1), "kyc_verify_ms": verify_ms}


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(f"MIP contract on devnet   policy: {report['policy']}   event loop: {m['event_loop']}")
    print(f"machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB, "
          f"python {m['python']}, commit {(m['commit'] or '?')[:10]}"
          f"{' (dirty)' if m['dirty'] else ''}")
    print(f"load average: start {' '.join(map(str, report['loadavg_start']))}   "
          f"end {' '.join(map(str, report['loadavg_end']))}")
    print(f"n = {report['n']} sequential rounds after {report['warmup']} warm-up; "
          "CPU ms per call as devnet / chaincode / client (means)")
    print(f"{'transaction':<24}{'p50 ms':>9}{'p95 ms':>9}   CPU ms")
    for name, r in report["results"].items():
        cpu = r["cpu_ms"]
        print(f"{name:<24}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}   "
              f"{cpu.get('devnet', 0):.2f} / {cpu.get('chaincode', 0):.2f} / "
              f"{cpu.get('client', 0):.2f}")
    print(f"(the KYC presentation Account:Open carries verifies in {report['kyc_verify_ms']} ms "
          "in this process, median of 5; each endorsing peer verifies it)")
    race = report["race"]
    if race is not None:
        others = ", ".join(f"{code} {count}" for code, count in race["failures"].items())
        print(f"dispense race: {race['concurrent']} concurrent dispenses of a one-fill "
              f"prescription: {race['successes']} succeeded ({others or 'no failures'}); "
              f"fills used {race['fills_used']} of {race['fills_allowed']}; "
              f"{race['wall_ms']:.0f} ms")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="timed rounds (each transaction once)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--race", type=int, default=50,
                        help="concurrent dispenses of one one-fill prescription (0: none)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="write the report with the raw samples here")
    parser.add_argument("--devnet-arg", action="append", default=[],
                        help="extra argument for `network.devnet up` (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n < 1 or args.warmup < 0 or args.race < 0:
        raise SystemExit("--n must be at least 1; --warmup and --race not negative")
    meta = RunMeta("mip", sys.argv if argv is None else [sys.argv[0], *argv])
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mip-bench-mip-") as tmp:
        data = Path(tmp)
        proc = start_devnet(data, ["--contract", CONTRACT_SPEC, "--policy", CHAINCODE_POLICY,
                                   "--collections", str(COLLECTIONS), *args.devnet_arg])
        try:
            mint_identities(data)
            rec, race, extra = run(bench(data / "connection.json", args, CpuMeter(proc.pid)))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    report = meta.report({
        "target": "devnet", "client": "gateway.fabric",
        "policy": CHAINCODE_POLICY, "contracts": CONTRACT_SPEC,
        "n": args.n, "warmup": args.warmup, **extra,
        "elapsed_s": round(time.monotonic() - t0, 1),
        "results": summarize(rec), "race": race,
    }, event_loop=loop_name())
    print_table(report)
    if args.json is not None:
        args.json.write_text(json.dumps(
            {**report, "samples_ms": {k: [round(x, 3) for x in v]
                                      for k, v in rec.latency_ms.items()}}, indent=1) + "\n")
    print(json.dumps(report))
    return 0 if race is None or race_ok(race) else 1


if __name__ == "__main__":
    sys.exit(main())
