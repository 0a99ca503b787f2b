"""Protected face references (ISO/IEC 24745): keyed renewable transform, envelope
encryption, ledger commitment. See docs/face.md for the construction and its argument."""

from face_engine.protect.errors import (
    InvalidEmbedding,
    InvalidHolder,
    InvalidKey,
    MalformedReference,
    ReferenceMismatch,
    RevokedReference,
    StaleVersion,
    TamperedReference,
    TemplateProtectionError,
    WrongKey,
)
from face_engine.protect.keys import generate_keys, keys_from_env
from face_engine.protect.linkability import linkability_dsys
from face_engine.protect.protector import TemplateProtector
from face_engine.protect.reference import ProtectedReference
from face_engine.protect.registry import (
    InMemoryReferenceRegistry,
    ReferenceRegistry,
    RegistryEntry,
)

__all__ = [
    "InMemoryReferenceRegistry",
    "InvalidEmbedding",
    "InvalidHolder",
    "InvalidKey",
    "MalformedReference",
    "ProtectedReference",
    "ReferenceMismatch",
    "ReferenceRegistry",
    "RegistryEntry",
    "RevokedReference",
    "StaleVersion",
    "TamperedReference",
    "TemplateProtectionError",
    "TemplateProtector",
    "WrongKey",
    "generate_keys",
    "keys_from_env",
    "linkability_dsys",
]
