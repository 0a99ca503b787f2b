"""Opt-in retry of MVCC / phantom read conflicts, and of endorsements that differ."""

from __future__ import annotations

import pytest
from fabric_protos.peer import transaction_pb2
from fabric_testkit import MVCC, Served

from gateway.fabric import CommitError, EndorseError, Gateway, RetryPolicy
from gateway.fabric.errors import ENDORSEMENTS_DIFFER

PHANTOM = transaction_pb2.TxValidationCode.PHANTOM_READ_CONFLICT
FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.01)


async def test_no_retry_by_default(gateway: Gateway, served: Served) -> None:
    served.fake.commit_codes = [MVCC]
    with pytest.raises(CommitError) as info:
        await (
            gateway.get_network("mipchannel").get_contract("mip").submit("CreateAsset", ["r", "v"])
        )
    assert info.value.code_name == "MVCC_READ_CONFLICT"
    assert served.fake.calls.count("Endorse") == 1


async def test_retry_until_success(gateway: Gateway, served: Served) -> None:
    served.fake.commit_codes = [MVCC, PHANTOM]
    contract = gateway.get_network("mipchannel").get_contract("mip")
    assert await contract.submit("CreateAsset", ["r1", "v"], retry_policy=FAST) == b"v"
    assert served.fake.calls.count("Endorse") == 3
    tx_ids = {p.tx_id for p in served.fake.proposals}
    assert len(tx_ids) == 3  # every attempt is a new transaction
    assert served.fake.state == {"r1": b"v"}


async def test_retry_gives_up(gateway: Gateway, served: Served) -> None:
    served.fake.commit_codes = [MVCC, MVCC, MVCC, MVCC]
    contract = gateway.get_network("mipchannel").get_contract("mip")
    with pytest.raises(CommitError) as info:
        await contract.submit("CreateAsset", ["r2", "v"], retry_policy=FAST)
    assert info.value.code_name == "MVCC_READ_CONFLICT"
    assert served.fake.calls.count("Endorse") == 3
    assert served.fake.commit_codes == [MVCC]


async def test_other_codes_not_retried(gateway: Gateway, served: Served) -> None:
    served.fake.commit_codes = [transaction_pb2.TxValidationCode.ENDORSEMENT_POLICY_FAILURE]
    gateway.retry_policy = FAST  # gateway-wide policy
    with pytest.raises(CommitError):
        await (
            gateway.get_network("mipchannel").get_contract("mip").submit("CreateAsset", ["r3", "v"])
        )
    assert served.fake.calls.count("Endorse") == 1


async def test_differing_endorsements_are_endorsed_again(gateway: Gateway,
                                                         served: Served) -> None:
    """Endorsers on either side of a commit (a majority policy) return different results;
    with a retry policy the client endorses again, as after a read conflict."""
    contract = gateway.get_network("mipchannel").get_contract("mip")
    served.fake.endorse_failures = [ENDORSEMENTS_DIFFER, ENDORSEMENTS_DIFFER]
    assert await contract.submit("CreateAsset", ["r4", "v"], retry_policy=FAST) == b"v"
    assert served.fake.calls.count("Endorse") == 3
    served.fake.endorse_failures = [ENDORSEMENTS_DIFFER]
    with pytest.raises(EndorseError) as info:  # no retry policy: the caller sees it
        await contract.submit("CreateAsset", ["r5", "v"])
    assert info.value.endorsements_differ
    # Any other endorsement failure is not retried.
    served.fake.endorse_failures = ["chaincode response 500, boom"]
    with pytest.raises(EndorseError) as info:
        await contract.submit("CreateAsset", ["r6", "v"], retry_policy=FAST)
    assert not info.value.endorsements_differ
    assert served.fake.calls.count("Endorse") == 5


def test_policy_delays_are_jittered_and_bounded() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=0.3)
    delays = [policy.delay(attempt) for attempt in (1, 2, 3, 4) for _ in range(50)]
    assert all(0 <= d <= 0.3 for d in delays)
    assert len(set(delays)) > 100
    assert max(policy.delay(1) for _ in range(200)) <= 0.1
    assert policy.should_retry(MVCC, 4) and not policy.should_retry(MVCC, 5)
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
