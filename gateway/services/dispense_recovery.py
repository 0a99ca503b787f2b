"""What a pickup's `Pharmacy:Dispense` submitted, kept so a crash strands no pickup.

Before each Dispense transaction goes to the orderer, its id and the result its endorsers
computed (`{"fill", "remaining", ...}`) are appended to the pickup's `dispense_txs` (JSON list).
A pickup left `dispensing` by a crash (kill -9) or by an outcome the gateway could not learn
(a commit-status timeout) is reconciled by the next dispense of it:

- a recorded transaction committed VALID (Fabric's CommitStatus): the pickup was dispensed,
  and the answer is that transaction's result, as the first call would have answered;
- none did (each invalidated, or in no block within STATUS_TIMEOUT_S): the same attestation
  is submitted again. Its nonce is burnt by the Dispense that commits, so of all
  transactions of one pickup at most one takes a fill; a resubmission refused as `replay`
  means an earlier one committed after all (ordered late), and the answer is the counter.

Limit: the contract checks the prescription's fills and expiry before the nonce, so if a
transaction ordered after its status timed out took the last fill, the resubmission is
refused `precondition_failed` (not `replay`) and the pickup is marked `failed` although it
was dispensed; the ledger's counter and access record still say so. Peers find a committed
transaction by id at once, so this needs a transaction still in the orderer seconds after
the crash and the restart.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.fabric import Contract, DeadlineExceeded, Transaction
from gateway.store import Database

COLUMNS = {"dispense_txs": "TEXT"}
# How long to wait for a recorded transaction's commit status: a peer answers at once for a
# transaction in a block and waits for one it has not seen (never submitted: a crash between
# recording and sending).
STATUS_TIMEOUT_S = 2.0


def record_submission(db: Database, pickup_id: str, transaction: Transaction) -> None:
    """Append the endorsed transaction about to be submitted (committed before it is sent)."""
    entry = {"tx_id": transaction.transaction_id,
             "result": transaction.result.decode("utf-8", "replace")}
    with db.transaction() as conn:
        row = conn.execute("SELECT dispense_txs FROM pickups WHERE pickup_id = ?",
                           (pickup_id,)).fetchone()
        recorded = json.loads(row["dispense_txs"] or "[]") if row is not None else []
        conn.execute("UPDATE pickups SET dispense_txs = ? WHERE pickup_id = ?",
                     (json.dumps([*recorded, entry]), pickup_id))


async def committed_result(contract: Contract, recorded_json: str | None
                           ) -> dict[str, Any] | None:
    """The result of the recorded transaction that committed VALID, or None if none did (as
    far as the peers can say within STATUS_TIMEOUT_S each). Also used for the transactions of
    a passport revocation (passport_revocation.py) and of an analytics debit
    (research_queries.py), recorded the same way."""
    for entry in json.loads(recorded_json or "[]"):
        try:
            status = await contract.commit_status(str(entry["tx_id"]),
                                                  timeout=STATUS_TIMEOUT_S)
        except DeadlineExceeded:
            # No peer has it in a block: never sent, or not ordered yet (then the
            # resubmission and it race on the nonce, and one commits). Any other failure
            # (peers unreachable) propagates: the pickup stays `dispensing` for a later try.
            continue
        if status.successful:
            result: dict[str, Any] = json.loads(entry["result"])
            return result
    return None
