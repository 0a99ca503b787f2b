"""Gateway settings: one YAML file plus `MIP_*` environment variables (environment wins).

The file is the one `mip` and `mip serve` take with `--config` (or `$MIP_CONFIG`); every key
can be overridden by `MIP_<KEY>` (e.g. `MIP_CONNECTION=/srv/fabric/connection.json` points
the gateway at a real Fabric network instead of devnet: nothing else changes).

Paths never depend on the directory a command is run from: by default everything lives under
the MIP home (`$MIP_HOME`, else the per-user data folder, `~/.local/share/mip` on Linux), a
relative path in the YAML file is taken relative to that file's folder, and one from the
environment relative to the current folder once, at load. (Relative defaults used to create a
fresh `var/gateway` with fresh secrets wherever a command happened to run.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import platformdirs
import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from chaincode.protocol.orgs import MEMBER_ORGS

CONFIG_ENV = "MIP_CONFIG"
HOME_ENV = "MIP_HOME"
_PATH_KEYS = ("data_dir", "connection", "pkcs11_module", "pkcs11_pin_file")
# The token PIN, when no pkcs11_pin_file is configured (read by gateway/core/keys, never a
# setting: settings are printed and logged, a PIN never is).
PKCS11_PIN_ENV = "MIP_PKCS11_PIN"
DEFAULT_PKCS11_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
# What the gateway keeps in its data_dir: they belong together (gateway/core/secrets.py).
DB_FILE = "gateway.sqlite"
SECRETS_FILE = "secrets.json"
# A WebAuthn relying party id: a host name (dot-separated LDH labels, lower case, no port).
_DOMAIN = re.compile(r"(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
                     r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*")


def mip_home() -> Path:
    """The folder MIP's state lives in unless configured otherwise: `$MIP_HOME`, else the
    per-user data folder (platformdirs: `$XDG_DATA_HOME/mip`, by default
    `~/.local/share/mip`). Absolute, whatever the current folder."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser().absolute()
    return Path(platformdirs.user_data_dir("mip", appauthor=False)).absolute()


def default_data_dir(org: str | None = None) -> Path:
    """`<MIP home>/gateway`, or `<MIP home>/<org>/gateway` for an org's gateway: two orgs'
    gateways on one machine never share a data dir by default."""
    return (mip_home() / org / "gateway") if org else mip_home() / "gateway"


def default_key_label_prefix(org: str | None = None) -> str:
    """The prefix of the gateway's key labels in a PKCS#11 token: one per org's gateway, so
    gateways that share a token never open each other's keys by label."""
    return f"mip/{org}" if org else "mip"


def default_devnet_dir() -> Path:
    return mip_home() / "devnet"


class ConfigError(ValueError):
    """The configuration file is unreadable or holds an unknown or invalid setting."""


