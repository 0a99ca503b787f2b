"""Choosing and opening the gateway's key provider from its settings.

`key_provider: file` (or the development default) is accepted only with `mode: development`
(`mip serve --dev`): under it the key-encryption keys are bytes in `<data_dir>/secrets.json`
beside the data they protect. Everything else gets `Pkcs11Provider`, whose keys never leave
the token; no `secrets.json` is written then, and a data dir that holds one (data sealed
under file keys) is refused rather than left unreadable.
"""

from __future__ import annotations

from gateway.core.config import PKCS11_PIN_ENV, Settings
from gateway.core.secrets import DataDirMismatch, check_data_dir, load_or_create_secrets

from .file_provider import FileProvider
from .provider import KeyProvider, KeyProviderError

FILE_REFUSAL = (
    "refusing the file key provider outside development mode: its keys would sit in {path} "
    "beside the data they protect. Production keeps them in a PKCS#11 token "
    "(key_provider: pkcs11 with pkcs11_module, pkcs11_token_label and a PIN; docs/deploy.md); "
    "devnet and the demo run with `mode: development` (or `mip serve --dev`)")


def check_key_settings(settings: Settings) -> None:
    """Refuse, before anything is made, a provider the mode does not allow, and a data dir
    that does not match the provider's keys (gateway/core/secrets.py for the file)."""
    if settings.key_provider_kind == "file":
        if settings.mode != "development":
            raise KeyProviderError(FILE_REFUSAL.format(path=settings.secrets_path))
        check_data_dir(settings.db_path, settings.secrets_path)
    elif settings.secrets_path.exists():
        raise DataDirMismatch(
            f"{settings.secrets_path} exists: this data dir was made under the file key "
            "provider and its data is sealed under those keys, which a PKCS#11 token does not "
            "hold. Keep key_provider: file (development only), or start a new data dir")


def open_key_provider(settings: Settings) -> KeyProvider:
    """The provider the settings ask for, its keys made on first start (call
    `check_key_settings` first, before the database is created)."""
    if settings.key_provider_kind == "file":
        return FileProvider(load_or_create_secrets(settings.secrets_path))
    from .pkcs11_provider import Pkcs11Provider, read_pin

    return Pkcs11Provider.open(
        settings.pkcs11_module, settings.pkcs11_token_label,
        lambda: read_pin(settings.pkcs11_pin_file, PKCS11_PIN_ENV), settings.key_label_prefix,
        database_exists=settings.db_path.exists())
