"""The story `mip demo` tells, step by step, through the gateway's HTTP API.

Each step states what it expects; a step whose outcome differs raises `StepFailed` and the
demo exits non-zero. Output never shows private data: no passwords, tokens, face images,
or credential content (only field names), since a test scans it with the logs.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from .demo_camera import SimulatedCamera
from .environment import Environment, StaffSpec

API = "/api/v1"
HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"

# Each org's admin is the Fabric identity "admin": the gateway registers its KYC issuer as
# that identity (gateway/services/kyc.py).
STAFF = (
    StaffSpec("registrar", HOSPITAL, "rita", "registrar"),
    StaffSpec("doctor", HOSPITAL, "dana", "doctor"),
    StaffSpec("hospital_admin", HOSPITAL, "admin", "admin"),
    StaffSpec("school_admin", SCHOOL, "admin", "admin"),
    StaffSpec("employer", HOSPITAL, "hr-office", "admin"),
    StaffSpec("researcher", HOSPITAL, "rosa", "researcher"),
    StaffSpec("school_registrar", SCHOOL, "sam", "school_registrar"),
    StaffSpec("pharmacist", PHARMACY, "phil", "pharmacist"),
    StaffSpec("pharmacy_admin", PHARMACY, "admin", "admin"),
)

# Fixed canary values: tests/gateway/cli/test_demo_logs.py checks that none of them reaches the
# output or any log of a demo run.
PASSWORDS = {"astronaut": "canary-pw-Astronaut-4417!", "grace_hopper": "canary-pw-Grace-8812!"}
PRESCRIPTION = {"drug": "Canarycillin", "strength": "250 mg canary", "quantity": 14,
                "refills": 0, "prescriber": "Dr Canary Dana"}
DIPLOMA = {"degree": "MSc", "field": "Canary Mathematics", "awarded": "1934-06-01"}
TRANSCRIPT = {"courses": [{"course": "Canary Algebra", "grade": "A-canary"},
                          {"course": "Canary Analysis", "grade": "B+canary"}]}
CONTENT_CANARIES = ("Canarycillin", "Canary Mathematics", "Canary Algebra", "A-canary",
                    "Dr Canary Dana")

SIMULATION_NOTE = (
    "What is simulated: the camera (head turns synthesised from two public-domain "
    "portraits: NASA astronaut Eileen Collins and Rear Admiral Grace Hopper, US Navy); "
    "liveness challenges restricted to left/right turns because the camera is simulated; "
    "the ledger is devnet (Fabric's protocols, one process) unless run against real Fabric; "
    "vouch_k is lowered to 1 on this network because the demo has only two people.")

STEP_TITLES = (
    "enrol holder 1 (astronaut)",
    "enrol holder 2 (grace_hopper)",
    "vouch: grace_hopper vouches for astronaut",
    "open accounts for grace_hopper (hospital, school)",
    "issue a prescription (doctor)",
    "issue a diploma and a transcript (school registrar)",
    "grants: pharmacy (prescription), employer (diploma), research consent",
    "pickup with another person's face is refused",
    "pickup by the patient passes; one fill dispensed",
    "second pickup of the used-up prescription is refused",
    "employer checks the diploma (valid; tampered copy invalid)",
    "holder's access log",
    "private statistic (differentially private count)",
)


class StepFailed(Exception):
    """A step did not give its expected outcome."""


@dataclass
class Holder:
    who: str
    passport_id: str = ""
    accounts: dict[str, str] = field(default_factory=dict)  # institution -> pseudonym


@dataclass
class Story:
    env: Environment
    http: httpx.Client
    camera: SimulatedCamera
    emit: Callable[[str], None]
    holders: dict[str, Holder] = field(default_factory=dict)
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: list[tuple[str, bool, str]] = field(default_factory=list)

    # --- HTTP helpers --------------------------------------------------------------------

    def call(self, method: str, path: str, *, staff: str | None = None,
             holder_session: str | None = None, expect: int | tuple[int, ...] = 200,
             **kwargs: Any) -> Any:
        headers: dict[str, str] = {}
        if staff is not None:
            headers.update(self.env.headers(staff))
        if holder_session is not None:
            headers["X-MIP-Holder-Session"] = holder_session
        r = self.http.request(method, API + path, headers=headers, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        if r.status_code not in wanted:
            raise StepFailed(f"{method} {path}: HTTP {r.status_code} {_error_code(r)}")
        return r.json() if r.content else None

    def refusal(self, method: str, path: str, status: int, code: str, *, staff: str,
                **kwargs: Any) -> None:
        r = self.http.request(method, API + path, headers=self.env.headers(staff), **kwargs)
        if r.status_code != status or _error_code(r) != code:
            raise StepFailed(f"{method} {path}: expected {status} {code}, got "
                             f"{r.status_code} {_error_code(r)}")

    def unlock(self, who: str, desk: str) -> str:
        """A level-2 holder session at `desk` (face + password); returns its id."""
        holder = self.holders[who]
        started = self.call("POST", "/holders/sessions", staff=desk, expect=201)
        body = self.camera.answer(started["challenge"], who)
        body.update(passport_id=holder.passport_id, password=PASSWORDS[who])
        out = self.call("POST", f"/holders/sessions/{started['session_id']}/unlock",
                        staff=desk, json=body)
        if out["level"] != 2:
            raise StepFailed(f"unlock gave level {out['level']}, expected 2")
        return str(started["session_id"])

    def end(self, session_id: str, desk: str) -> None:
        self.call("DELETE", f"/holders/sessions/{session_id}", staff=desk, expect=204)

    # --- the steps -----------------------------------------------------------------------

    def run(self) -> bool:
        steps = (self.enrol_astronaut, self.enrol_grace, self.vouch, self.open_accounts,
                 self.issue_prescription, self.issue_diploma, self.grants,
                 self.pickup_wrong_face, self.pickup_passes, self.pickup_used_up,
                 self.employer_check, self.access_log, self.private_statistic)
        for number, (title, step) in enumerate(zip(STEP_TITLES, steps, strict=True), 1):
            started = time.monotonic()
            try:
                outcome = step()
                ok = True
            except (StepFailed, httpx.HTTPError, KeyError, ValueError) as exc:
                outcome, ok = f"FAILED: {_safe(exc)}", False
            seconds = time.monotonic() - started
            self.results.append((title, ok, outcome))
            self.emit(f"[{number:2d}] {title}")
            self.emit(f"     {'ok' if ok else 'FAILED'} ({seconds:.1f} s): "
                      f"{outcome.removeprefix('FAILED: ')}")
            if not ok:
                return False
        return True

    def _enrol(self, who: str) -> str:
        created = self.call("POST", "/enrolments", staff="registrar", expect=201)
        sid = created["session_id"]
        self.call("POST", f"/enrolments/{sid}/frames", staff="registrar", expect=204,
                  json=self.camera.answer(created["challenge"], who))
        self.call("PUT", f"/enrolments/{sid}/password", staff="registrar", expect=204,
                  json={"password": PASSWORDS[who]})
        done = self.call("POST", f"/enrolments/{sid}/finish", staff="registrar", expect=201)
        self.holders[who] = Holder(who, done["passport_id"])
        if done["kyc_level"] != 2:
            raise StepFailed(f"enrolled at level {done['kyc_level']}, expected 2")
        return (f"passport {done['passport_id'][:12]}... KYC level {done['kyc_level']} "
                f"(live face, liveness {'+'.join(created['challenge']['poses'])}, "
                "duplicate screen clear, password set)")

    def enrol_astronaut(self) -> str:
        return self._enrol("astronaut")

    def enrol_grace(self) -> str:
        return self._enrol("grace_hopper")

    def vouch(self) -> str:
        # Two people only, so the network admin lowers vouch_k from 2 to 1 (said in the
        # output); the contract still refuses self-vouches and repeat vouches.
        self._set_vouch_k(1)
        vouchee = self.holders["astronaut"].passport_id
        session = self.unlock("grace_hopper", "registrar")
        out = self.call("POST", f"/passports/{vouchee}/vouches", staff="registrar",
                        holder_session=session, expect=201)
        self.end(session, "registrar")
        record = self.call("GET", f"/passports/{vouchee}", staff="registrar")
        if record["kyc_level"] != 3:
            raise StepFailed(f"vouchee level {record['kyc_level']}, expected 3")
        return (f"vouch recorded (vouchee level now {out['vouchee_level']}); astronaut's "
                f"passport reads KYC level {record['kyc_level']} (vouch_k set to 1 by the "
                "admin for this two-person demo)")

    def _set_vouch_k(self, k: int) -> None:
        import asyncio

        from gateway.fabric import Gateway

        async def submit() -> None:
            admin = self.env.staff["hospital_admin"]
            async with Gateway.from_connection(self.env.connection, admin.org,
                                               admin.name) as gw:
                contract = gw.get_network("mipchannel").get_contract("mip")
                await contract.submit("Config:Set", ["vouch_k", str(k)],
                                      endorsing_orgs=[HOSPITAL, SCHOOL, PHARMACY])
        asyncio.run(submit())

    def open_accounts(self) -> str:
        grace = self.holders["grace_hopper"]
        for institution, desk in ((HOSPITAL, "doctor"), (SCHOOL, "school_registrar")):
            session = self.unlock("grace_hopper", desk)
            out = self.call("POST", "/accounts", staff=desk, holder_session=session,
                            expect=201, json={"institution": institution})
            grace.accounts[institution] = out["pseudonym"]
            self.end(session, desk)
        return ("unlinkable pseudonymous accounts at HospitalMSP "
                f"({grace.accounts[HOSPITAL][:10]}...) and SchoolMSP "
                f"({grace.accounts[SCHOOL][:10]}...), each with its own face reference")

    def _issue(self, staff: str, cred_type: str, content: dict[str, Any],
               institution: str) -> dict[str, Any]:
        out = self.call("POST", "/credentials", staff=staff, expect=201, json={
            "type": cred_type, "subject_account":
                self.holders["grace_hopper"].accounts[institution], "content": content})
        self.credentials[cred_type] = out
        return dict(out)

    def issue_prescription(self) -> str:
        rx = self._issue("doctor", "prescription",
                         {**PRESCRIPTION, "expiry": int(time.time()) + 30 * 86400}, HOSPITAL)
        return (f"prescription {rx['credential_id']} on the ledger (hash only; content and "
                "salt handed to the holder, one fill)")

    def issue_diploma(self) -> str:
        dip = self._issue("school_registrar", "diploma", DIPLOMA, SCHOOL)
        tr = self._issue("school_registrar", "transcript", TRANSCRIPT, SCHOOL)
        return f"diploma {dip['credential_id']} and transcript {tr['credential_id']}"

    def grants(self) -> str:
        grace = self.holders["grace_hopper"]
        made = []
        session = self.unlock("grace_hopper", "doctor")
        for terms in ({"grantee_org": PHARMACY, "scope": "medical.prescription",
                       "credential_id": self.credentials["prescription"]["credential_id"]},
                      {"grantee_org": HOSPITAL, "grantee_role": "researcher",
                       "scope": "research.aggregate", "credential_type": "record"}):
            self.call("POST", "/grants", staff="doctor", holder_session=session, expect=201,
                      json={"account": grace.accounts[HOSPITAL], "ttl_s": 3600, **terms})
            made.append(f"{terms['scope']} -> {terms['grantee_org']}")
        self.end(session, "doctor")
        session = self.unlock("grace_hopper", "school_registrar")
        self.call("POST", "/grants", staff="school_registrar", holder_session=session,
                  expect=201, json={
                      "account": grace.accounts[SCHOOL], "grantee_org": HOSPITAL,
                      "grantee_role": "admin", "scope": "education.diploma", "ttl_s": 3600,
                      "credential_id": self.credentials["diploma"]["credential_id"]})
        made.append(f"education.diploma -> {HOSPITAL} admin (employer's HR office)")
        listed = self.call("GET", "/grants", staff="school_registrar", holder_session=session,
                           params={"account": grace.accounts[SCHOOL]})
        self.end(session, "school_registrar")
        return f"{'; '.join(made)} (school account lists {len(listed)} grant)"

    def _start_pickup(self) -> dict[str, Any]:
        rx = self.credentials["prescription"]["credential_id"]
        return dict(self.call("POST", "/pharmacy/pickups", staff="pharmacist", expect=201,
                              json={"prescription_id": rx}))

    def _answer_pickup(self, pickup: dict[str, Any], who: str) -> dict[str, Any]:
        """As the counter page does: each frame uploaded as captured, then the verdict."""
        pid, answer = pickup["pickup_id"], self.camera.answer(pickup["challenge"], who)
        for index, frame in enumerate(answer["frames"]):
            self.call("PUT", f"/pharmacy/pickups/{pid}/frames/{index}", staff="pharmacist",
                      expect=202, json={"challenge_id": answer["challenge_id"], **frame})
        return dict(self.call("POST", f"/pharmacy/pickups/{pid}/verdict", staff="pharmacist",
                              json={"challenge_id": answer["challenge_id"],
                                    "frames": len(answer["frames"])}))

    def pickup_wrong_face(self) -> str:
        self.call("POST", "/admin/counter-key", staff="pharmacy_admin")
        pickup = self._start_pickup()
        result = self._answer_pickup(pickup, "astronaut")
        if result != {"result": "refused", "reason": "face_mismatch"}:
            raise StepFailed(f"expected refused/face_mismatch, got {result}")
        self.refusal("POST", f"/pharmacy/pickups/{pickup['pickup_id']}/dispense", 409,
                     "not_verified", staff="pharmacist")
        return ("astronaut at the counter: page shows REFUSED (face_mismatch); dispense "
                "refused (not_verified)")

    def pickup_passes(self) -> str:
        pickup = self._start_pickup()
        shown = sorted(pickup.get("prescription", {}))
        result = self._answer_pickup(pickup, "grace_hopper")
        if result.get("result") != "verified":
            raise StepFailed(f"expected verified, got {result}")
        out = self.call("POST", f"/pharmacy/pickups/{pickup['pickup_id']}/dispense",
                        staff="pharmacist")
        if not out.get("dispensed"):
            raise StepFailed(f"not dispensed: {out}")
        return (f"pharmacist saw fields {', '.join(shown)} (not the diagnosis); page shows "
                f"VERIFIED (no score); dispensed fill {out['fills_used']} of "
                f"{out['fills_allowed']}")

    def pickup_used_up(self) -> str:
        rx = self.credentials["prescription"]["credential_id"]
        self.refusal("POST", "/pharmacy/pickups", 409, "precondition_failed",
                     staff="pharmacist", json={"prescription_id": rx})
        record = self.call("GET", f"/credentials/{rx}")
        return (f"refused by the contract (precondition_failed: used up); ledger counts "
                f"{record['fills']['used']} fill")

    def employer_check(self) -> str:
        dip = self.credentials["diploma"]
        read = self.call("POST", "/access", staff="employer", json={
            "credential_id": dip["credential_id"], "scope": "education.diploma",
            "purpose": "pre-employment check"})
        check = self.call("POST", "/checks", json={"credential_id": dip["credential_id"],
                                                   "content": dip["content"],
                                                   "salt": dip["salt"]})
        if not check["valid"]:
            raise StepFailed("the genuine diploma did not check as valid")
        tampered_content = json.loads(dip["content"])
        tampered_content["degree"] = "PhD"
        tampered = self.call("POST", "/checks", json={
            "credential_id": dip["credential_id"], "content": tampered_content,
            "salt": dip["salt"]})
        if tampered["valid"]:
            raise StepFailed("a tampered diploma checked as valid")
        return (f"granted read released fields {', '.join(sorted(read['fields']))}; "
                f"handed copy checks VALID ({check['status']}, issuer "
                f"{check['issuer_org']}); copy with the degree changed checks INVALID")

    def access_log(self) -> str:
        grace = self.holders["grace_hopper"]
        lines = []
        for institution, desk in ((HOSPITAL, "doctor"), (SCHOOL, "school_registrar")):
            session = self.unlock("grace_hopper", desk)
            log = self.call("GET", "/audit/holder", staff=desk, holder_session=session,
                            params={"account": grace.accounts[institution]})
            self.end(session, desk)
            if not log:
                raise StepFailed(f"no access recorded on the {institution} account")
            for entry in log:
                lines.append(_describe_access(entry))
        return f"{len(lines)} records on her two accounts: " + "; ".join(lines)

    def private_statistic(self) -> str:
        grace = self.holders["grace_hopper"]
        dataset_id = f"demo-visits-{secrets.token_hex(4)}"
        self.call("POST", "/admin/datasets", staff="hospital_admin", expect=201, json={
            "dataset_id": dataset_id, "total_epsilon": 1.0,
            "columns": {"age": "numeric", "ward": "categorical"}})
        rows: list[dict[str, Any]] = [{"account": grace.accounts[HOSPITAL], "age": 80,
                                       "ward": "cardiology"}]
        # Rows of accounts without a research consent: loaded, but never counted.
        rows += [{"account": secrets.token_hex(32), "age": 30 + i, "ward": "general"}
                 for i in range(4)]
        self.call("POST", f"/admin/datasets/{dataset_id}/records", staff="hospital_admin",
                  json={"records": rows})
        # The budget is the owner org's to give: its admin admits the researcher first.
        self.call("POST", f"/admin/datasets/{dataset_id}/researchers", staff="hospital_admin",
                  expect=201, json={"org": HOSPITAL, "user": self.env.staff["researcher"].name})
        answer = self.call("POST", "/analytics/queries", staff="researcher", json={
            "dataset_id": dataset_id, "query": {"kind": "count"}, "epsilon": 0.5})
        info = self.call("GET", f"/analytics/datasets/{dataset_id}", staff="researcher")
        if abs(info["remaining_epsilon"] - 0.5) > 1e-6:
            raise StepFailed(f"budget left {info['remaining_epsilon']}, expected 0.5")
        value = answer.get("value", answer.get("count", answer))
        return (f"{len(rows)} rows loaded, 1 account consented; DP count = {value} "
                f"(epsilon 0.5 spent on the ledger; budget left "
                f"{info['remaining_epsilon']:.2f} of 1.00)")


def _describe_access(entry: dict[str, Any]) -> str:
    """`org/role action scope (purpose)` of one access record (no content is in it)."""
    who = f"{entry.get('org', '?')}/{entry.get('role') or '-'}"
    scope = entry.get("scope")
    purpose = entry.get("purpose")
    text = f"{who} {entry.get('action', '?')}{' ' + str(scope) if scope else ''}"
    return text + (f" ({purpose})" if purpose else "")


def _error_code(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def _safe(exc: BaseException) -> str:
    """An exception as one line; our own messages hold only statuses and codes."""
    if isinstance(exc, StepFailed):
        return str(exc)
    return type(exc).__name__
