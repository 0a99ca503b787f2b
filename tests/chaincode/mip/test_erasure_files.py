"""After `Credential:Erase` and `Credential:Purge`, the content's plaintext is in none of
devnet's database files (the SQLite file, its -wal and -shm) once the WAL is checkpointed:
devnet deletes with SQLite's secure_delete, which overwrites a deleted row instead of
leaving it in a free page. And those files are 0600."""

from __future__ import annotations

import json
import secrets
import sqlite3
import stat

import pytest
from credential_kit import HOSPITAL, issue, sample_content
from mip_testkit import Account, Holder, MipClients, MipNetwork, open_account, request_arg


@pytest.fixture
async def account(mip: MipClients, holder: Holder) -> Account:
    return await open_account(mip, holder, HOSPITAL)


async def test_purged_content_leaves_no_plaintext_in_the_ledger_files(
    mip: MipClients, mip_network: MipNetwork, account: Account
) -> None:
    if not mip_network.is_devnet:
        pytest.skip("the real network's stores cannot be read beside the running peers")
    canary = f"canary-{secrets.token_hex(12)}"
    issued = await issue(mip, account, "record", sample_content("record", notes=canary))
    ledger = mip_network.data_dir / "ledger.sqlite"
    files = [ledger, ledger.with_name("ledger.sqlite-wal"), ledger.with_name("ledger.sqlite-shm")]
    # The content is stored (in clear, in the issuer's private store) before the erasure.
    assert any(canary.encode() in f.read_bytes() for f in files if f.exists())

    gateway = await mip.client(HOSPITAL, "gateway")
    request = account.sign("credential.erase", {"credential_id": issued.credential_id})
    await gateway.submit("Credential:Erase", [request_arg(request)])
    purged = json.loads(await gateway.submit("Credential:Purge", [issued.credential_id],
                                             endorsing_orgs=[HOSPITAL]))
    assert purged["purged"] is True

    with sqlite3.connect(ledger) as db:
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    for file in files:
        if file.exists():
            assert canary.encode() not in file.read_bytes(), file.name
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name
