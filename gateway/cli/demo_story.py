"""The story `mip demo` tells, step by step, through the gateways' HTTP APIs.

Each step happens at the org where it happens in life, and is sent to that org's gateway
(`Environment.url_of`): enrolment, the prescription and the holder's Hospital grants at the
Hospital's desk; the School account, diploma and the employer's grant at the School's; the
pickup at the Pharmacy's counter; the employer's read at the employer's (a Hospital office);
checks of a handed copy at whichever gateway. Each step prints which org's gateway acted
(the gateways its requests went to). With one all-orgs gateway (`mip demo --all-orgs`) the
same requests all go to that one.

Each step states what it expects; a step whose outcome differs raises `StepFailed` and the demo
exits non-zero. The cross-org steps need calls between orgs' gateways: the custody relay (`POST
/api/v1/custody/unlocks` at the holder's enrolling org's gateway, for a desk at another org)
and the pickup by the portrait (`POST /api/v1/admin/portrait-keys`, the portrait sealed with
the pharmacy grant). Before such a step the gateway that must serve the call is asked for the
route without credentials: a 404 `not_found` there (no such route: that org runs an older
build; a present route answers 401 or 422) makes the step, and the steps that need what it
makes, print "not yet available in this build" and the story goes on. Nothing is ever sent
through another org's gateway in its place, and once the route is there the step is checked
like any other. Output never shows private data: no passwords, tokens, face images, or
credential content (only field names), since a test scans it with the logs.
"""

from __future__ import annotations

import json
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import httpx

from .demo_camera import SimulatedCamera
from .environment import Environment, StaffSpec

API = "/api/v1"
HOSPITAL, SCHOOL, PHARMACY = "HospitalMSP", "SchoolMSP", "PharmacyMSP"

