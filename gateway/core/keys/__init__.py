"""The gateway's keys at rest behind one interface (`KeyProvider`): PKCS#11 in production,
a file in development. See provider.py, and docs/gateway.md "Key management"."""

from .names import DeriverName, KekName
from .provider import KeyProvider, KeyProviderError
from .startup import check_key_settings, open_key_provider

__all__ = ["DeriverName", "KekName", "KeyProvider", "KeyProviderError", "check_key_settings",
           "open_key_provider"]
