"""A deliberately non-deterministic contract: two endorsers never agree on its write."""

from __future__ import annotations

import os

from chaincode.shim import Context, Contract, transaction


class RandomContract(Contract):  # type: ignore[misc]
    @transaction()
    async def PutRandom(self, ctx: Context, key: str) -> None:
        await ctx.stub.put_state(key, os.urandom(8))