class Settings(BaseSettings):
    """Everything the gateway service and the CLI read from configuration."""

    model_config = SettingsConfigDict(env_prefix="MIP_", extra="forbid", frozen=True)

    # The member org this gateway is (an MSP id of chaincode/protocol/orgs.py; `mip serve
    # --org`, MIP_ORG). Set, the gateway holds that org's data dir, staff, KYC issuer, keys
    # and Fabric identities only, and refuses to act as any other org (gateway/core/
    # org_scope.py). Unset is the single-process arrangement in which one gateway serves
    # every org (devnet, the demo and the tests): development mode only.
    org: str | None = None
    # Where the gateway keeps its own state (SQLite, generated secrets, protected references).
    # (Defaults that depend on `org` take the fields validated so far: `org` comes first.)
    data_dir: Path = Field(default_factory=lambda data: default_data_dir(data.get("org")))
    # connection.json of the network (devnet writes it; scripts/network.sh writes the same).
    connection: Path = Field(default_factory=lambda: default_devnet_dir() / "connection.json")
    channel: str = "mipchannel"
    chaincode: str = "mip"
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    # Argon2id cost of the password key: "moderate" in production, "interactive" for tests.
    argon2_profile: Literal["moderate", "interactive"] = "moderate"
    # Vault password hardening (gateway/services/password_hardening.py): how many helper orgs
    # each vault is wrapped for. 1: the next org only (its rate limit is the only budget);
    # 2: also the org after it, so either can answer (availability) at the price of a second
    # budget of guesses (docs/gateway.md "Password hardening").
    vault_helpers: int = Field(default=1, ge=1, le=2)
    # Tests and the browser test fix the liveness challenge's random poses; None in production.
    liveness_seed: int | None = None
    # Demo and browser test only: restrict challenges to these poses (the simulated camera
    # cannot nod every portrait convincingly; docs/face.md). None = all poses (production).
    liveness_poses: tuple[Literal["left", "right", "up", "down"], ...] | None = None
    # Pharmacy pickup lockout: failed attempts within the window lock the prescription.
    pickup_max_failures: int = Field(default=5, ge=1)
    pickup_failure_window_s: float = Field(default=180.0, gt=0)
    pickup_lockout_s: float = Field(default=1800.0, gt=0)
    # Pickup lockouts back off: each further lock of the same (prescription, pharmacist)
    # doubles the lockout, up to this long (gateway/services/pickup.py).
    pickup_lockout_max_s: float = Field(default=86400.0, gt=0)
    # Request rate limits (gateway/core/rate_limits.py): tokens a second and bucket size per
    # staff token and per source address, and tighter ones for face work (frames, unlock,
    # pickup verdicts). The defaults stay far above what a counter, a desk, the demo or the
    # benches send; an operator tightens them for the site's load.
    rate_limit_per_token_rps: float = Field(default=100.0, gt=0)
    rate_limit_per_token_burst: int = Field(default=400, ge=1)
    rate_limit_per_source_rps: float = Field(default=200.0, gt=0)
    rate_limit_per_source_burst: int = Field(default=800, ge=1)
    rate_limit_face_per_token_rps: float = Field(default=30.0, gt=0)
    rate_limit_face_per_token_burst: int = Field(default=200, ge=1)
    rate_limit_face_per_source_rps: float = Field(default=60.0, gt=0)
    rate_limit_face_per_source_burst: int = Field(default=400, ge=1)
    # Face jobs queued or running at once (each one image's models, or one decision); one
    # more is refused with 503 `busy` and `retry_after_s` instead of waiting without bound.
    face_queue_max: int = Field(default=64, ge=1)
    # Memory after bursts (gateway/core/memory_release.py): free heap pages go back to the OS
    # once no request has been in flight this long (0: never), and the process uses at
    # most this many malloc arenas (0: glibc's default, 8 per core; the trim is what
    # returns a burst's memory, scripts/bench_memory.py).
    memory_trim_idle_s: float = Field(default=2.0, ge=0)
    malloc_arena_max: int = Field(default=0, ge=0, le=64)
    # Enrolment sessions and liveness challenges expire after this many seconds.
    session_ttl_s: float = Field(default=600.0, gt=0)
    # Credentials per KYC revocation registry (one per enrolment or KYC upgrade at the org).
    # A full registry rolls over to a new one (gateway/services/kyc.py); a registry's tails
    # file holders download grows with it (about 128 bytes a credential).
    kyc_registry_size: int = Field(default=1024, ge=1, le=1_000_000)
    log_level: str = "INFO"
    # "production" keeps every key-encryption and derivation key in a PKCS#11 token;
    # "development" (devnet, the demo, tests) also accepts the file provider, whose keys sit
    # in <data_dir>/secrets.json. Production is the default: a deployment has to say it is
    # not one (`mode: development` or `mip serve --dev`) to keep keys in a file.
    mode: Literal["production", "development"] = "production"
    # Where the gateway's keys live (gateway/core/keys): None = pkcs11 in production, file in
    # development. `file` outside development mode is refused at start.
    key_provider: Literal["pkcs11", "file"] | None = None
    # PKCS#11: the module (SoftHSM2's by default), the token's label, the PIN's file (else
    # $MIP_PKCS11_PIN) and the prefix of this gateway's key labels in the token (one per
    # org's gateway, e.g. "mip/HospitalMSP", when gateways share a token).
    pkcs11_module: Path = DEFAULT_PKCS11_MODULE
    pkcs11_token_label: str = "mip"  # noqa: S105 (a token's name, not a secret)
    pkcs11_pin_file: Path | None = None
    key_label_prefix: str = Field(
        default_factory=lambda data: default_key_label_prefix(data.get("org")),
        min_length=1, max_length=64)
    # Where each other member org's gateway answers (MSP id -> base URL, e.g.
    # {"HospitalMSP": "https://gw.hospital.example:8443"}; MIP_ORG_GATEWAYS as JSON): this
    # gateway reaches a custodial holder's enrolling org there (gateway/services/custody.py,
    # docs/gateway.md "Holders at another org's desk"). https only in production.
    org_gateways: dict[str, str] = Field(default_factory=dict)
    # The other orgs' gateways' TLS certificates (or their CA), PEM, for this gateway's own
    # calls to them (custody relay, password helper, screening); unset: the system's roots.
    peer_ca_file: Path | None = None
    # The holder wallet's WebAuthn relying party id (/wallet/). None: the page's own host, so
    # a passkey made at this gateway's host works at this host only. The consortium's shared
    # domain (e.g. "mip.example" for gateways at hospital.mip.example, school.mip.example,
    # ...) makes one passkey, hence one PRF-derived master secret and the same keys, work at
    # every member org's gateway (docs/gateway.md "One wallet at every org's gateway"). The
    # browser accepts it only on hosts that are that domain or under it.
    wallet_rp_id: str | None = None

    @field_validator("org")
    @classmethod
    def _member_org(cls, value: str | None) -> str | None:
        if value is not None and value not in MEMBER_ORGS:
            raise ValueError(f"unknown org {value!r} (members: {', '.join(sorted(MEMBER_ORGS))})")
        return value

    @field_validator("org_gateways")
    @classmethod
    def _gateway_urls(cls, value: dict[str, str]) -> dict[str, str]:
        for org, url in value.items():
            if org not in MEMBER_ORGS:
                raise ValueError(f"org_gateways: unknown org {org!r}")
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"org_gateways.{org}: a http(s) base URL, not {url!r}")
        return {org: url.rstrip("/") for org, url in value.items()}

    @field_validator("wallet_rp_id")
    @classmethod
    def _rp_id(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _DOMAIN.fullmatch(value):
            raise ValueError(f"wallet_rp_id: a lower-case domain name (e.g. mip.example), not "
                             f"{value!r}")
        return value

    @field_validator("data_dir", "connection", "pkcs11_module")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        # Absolute now, so a later change of the current folder changes nothing.
        return value.expanduser().absolute()

    @field_validator("pkcs11_pin_file", "peer_ca_file")
    @classmethod
    def _expand_optional(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser().absolute()

    @property
    def key_provider_kind(self) -> Literal["pkcs11", "file"]:
        """The provider this configuration asks for (explicit, else by mode)."""
        if self.key_provider is not None:
            return self.key_provider
        return "file" if self.mode == "development" else "pkcs11"

    @property
    def db_path(self) -> Path:
        return self.data_dir / DB_FILE

    @property
    def secrets_path(self) -> Path:
        return self.data_dir / SECRETS_FILE

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit arguments (the YAML file's content, see load_settings) lose to the
        # environment: an operator overrides one value without editing the file.
        return env_settings, init_settings


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of settings")
    return raw


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from `config` (or $MIP_CONFIG, if set), the environment and `overrides`.

    `overrides` (CLI flags) win over the file; the environment wins over both except for
    explicit overrides, which are applied last.
    """
    from pydantic import ValidationError

    path = config or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    values = read_yaml(path) if path is not None else {}
    if path is not None:
        values = _anchor_paths(values, path)
    try:
        settings = Settings(**values)
        if overrides:
            # Validated again from what was configured (file, environment) plus the flags,
            # so that defaults derived from a flag (`--org`'s data dir and key labels) follow
            # it; the file-and-environment values come from the first pass.
            given = set(values) | _environment_keys()
            configured = settings.model_dump(include={k for k in given if k not in overrides})
            settings = _given_only({**configured, **overrides})
    except ValidationError as exc:
        where = f" in {path}" if path is not None else ""
        # (A default computed from a field that failed adds nothing the field's own error
        # does not say.)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            if e["type"] != "default_factory_not_called")
        raise ConfigError(f"invalid settings{where}: {problems}") from None
    return settings


class _GivenSettings(Settings):
    """Settings from the values given only: no environment (it was read in the first pass,
    and would otherwise win over the flags)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _given_only(values: dict[str, Any]) -> Settings:
    checked = _GivenSettings(**values)
    # The values are validated; a plain Settings of them (not the subclass) goes out.
    return Settings.model_construct(_fields_set=checked.model_fields_set, **dict(checked))


def _environment_keys() -> set[str]:
    """The settings named by `MIP_*` variables (matched as pydantic-settings does: any case)."""
    present = {name.upper() for name in os.environ}
    return {field for field in Settings.model_fields if f"MIP_{field.upper()}" in present}


def _anchor_paths(values: dict[str, Any], config: Path) -> dict[str, Any]:
    """Relative paths of the YAML file, taken relative to the file's own folder."""
    out = dict(values)
    for key in _PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str) and value and not value.startswith("~") \
                and not Path(value).is_absolute():
            out[key] = str(config.absolute().parent / value)
    return out
