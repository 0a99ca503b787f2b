"""read_private on a peer without a copy of the content, as real Fabric 2.5 reports it.

Devnet's peer answers GET_STATE for a private key it does not hold with an empty payload; a
real Fabric peer whose ledger has the value's hash but whose private store lacks the value (not
a collection member) answers with an error. Both must come out as the contract's own
precondition_failed, and no other peer error may be hidden.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest

from chaincode.mip.credentials import read_private
from chaincode.mip.errors import PreconditionFailed
from chaincode.shim import Context, PeerError

FABRIC_NO_COPY = (
    "GET_STATE failed: transaction ID: 00ff: private data matching public hash version is not "
    "available. Public hash version = {BlockNum: 248, TxNum: 0}, Private data version = <nil>"
)
RECORD = {"id": "rx-1", "collection": "medical", "hash": "00"}


class Stub:
    def __init__(self, error: Exception | None) -> None:
        self.error = error

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        if self.error is not None:
            raise self.error
        return None


def ctx(error: Exception | None) -> Context:
    return cast(Context, SimpleNamespace(stub=Stub(error)))


@pytest.mark.parametrize("error", [None, PeerError(FABRIC_NO_COPY)])
async def test_no_copy_is_precondition_failed(error: Exception | None) -> None:
    with pytest.raises(PreconditionFailed, match="holds no copy"):
        await read_private(ctx(error), dict[str, Any](RECORD))


async def test_other_peer_errors_pass_through() -> None:
    with pytest.raises(PeerError, match="ledger is closed"):
        await read_private(ctx(PeerError("GET_STATE failed: ledger is closed")), dict(RECORD))