# Each org's admin is the Fabric identity "admin": the gateway registers its KYC issuer as
# that identity (gateway/services/kyc.py). Each member works at their own org's gateway:
# their token is issued by it and accepted by it alone.
STAFF = (
    StaffSpec("registrar", HOSPITAL, "rita", "registrar"),
    StaffSpec("doctor", HOSPITAL, "dana", "doctor"),
    StaffSpec("hospital_admin", HOSPITAL, "admin", "admin"),
    StaffSpec("school_admin", SCHOOL, "admin", "admin"),
    StaffSpec("employer", HOSPITAL, "hr-office", "admin"),
    StaffSpec("researcher", HOSPITAL, "rosa", "researcher"),
    StaffSpec("school_registrar", SCHOOL, "sam", "school_registrar"),
    StaffSpec("school_desk", SCHOOL, "sue", "registrar"),
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

NOT_YET: Final = "not yet available in this build"
Outcome = Literal["ok", "failed", "not yet available in this build"]

# The routes of the calls between gateways, asked for before a cross-org step (per org).
CUSTODY_ROUTE = ("POST", "/custody/unlocks")
PORTRAIT_KEYS_ROUTE = ("POST", "/admin/portrait-keys")
SCREENING_ROUTE = ("POST", "/screening/key")


class StepFailed(Exception):
    """A step did not give its expected outcome."""


class NotAvailableYet(Exception):
    """A cross-org step whose gateway has not got the route between orgs in this build (it
    answered 404 `not_found`), or a step that needs what such a step would have made."""


@dataclass
class Holder:
    who: str
    passport_id: str = ""
    accounts: dict[str, str] = field(default_factory=dict)  # institution -> pseudonym


@dataclass
class Story:
    env: Environment
    camera: SimulatedCamera
    emit: Callable[[str], None]
    holders: dict[str, Holder] = field(default_factory=dict)
    credentials: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (title, outcome, what happened, the orgs whose gateways the step's requests went to)
    results: list[tuple[str, Outcome, str, list[str]]] = field(default_factory=list)
    # What a cross-org step not available in this build would have made, and why.
    missing: dict[str, str] = field(default_factory=dict)
    # The sealed portrait the Hospital's gateway returned with the pharmacy grant, if any.
    portrait: str | None = None
    _clients: dict[str, httpx.Client] = field(default_factory=dict)
    _acted: list[str] = field(default_factory=list)
    _routes: dict[tuple[str, str, str], bool] = field(default_factory=dict)

    # --- HTTP helpers --------------------------------------------------------------------

    def client(self, org: str) -> httpx.Client:
        url = self.env.url_of(org)
        if url not in self._clients:
            verify: ssl.SSLContext | bool = True
            if self.env.ca_file is not None:
                verify = ssl.create_default_context(cafile=str(self.env.ca_file))
            self._clients[url] = httpx.Client(base_url=url, timeout=120, verify=verify)
        return self._clients[url]

    def close(self) -> None:
        for http in self._clients.values():
            http.close()
        self._clients.clear()

    def _send(self, method: str, path: str, at: str, headers: dict[str, str],
              **kwargs: Any) -> httpx.Response:
        if at not in self._acted:
            self._acted.append(at)
        return self.client(at).request(method, API + path, headers=headers, **kwargs)

    def call(self, method: str, path: str, *, staff: str | None = None, at: str | None = None,
             holder_session: str | None = None, enrolment: str | None = None,
             expect: int | tuple[int, ...] = 200, **kwargs: Any) -> Any:
        """`method path` at the gateway of `at` (default: the staff member's own org); the
        session ids travel in headers, never in the path."""
        headers: dict[str, str] = {}
        if staff is not None:
            headers.update(self.env.headers(staff))
        if holder_session is not None:
            headers["X-MIP-Holder-Session"] = holder_session
        if enrolment is not None:
            headers["X-MIP-Enrolment-Session"] = enrolment
        org = at or self.env.staff[_required(staff)].org
        r = self._send(method, path, org, headers, **kwargs)
        wanted = (expect,) if isinstance(expect, int) else expect
        if r.status_code not in wanted:
            raise StepFailed(f"{method} {_template(path)} at {self.env.gateway_name(org)}: "
                             f"HTTP {r.status_code} {_error_code(r)}")
        return r.json() if r.content else None

    def refusal(self, method: str, path: str, status: int, code: str, *, staff: str,
                **kwargs: Any) -> None:
        org = self.env.staff[staff].org
        r = self._send(method, path, org, self.env.headers(staff), **kwargs)
        if r.status_code != status or _error_code(r) != code:
            raise StepFailed(f"{method} {_template(path)}: expected {status} {code}, got "
                             f"{r.status_code} {_error_code(r)}")

    def unlock(self, who: str, desk: str) -> str:
        """A level-2 holder session at `desk` (face + password), at the desk's org's
        gateway; returns its id."""
        holder = self.holders[who]
        started = self.call("POST", "/holders/sessions", staff=desk, expect=201)
        body = self.camera.answer(started["challenge"], who)
        body.update(passport_id=holder.passport_id, password=PASSWORDS[who])
        out = self.call("POST", "/holders/sessions/unlock", staff=desk,
                        holder_session=started["session_id"], json=body)
        if out["level"] != 2:
            raise StepFailed(f"unlock gave level {out['level']}, expected 2")
        return str(started["session_id"])

    def end(self, session_id: str, desk: str) -> None:
        self.call("DELETE", "/holders/sessions/current", staff=desk,
                  holder_session=session_id, expect=204)

    def need(self, *what: str) -> None:
        """NotAvailableYet if a cross-org step that makes `what` was not available."""
        for item in what:
            if item in self.missing:
                raise NotAvailableYet(f"needs {item}, {self.missing[item]}")

    def offered(self, org: str, route: tuple[str, str], what: str) -> None:
        """NotAvailableYet unless `org`'s gateway has `route` (one gateway per org only: the
        all-orgs gateway serves every org itself). Asked once per gateway, without
        credentials or body: a present route answers 401 or 422, an absent one 404
        `not_found`. The probe is not counted as the step acting."""
        if not self.env.per_org:
            return
        method, path = route
        key = (self.env.url_of(org), method, path)
        if key not in self._routes:
            r = self.client(org).request(method, API + path)
            self._routes[key] = not (r.status_code == 404 and _error_code(r) == "not_found")
        if not self._routes[key]:
            raise NotAvailableYet(f"{self.env.gateway_name(org)} answered 404 to {method} "
                                  f"{API}{path}: {what}; nothing was sent in its place")

    # --- the steps -----------------------------------------------------------------------

    def steps(self) -> list[tuple[str, Callable[[], str], str | None]]:
        """(title, step, what it makes that later steps need, when it is a cross-org step
        that may not be available in this build). The portrait keys are a step of the
        per-org arrangement only: the all-orgs gateway holds the patient's reference."""
        steps: list[tuple[str, Callable[[], str], str | None]] = [
            ("enrol holder 1 (astronaut) at the Hospital's desk", self.enrol_astronaut, None),
            ("enrol holder 2 (grace_hopper) at the Hospital's desk", self.enrol_grace, None),
        ]
        if self.env.per_org:
            steps.append(("cross-org: astronaut trying to enrol again at the School's desk is "
                          "caught by the consortium screening and sent to review; the "
                          "School's registrar resolves it", self.cross_org_duplicate, None))
        steps += [
            ("vouch: grace_hopper vouches for astronaut at the Hospital's desk", self.vouch,
             None),
            ("open grace_hopper's Hospital account at the Hospital's desk",
             self.open_hospital_account, None),
            ("cross-org: open grace_hopper's School account at the School's desk",
             self.cross_org_school_account, "the School account"),
            ("issue a prescription (Hospital doctor)", self.issue_prescription, None),
            ("issue a diploma and a transcript (School registrar)", self.issue_diploma,
             "the diploma"),
        ]
        if self.env.per_org:
            steps.append(("cross-org: portrait keys registered by the Hospital's and the "
                          "Pharmacy's admins", self.cross_org_portrait_keys,
                          "the portrait keys"))
        steps += [
            ("grants at the Hospital's desk: pharmacy (prescription), research consent",
             self.hospital_grants, None),
            ("grant at the School's desk: employer (diploma)", self.diploma_grant,
             "the employer's grant"),
            ("pickup at the Pharmacy with another person's face is refused",
             self.pickup_wrong_face, "the pickup"),
            ("pickup by the patient at the Pharmacy passes; one fill dispensed",
             self.pickup_passes, "the fill"),
            ("second pickup of the used-up prescription is refused", self.pickup_used_up,
             None),
            ("cross-org: astronaut vouches for grace_hopper at the School's desk",
             self.cross_org_vouch, None),
            ("employer checks the diploma (valid; tampered copy invalid)",
             self.employer_check, None),
            ("holder's access log, read at each account's desk", self.access_log, None),
            ("private statistic (differentially private count) at the Hospital",
             self.private_statistic, None),
            ("revocation: the doctor revokes the prescription; checks elsewhere see it",
             self.revocation, None),
        ]
        return steps

    def run(self) -> bool:
        for number, (title, step, makes) in enumerate(self.steps(), 1):
            started = time.monotonic()
            self._acted = []
            outcome: Outcome
            try:
                text, outcome = step(), "ok"
            except NotAvailableYet as exc:
                text, outcome = str(exc), NOT_YET
                if makes is not None:
                    self.missing[makes] = f"{NOT_YET} (step {number})"
            except (StepFailed, httpx.HTTPError, KeyError, ValueError) as exc:
                text, outcome = _safe(exc), "failed"
            seconds = time.monotonic() - started
            acted = list(self._acted)
            self.results.append((title, outcome, text, acted))
            self.emit(f"[{number:2d}] {title}")
            self.emit(f"     acted: {self._acted_text(acted)}")
            label = "FAILED" if outcome == "failed" else outcome
            self.emit(f"     {label} ({seconds:.1f} s): {text}")
            if outcome == "failed":
                return False
        return True

    def pages(self) -> list[str]:
        """Where each page is, at the gateway of the org whose people use it, and the part
        the holder's own wallet would play in the story just told. Printed while the gateways
        still run. No token is printed: staff sign in with their own (`mip identity add`)."""
        url, name = self.env.url_of, self.env.gateway_name
        lines = [("pages (every gateway serves all of them; each role's is at its own org's "
                  "gateway, the one that accepts its staff token):") if self.env.per_org
                 else "pages (the all-orgs gateway serves every one):"]
        for page, org, path in (
                ("enrolment desk (registrar)", HOSPITAL, "/enrol/"),
                ("holder services desk: accounts, wallet link, key moves (registrar)",
                 HOSPITAL, "/holder-desk/"),
                ("issuer desk, prescriptions (doctor)", HOSPITAL, "/issuer/"),
                ("issuer desk, diplomas and transcripts (school registrar)", SCHOOL,
                 "/issuer/"),
                ("pharmacy counter (pharmacist)", PHARMACY, "/counter/")):
            lines.append(f"  {page}: {url(org)}{path} ({name(org)})")
        anywhere = sorted({url(org) for org in (HOSPITAL, SCHOOL, PHARMACY)})
        lines.append("  credential check (anyone handed a copy, no sign-in), at any gateway: "
                     + ", ".join(f"{u}/check/" for u in anywhere))
        # Each gateway carries device-signed requests for any member org's accounts
        # (services/holder_requests.py carrier_for); one passkey serves every gateway of one
        # host name, as here, or of one parent domain with `wallet_rp_id`.
        carries = "the device-held accounts of every member org"
        lines.append(f"  holder wallet (the holder's own browser, no sign-in), at any gateway; "
                     f"it manages {carries}: " + ", ".join(f"{u}/wallet/" for u in anywhere))
        return [*lines, "", *self.wallet_part()]

    def wallet_part(self) -> list[str]:
        """Which of the story's holder-signed steps a holder could sign on their own device
        with /wallet/, and which stay at a desk; truthful about this demo: its holders are
        desk-custodied (docs/gateway.md, "Holder wallet")."""
        # By the step method's name: a Story (a dataclass) is unhashable, so are its methods.
        numbers = {step.__name__: number
                   for number, (_, step, _) in enumerate(self.steps(), 1)}

        def at(*steps: Callable[[], str]) -> str:
            return ", ".join(str(numbers[s.__name__]) for s in steps if s.__name__ in numbers)

        return [
            "the wallet's part: this demo's holders are desk-custodied, so every holder-signed "
            "request above was signed at a desk, by the holder's custodial vault after their "
            "face and password unlocked it",
            f"  on the holder's own device (/wallet/, keys from their passkey, no gateway "
            f"holds them): grant create (steps {at(self.hospital_grants, self.diploma_grant)}),"
            f" grant list and revoke, the access log (step {at(self.access_log)}); for an "
            "account opened device-held (the desk issues its terms in the holder's session, "
            "the wallet signs them)",
            f"  at a desk today: enrolment (steps {at(self.enrol_astronaut, self.enrol_grace)}"
            f"), vouching (steps {at(self.vouch, self.cross_org_vouch)}), opening an account "
            f"(steps {at(self.open_hospital_account, self.cross_org_school_account)}: a "
            "device-held one too, for the live face), pickups at the counter (steps "
            f"{at(self.pickup_wrong_face, self.pickup_passes, self.pickup_used_up)}); the "
            "accounts of this demo stay custodial (moving an existing account to device keys "
            "is not built)",
        ]

    def _acted_text(self, orgs: list[str]) -> str:
        if not orgs:
            return "no gateway (nothing was sent)"
        if not self.env.per_org:
            return self.env.gateway_name(orgs[0])
        return ", ".join(self.env.gateway_name(org) for org in orgs)

    def _enrol(self, who: str) -> str:
        created = self.call("POST", "/enrolments", staff="registrar", expect=201)
        sid = created["session_id"]
        self.call("POST", "/enrolments/current/frames", staff="registrar", enrolment=sid,
                  expect=204, json=self.camera.answer(created["challenge"], who))
        self.call("PUT", "/enrolments/current/password", staff="registrar", enrolment=sid,
                  expect=204, json={"password": PASSWORDS[who]})
        done = self.call("POST", "/enrolments/current/finish", staff="registrar",
                         enrolment=sid, expect=201)
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

    def cross_org_duplicate(self) -> str:
        """The same person at a second org's desk: the School's gateway screens the face
        against its own gallery and, privately, the Hospital's and the Pharmacy's (the
        Hospital's gallery scored under the Pharmacy's key; docs/face.md 5b): a candidate,
        so a review, which the School's registrar decides."""
        self.offered(SCHOOL, SCREENING_ROUTE, "the consortium-wide screening")
        astronaut = self.holders["astronaut"].passport_id
        created = self.call("POST", "/enrolments", staff="school_desk", expect=201)
        sid = created["session_id"]
        # The School's own index has no candidate: the frames request ends (204) and the
        # consortium-wide screening runs in the background; its state shows the review.
        self.call("POST", "/enrolments/current/frames", staff="school_desk",
                  enrolment=sid, expect=204,
                  json=self.camera.answer(created["challenge"], "astronaut"))
        screened = self._screened(sid, "school_desk")
        if screened["screening"] != "in_review" or not screened["review_id"]:
            raise StepFailed(f"screening {screened['screening']}, expected in_review")
        review_id = screened["review_id"]
        reviews = self.call("GET", "/reviews", staff="school_desk", params={"status": "open"})
        found = [r for r in reviews if r["review_id"] == review_id]
        if not found or found[0]["candidates"] != [astronaut]:
            raise StepFailed("the School's review does not name the Hospital's passport")
        decided = self.call("POST", f"/reviews/{review_id}/decision", staff="school_desk",
                            json={"decision": "same_person",
                                  "reason": "already enrolled at the Hospital",
                                  "candidates": found[0]["candidates"]})
        if decided["status"] != "refused":
            raise StepFailed(f"review {decided['status']}, expected refused")
        r = self._send("POST", "/enrolments/current/finish", SCHOOL,
                       {**self.env.headers("school_desk"), "X-MIP-Enrolment-Session": sid})
        if r.status_code != 409 or _error_code(r) != "duplicate_face":
            raise StepFailed(f"finish after the review: {r.status_code} {_error_code(r)}")
        return (f"candidate: the Hospital's passport {astronaut[:12]}... (found privately in "
                "the Hospital's gallery under the Pharmacy's key; the School saw no face of "
                "the Hospital's); review decided 'same person'; no second passport")

    def _screened(self, sid: str, staff: str, timeout: float = 300.0) -> dict[str, Any]:
        """The enrolment's state once its background screening is no longer pending."""
        deadline = time.monotonic() + timeout
        while True:
            state: dict[str, Any] = self.call("GET", "/enrolments/current", staff=staff,
                                              enrolment=sid)
            if state.get("screening") != "pending":
                return state
            if time.monotonic() > deadline:
                raise StepFailed("the consortium-wide screening did not end in time")
            time.sleep(0.5)

    def _vouch(self, voucher: str, vouchee: str, desk: str) -> dict[str, Any]:
        vouchee_id = self.holders[vouchee].passport_id
        session = self.unlock(voucher, desk)
        out = self.call("POST", f"/passports/{vouchee_id}/vouches", staff=desk,
                        holder_session=session, expect=201)
        self.end(session, desk)
        record = self.call("GET", f"/passports/{vouchee_id}", staff=desk)
        if record["kyc_level"] != 3:
            raise StepFailed(f"vouchee level {record['kyc_level']}, expected 3")
        return {**out, "read_level": record["kyc_level"]}

    def vouch(self) -> str:
        # Two people only, so the network admins lower vouch_k from 2 to 1 (said in the
        # output); the contract still refuses self-vouches and repeat vouches.
        self._set_vouch_k(1)
        out = self._vouch("grace_hopper", "astronaut", "registrar")
        return (f"vouch recorded (vouchee level now {out['vouchee_level']}); astronaut's "
                f"passport reads KYC level {out['read_level']} (vouch_k set to 1 by the "
                "network admins, through their peers, for this two-person demo)")

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

    def _open_account(self, institution: str, desk: str) -> str:
        grace = self.holders["grace_hopper"]
        session = self.unlock("grace_hopper", desk)
        out = self.call("POST", "/accounts", staff=desk, holder_session=session,
                        expect=201, json={"institution": institution})
        grace.accounts[institution] = out["pseudonym"]
        self.end(session, desk)
        return str(out["pseudonym"])

    def open_hospital_account(self) -> str:
        pseudonym = self._open_account(HOSPITAL, "doctor")
        return (f"pseudonymous account at HospitalMSP ({pseudonym[:10]}...) with its own "
                "face reference")

    def _custody(self) -> None:
        """The School's desk serves holders enrolled at the Hospital through the Hospital's
        gateway, which holds their vault and face reference (the custody relay)."""
        self.offered(HOSPITAL, CUSTODY_ROUTE, "the custody relay (a desk at another org "
                     "unlocking a holder this gateway enrolled)")

    def cross_org_school_account(self) -> str:
        """The holder enrolled at the Hospital unlocks at the School's desk: the School's
        gateway does not hold her vault; the custody relay to the Hospital's brings it."""
        self._custody()
        pseudonym = self._open_account(SCHOOL, "school_registrar")
        grace = self.holders["grace_hopper"]
        return (f"pseudonymous account at SchoolMSP ({pseudonym[:10]}...), unlinkable to "
                f"the Hospital's ({grace.accounts[HOSPITAL][:10]}...), its own face "
                "reference")

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
        self.need("the School account")
        dip = self._issue("school_registrar", "diploma", DIPLOMA, SCHOOL)
        tr = self._issue("school_registrar", "transcript", TRANSCRIPT, SCHOOL)
        return f"diploma {dip['credential_id']} and transcript {tr['credential_id']}"

    def cross_org_portrait_keys(self) -> str:
        """The Pharmacy's own gateway holds no face reference of a patient the Hospital
        enrolled: the Hospital's gateway seals a portrait to the Pharmacy with the grant,
        signed with its portrait key; each admin registers its org's keys at its own
        gateway."""
        what = "the pickup by the portrait (the enrolling org's gateway seals a portrait to "
        what += "the pharmacy with the grant)"
        self.offered(HOSPITAL, PORTRAIT_KEYS_ROUTE, what)
        self.offered(PHARMACY, PORTRAIT_KEYS_ROUTE, what)
        made = []
        for admin in ("hospital_admin", "pharmacy_admin"):
            out = self.call("POST", PORTRAIT_KEYS_ROUTE[1], staff=admin)
            made.append(f"{out['org']} ({'registered' if out['newly_registered'] else 'kept'})")
        return "portrait keys on the ledger: " + ", ".join(made)

    def hospital_grants(self) -> str:
        grace = self.holders["grace_hopper"]
        made = []
        session = self.unlock("grace_hopper", "doctor")
        for terms in ({"grantee_org": PHARMACY, "scope": "medical.prescription",
                       "credential_id": self.credentials["prescription"]["credential_id"]},
                      {"grantee_org": HOSPITAL, "grantee_role": "researcher",
                       "scope": "research.aggregate", "credential_type": "record"}):
            out = self.call("POST", "/grants", staff="doctor", holder_session=session,
                            expect=201, json={"account": grace.accounts[HOSPITAL],
                                              "ttl_s": 3600, **terms})
            made.append(f"{terms['scope']} -> {terms['grantee_org']}")
            if terms["grantee_org"] == PHARMACY and isinstance(out, dict):
                # The pharmacy's face reference for the pickup, sealed to it (docs/
                # gateway.md, "the portrait"), once the Hospital's gateway makes one.
                self.portrait = out.get("portrait")
        listed = self.call("GET", "/grants", staff="doctor", holder_session=session,
                           params={"account": grace.accounts[HOSPITAL]})
        self.end(session, "doctor")
        if self.env.per_org and "the portrait keys" not in self.missing \
                and self.portrait is None:
            raise StepFailed("the pharmacy grant came back without a sealed portrait")
        sealed = ("; a sealed portrait for the pharmacy came back with its grant"
                  if self.portrait is not None else "")
        return (f"{'; '.join(made)} (hospital account lists {len(listed)} grants){sealed}")

    def diploma_grant(self) -> str:
        self.need("the diploma")
        grace = self.holders["grace_hopper"]
        session = self.unlock("grace_hopper", "school_registrar")
        self.call("POST", "/grants", staff="school_registrar", holder_session=session,
                  expect=201, json={
                      "account": grace.accounts[SCHOOL], "grantee_org": HOSPITAL,
                      "grantee_role": "admin", "scope": "education.diploma", "ttl_s": 3600,
                      "credential_id": self.credentials["diploma"]["credential_id"]})
        listed = self.call("GET", "/grants", staff="school_registrar", holder_session=session,
                           params={"account": grace.accounts[SCHOOL]})
        self.end(session, "school_registrar")
        return (f"education.diploma -> {HOSPITAL} admin (employer's HR office) (school "
                f"account lists {len(listed)} grant)")

    def _pickup_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prescription_id": self.credentials["prescription"]["credential_id"]}
        if self.portrait is not None:
            body["portrait"] = self.portrait
        return body

    def _start_pickup(self) -> dict[str, Any]:
        return dict(self.call("POST", "/pharmacy/pickups", staff="pharmacist", expect=201,
                              json=self._pickup_body()))

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
        """At the Pharmacy's own gateway (one per org), which holds no key or reference of
        the Hospital's: it checks the live face against the portrait the Hospital's gateway
        sealed to it with the grant."""
        self.need("the portrait keys")
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
        self.need("the pickup")
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
        self.need("the fill")
        rx = self.credentials["prescription"]["credential_id"]
        self.refusal("POST", "/pharmacy/pickups", 409, "precondition_failed",
                     staff="pharmacist", json=self._pickup_body())
        record = self.call("GET", f"/credentials/{rx}", at=PHARMACY)
        return (f"refused by the contract (precondition_failed: used up); ledger counts "
                f"{record['fills']['used']} fill")

    def cross_org_vouch(self) -> str:
        """astronaut, enrolled at the Hospital, unlocks at the School's desk and vouches for
        grace_hopper there."""
        self._custody()
        out = self._vouch("astronaut", "grace_hopper", "school_registrar")
        return (f"vouch recorded at the School's desk (vouchee level now "
                f"{out['vouchee_level']}); grace_hopper's passport reads KYC level "
                f"{out['read_level']}")

    def employer_check(self) -> str:
        self.need("the diploma", "the employer's grant")
        dip = self.credentials["diploma"]
        read = self.call("POST", "/access", staff="employer", json={
            "credential_id": dip["credential_id"], "scope": "education.diploma",
            "purpose": "pre-employment check"})
        # Anyone checks a handed copy at any gateway, no account needed.
        check = self.call("POST", "/checks", at=PHARMACY, json={
            "credential_id": dip["credential_id"], "content": dip["content"],
            "salt": dip["salt"]})
        if not check["valid"]:
            raise StepFailed("the genuine diploma did not check as valid")
        tampered_content = json.loads(dip["content"])
        tampered_content["degree"] = "PhD"
        tampered = self.call("POST", "/checks", at=SCHOOL, json={
            "credential_id": dip["credential_id"], "content": tampered_content,
            "salt": dip["salt"]})
        if tampered["valid"]:
            raise StepFailed("a tampered diploma checked as valid")
        return (f"granted read released fields {', '.join(sorted(read['fields']))}; "
                f"handed copy checks VALID ({check['status']}, issuer "
                f"{check['issuer_org']}); copy with the degree changed checks INVALID")

    def access_log(self) -> str:
        grace = self.holders["grace_hopper"]
        parts = []
        for institution, desk in ((HOSPITAL, "doctor"), (SCHOOL, "school_registrar")):
            if institution not in grace.accounts:
                parts.append(f"{institution} account: {NOT_YET}")
                continue
            session = self.unlock("grace_hopper", desk)
            log = self.call("GET", "/audit/holder", staff=desk, holder_session=session,
                            params={"account": grace.accounts[institution]})
            self.end(session, desk)
            if not log:
                raise StepFailed(f"no access recorded on the {institution} account")
            lines = [_describe_access(entry) for entry in log]
            parts.append(f"{institution} account, {len(lines)} records: " + "; ".join(lines))
        return " | ".join(parts)

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

    def revocation(self) -> str:
        """The doctor cancels the prescription at the Hospital; the copy the holder holds
        still matches its hash, and every gateway's check now reads it revoked."""
        rx = self.credentials["prescription"]
        copy = {"credential_id": rx["credential_id"], "content": rx["content"],
                "salt": rx["salt"]}
        before = self.call("POST", "/checks", at=PHARMACY, json=copy)
        if not before["valid"] or before["status"] != "active":
            raise StepFailed(f"before: valid={before['valid']} status={before['status']}")
        out = self.call("POST", f"/credentials/{rx['credential_id']}/revoke", staff="doctor",
                        json={"reason": "treatment changed"})
        if out.get("status") != "revoked":
            raise StepFailed(f"revoke answered status {out.get('status')}")
        after = self.call("POST", "/checks", at=SCHOOL, json=copy)
        if after["status"] != "revoked":
            raise StepFailed(f"after: status {after['status']}, expected revoked")
        name = self.env.gateway_name
        return (f"check at {name(PHARMACY)}: VALID, {before['status']}; the doctor revoked "
                f"it at {name(HOSPITAL)}; check at {name(SCHOOL)}: copy "
                f"{'matches' if after['valid'] else 'DOES NOT match'}, status "
                f"{after['status']} (no counter dispenses it any more)")


def _required(staff: str | None) -> str:
    if staff is None:
        raise ValueError("a call without staff must name the gateway (at=)")
    return staff


def _template(path: str) -> str:
    """The path with its ids left out (output shows routes, not session or passport ids)."""
    def is_id(part: str) -> bool:
        return len(part) > 16 or (len(part) > 8 and any(c.isdigit() for c in part))
    return "/".join("{id}" if is_id(part) else part for part in path.split("/"))


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
