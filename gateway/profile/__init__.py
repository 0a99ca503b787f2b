"""The smart profile: a holder-owned, encrypted store of the holder's records and imported data.

::

    from gateway.holder.keys import profile_key
    from gateway.profile import ProfileStore

    me = profile_key(master)                          # nacl.public.PrivateKey (X25519)
    with ProfileStore("/var/lib/mip/profile.sqlite") as store:
        rid = store.add_record(me.public_key, "fitness.daily", "fitapp", data, {"day": "..."})
        store.list_records(me)                        # list[RecordInfo], metadata decrypted
        store.open_record(rid, me)                    # bytes
        store.share(rid, me, grantee_public)          # grantee opens with its own key
        store.unshare(rid, me, grantee_public)        # removes its envelope, re-keys
        store.delete(rid, me)

Keys are X25519 (`nacl.public`). A grantee known by an Ed25519 key uses
`gateway.holder.x25519.x25519_public_from_ed25519` / `x25519_private_from_ed25519`.
Layout, threat model and what `unshare` can and cannot take back: `gateway.profile.store`;
the cryptography: `gateway.profile.sealing`. Every error is a `ProfileError`.
"""

from gateway.profile.errors import (
    AccessDenied,
    InvalidRecord,
    ProfileError,
    RecordCorrupt,
    RecordNotFound,
)
from gateway.profile.store import ProfileStore, RecordInfo

__all__ = [
    "AccessDenied",
    "InvalidRecord",
    "ProfileError",
    "ProfileStore",
    "RecordCorrupt",
    "RecordInfo",
    "RecordNotFound",
]
