"""A SoftHSM2 token of the test session's own, for the PKCS#11 key provider's tests.

SoftHSM2 is Debian's `softhsm2` package (scripts/test.sh installs it, as root with apt).
The token lives in a temporary folder (its own SOFTHSM2_CONF and tokendir) with a label and
PINs drawn at run time; nothing outside the folder is touched. One token per session: the
PKCS#11 module is loaded once per process and reads SOFTHSM2_CONF then, so tests share the
token and keep apart by key label prefix (`fresh_prefix`).

When softhsm2 is missing the tests FAIL naming the install step, unless this machine
cannot install packages (not root, or no apt-get): then they skip, saying so.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass

from chaincode.protocol.orgs import HOSPITAL
from gateway.core.config import DEFAULT_PKCS11_MODULE

INSTALL_STEP = "apt-get install -y softhsm2 (scripts/test.sh does this as root)"


@dataclass(frozen=True)
class SoftHsmToken:
    module: Path
    label: str
    pin: str
    pin_file: Path

    def settings(self, data_dir: Path, prefix: str, **overrides: object) -> dict[str, object]:
        """Gateway settings (as for `Settings(**...)`) that put its keys in this token (a
        production gateway is one org's: HospitalMSP's unless `org` is given)."""
        return {"org": HOSPITAL, "data_dir": data_dir, "key_provider": "pkcs11",
                "pkcs11_module": self.module,
                "pkcs11_token_label": self.label, "pkcs11_pin_file": self.pin_file,
                "key_label_prefix": prefix, **overrides}


def softhsm_missing() -> str | None:
    """Why SoftHSM2 cannot be used here, or None."""
    util = shutil.which("softhsm2-util")
    if util is not None and DEFAULT_PKCS11_MODULE.is_file():
        return None
    return f"softhsm2 is not installed (no softhsm2-util or no {DEFAULT_PKCS11_MODULE})"


def require_softhsm() -> None:
    """Fail (or, where nothing can be installed, skip) when SoftHSM2 is missing."""
    reason = softhsm_missing()
    if reason is None:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{reason}, and this machine cannot install it (not root or no apt-get)")
    pytest.fail(f"{reason}: install it with {INSTALL_STEP}")


def make_token(folder: Path) -> SoftHsmToken:
    require_softhsm()
    tokens = folder / "tokens"
    tokens.mkdir(parents=True)
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n", encoding="utf-8")
    # Before the module is first loaded in this process: SoftHSM2 reads it at C_Initialize.
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = f"mip-test-{secrets.token_hex(4)}"
    pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label,
                    "--so-pin", so_pin, "--pin", pin], check=True, capture_output=True,
                   timeout=60)
    pin_file = folder / "pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(pin + "\n")
    return SoftHsmToken(DEFAULT_PKCS11_MODULE, label, pin, pin_file)


def fresh_prefix() -> str:
    return f"mip-test/{secrets.token_hex(4)}"


@contextmanager
def token_session(token: SoftHsmToken) -> Iterator[pkcs11.Session]:
    """A logged-in session of the test's own (open it only while no provider is open: a
    PKCS#11 login is per process and token)."""
    lib = pkcs11.lib(str(token.module))
    with lib.get_token(token_label=token.label).open(user_pin=token.pin, rw=True) as session:
        yield session


@dataclass(frozen=True)
class PlantedKeys:
    """Key values the test chose and put into the token under a gateway's labels, so the
    test can recognise their bytes and check their effects."""

    keks: dict[str, tuple[bytes, bytes]]  # name -> (value, CKA_ID)
    derivers: dict[str, bytes]  # name -> value (the HKDF pseudorandom key)

    def values(self) -> list[bytes]:
        return [value for value, _ in self.keks.values()] + list(self.derivers.values())


def plant_keys(token: SoftHsmToken, prefix: str) -> PlantedKeys:
    from gateway.core.keys.names import DERIVER_NAMES, KEK_NAMES
    from gateway.core.keys.pkcs11_provider import (
        DERIVER_TEMPLATE,
        KEK_TEMPLATE,
        deriver_label,
        kek_label,
    )

    keks: dict[str, tuple[bytes, bytes]] = {}
    derivers: dict[str, bytes] = {}
    with token_session(token) as session:
        for name in KEK_NAMES:
            value, ident = os.urandom(32), os.urandom(8)
            session.create_object({
                **KEK_TEMPLATE, Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES, Attribute.VALUE: value, Attribute.ID: ident,
                Attribute.LABEL: kek_label(prefix, name)})
            keks[name] = (value, ident)
        for name in DERIVER_NAMES:
            value = os.urandom(32)
            session.create_object({
                **DERIVER_TEMPLATE, Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.GENERIC_SECRET, Attribute.VALUE: value,
                Attribute.ID: os.urandom(8), Attribute.LABEL: deriver_label(prefix, name)})
            derivers[name] = value
    return PlantedKeys(keks, derivers)
