"""`ChaincodeStub`: a transaction's view of the ledger, one peer round trip per call.

Method names and semantics follow fabric-chaincode-go's `shim.ChaincodeStub`; every call
that reaches the peer is a coroutine. Values and transient data are never logged here.
"""

from __future__ import annotations

from datetime import datetime

from chaincode.shim import keys
from chaincode.shim._protos import (
    DecodeError,
    Message,
    chaincode_event_pb2,
    chaincode_pb2,
    proposal_response_pb2,
    shim_pb2,
)
from chaincode.shim.errors import InvalidCollectionError, ProposalError, ProtocolError, ShimError
from chaincode.shim.iterators import (
    HistoryQueryIterator,
    QueryIterator,
    QueryPage,
    StateQueryIterator,
    parse_key_modification,
    parse_kv,
)
from chaincode.shim.proposal import ParsedProposal
from chaincode.shim.txstate import PeerCaller, TxState

_MSG = shim_pb2.ChaincodeMessage
# peer.MetaDataKeys_VALIDATION_PARAMETER.String() in Go.
VALIDATION_PARAMETER = "VALIDATION_PARAMETER"


def _check_collection(collection: str) -> None:
    if not collection:
        raise InvalidCollectionError("collection must not be an empty string")


def _query_metadata(page_size: int, bookmark: str) -> bytes:
    if not 0 < page_size <= 2**31 - 1:
        raise ShimError("page_size must be a positive 32-bit integer")
    return shim_pb2.QueryMetadata(pageSize=page_size, bookmark=bookmark).SerializeToString()


class ChaincodeStub:
    """The ledger API of one transaction."""

    __slots__ = ("_args", "_caller", "_decorations", "_proposal", "_tx", "event")

    def __init__(
        self,
        caller: PeerCaller,
        tx: TxState,
        chaincode_input: Message,
        signed_proposal: Message | None,
    ) -> None:
        self._caller = caller
        self._tx = tx
        self._args: list[bytes] = list(chaincode_input.args)
        self._decorations = chaincode_input.decorations
        self._proposal = ParsedProposal(signed_proposal) if signed_proposal is not None else None
        # Set by set_event; sent in the COMPLETED message.
        self.event: Message | None = None

    # --- transaction facts -------------------------------------------------------------

    @property
    def tx_id(self) -> str:
        return self._tx.txid

    @property
    def channel_id(self) -> str:
        return self._tx.channel_id

    def get_args(self) -> list[bytes]:
        return self._args

    def get_string_args(self) -> list[str]:
        return [arg.decode("utf-8", "replace") for arg in self._args]

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        args = self.get_string_args()
        if not args:
            return "", []
        return args[0], args[1:]

    def get_decorations(self) -> dict[str, bytes]:
        return dict(self._decorations)

    def _require_proposal(self) -> ParsedProposal:
        if self._proposal is None:
            raise ProposalError("the transaction carries no signed proposal")
        return self._proposal

    def get_signed_proposal(self) -> Message | None:
        return self._proposal.signed_proposal if self._proposal is not None else None

    def get_creator(self) -> bytes:
        """The serialized identity (msp.SerializedIdentity bytes) of the submitter."""
        return self._require_proposal().creator

    def get_transient(self) -> dict[str, bytes]:
        return self._proposal.transient if self._proposal is not None else {}

    def get_binding(self) -> bytes:
        return self._require_proposal().binding

    def get_tx_timestamp(self) -> Message:
        """The client's timestamp from the proposal's channel header (same on every endorser)."""
        return self._require_proposal().timestamp

    def get_tx_datetime(self) -> datetime:
        """`get_tx_timestamp` as an aware UTC datetime (microsecond precision)."""
        return self._require_proposal().utc_datetime

    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ShimError("event name can not be empty string")
        self.event = chaincode_event_pb2.ChaincodeEvent(event_name=name, payload=payload)

    # --- public state ------------------------------------------------------------------

    async def _call(self, msg_type: int, payload: bytes) -> bytes:
        return await self._caller.call(self._tx, msg_type, payload)

    async def _get(self, msg_type: int, collection: str, key: str) -> bytes | None:
        request = shim_pb2.GetState(key=key, collection=collection).SerializeToString()
        value = await self._call(msg_type, request)
        # The peer answers an absent key with an empty payload.
        return value or None

    async def _put(self, collection: str, key: str, value: bytes) -> None:
        keys.validate_write_key(key)
        request = shim_pb2.PutState(key=key, value=value, collection=collection)
        await self._call(_MSG.PUT_STATE, request.SerializeToString())

    async def _del(self, collection: str, key: str) -> None:
        keys.validate_write_key(key)
        request = shim_pb2.DelState(key=key, collection=collection).SerializeToString()
        await self._call(_MSG.DEL_STATE, request)

    async def get_state(self, key: str) -> bytes | None:
        """The committed value of `key`, or None when absent."""
        return await self._get(_MSG.GET_STATE, "", key)

    async def put_state(self, key: str, value: bytes) -> None:
        await self._put("", key, value)

    async def del_state(self, key: str) -> None:
        await self._del("", key)

    def _range(
        self, collection: str, start: str, end: str, metadata: bytes = b""
    ) -> StateQueryIterator:
        request = shim_pb2.GetStateByRange(
            startKey=start, endKey=end, collection=collection, metadata=metadata
        ).SerializeToString()
        return QueryIterator(self._caller, self._tx, _MSG.GET_STATE_BY_RANGE, request, parse_kv)

    @staticmethod
    def _simple_range(start: str, end: str) -> tuple[str, str]:
        start = start or keys.EMPTY_KEY_SUBSTITUTE
        keys.validate_simple_keys(start, end)
        return start, end

    def get_state_by_range(
        self, start: str, end: str, page_size: int | None = None, bookmark: str = ""
    ) -> StateQueryIterator:
        """`async for key, value in stub.get_state_by_range(a, b)`: keys in [a, b).

        An empty `end` means "to the end". With `page_size`, the peer stops after that many
        records and `iterator.metadata` holds the bookmark once iteration has finished.
        """
        start, end = self._simple_range(start, end)
        metadata = _query_metadata(page_size, bookmark) if page_size is not None else b""
        return self._range("", start, end, metadata)

    async def get_state_by_range_with_pagination(
        self, start: str, end: str, page_size: int, bookmark: str = ""
    ) -> QueryPage:
        return await self._page(self.get_state_by_range(start, end, page_size, bookmark))

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: list[str]
    ) -> StateQueryIterator:
        start, end = keys.partial_composite_key_range(object_type, attributes)
        return self._range("", start, end)

    async def get_state_by_partial_composite_key_with_pagination(
        self, object_type: str, attributes: list[str], page_size: int, bookmark: str = ""
    ) -> QueryPage:
        start, end = keys.partial_composite_key_range(object_type, attributes)
        return await self._page(self._range("", start, end, _query_metadata(page_size, bookmark)))

    @staticmethod
    async def _page(iterator: StateQueryIterator) -> QueryPage:
        # The peer may split even one page into batches; the metadata arrives with the last.
        results = await iterator.collect()
        metadata = iterator.metadata
        return QueryPage(
            results=results,
            bookmark=metadata.bookmark if metadata is not None else "",
            fetched_records_count=(
                metadata.fetched_records_count if metadata is not None else len(results)
            ),
        )

    def get_query_result(self, query: str) -> StateQueryIterator:
        """A CouchDB rich query (only on peers whose state database is CouchDB)."""
        request = shim_pb2.GetQueryResult(query=query).SerializeToString()
        return QueryIterator(self._caller, self._tx, _MSG.GET_QUERY_RESULT, request, parse_kv)

    def get_history_for_key(self, key: str) -> HistoryQueryIterator:
        request = shim_pb2.GetHistoryForKey(key=key).SerializeToString()
        return QueryIterator(
            self._caller, self._tx, _MSG.GET_HISTORY_FOR_KEY, request, parse_key_modification
        )

    # --- composite keys ----------------------------------------------------------------

    @staticmethod
    def create_composite_key(object_type: str, attributes: list[str]) -> str:
        return keys.create_composite_key(object_type, attributes)

    @staticmethod
    def split_composite_key(composite_key: str) -> tuple[str, list[str]]:
        return keys.split_composite_key(composite_key)

    # --- private data ------------------------------------------------------------------

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        _check_collection(collection)
        return await self._get(_MSG.GET_STATE, collection, key)

    async def get_private_data_hash(self, collection: str, key: str) -> bytes | None:
        """SHA-256 of the private value, readable by peers outside the collection."""
        _check_collection(collection)
        return await self._get(_MSG.GET_PRIVATE_DATA_HASH, collection, key)

    async def put_private_data(self, collection: str, key: str, value: bytes) -> None:
        _check_collection(collection)
        await self._put(collection, key, value)

    async def del_private_data(self, collection: str, key: str) -> None:
        _check_collection(collection)
        await self._del(collection, key)

    async def purge_private_data(self, collection: str, key: str) -> None:
        """Delete the private value and purge its history from the peers' private stores."""
        _check_collection(collection)
        # Go's shim sends a DelState payload for PURGE_PRIVATE_DATA; the peer parses it so.
        request = shim_pb2.DelState(key=key, collection=collection).SerializeToString()
        await self._call(_MSG.PURGE_PRIVATE_DATA, request)

    def get_private_data_by_range(
        self, collection: str, start: str, end: str
    ) -> StateQueryIterator:
        _check_collection(collection)
        start, end = self._simple_range(start, end)
        return self._range(collection, start, end)

    def get_private_data_by_partial_composite_key(
        self, collection: str, object_type: str, attributes: list[str]
    ) -> StateQueryIterator:
        _check_collection(collection)
        start, end = keys.partial_composite_key_range(object_type, attributes)
        return self._range(collection, start, end)

    # --- key-level endorsement (validation parameters) ---------------------------------

    async def _get_metadata(self, collection: str, key: str) -> dict[str, bytes]:
        request = shim_pb2.GetStateMetadata(key=key, collection=collection).SerializeToString()
        payload = await self._call(_MSG.GET_STATE_METADATA, request)
        try:
            result = shim_pb2.StateMetadataResult.FromString(payload)
        except DecodeError:
            raise ProtocolError("could not unmarshal metadata response") from None
        return {entry.metakey: entry.value for entry in result.entries}

    async def _put_metadata(self, collection: str, key: str, metakey: str, value: bytes) -> None:
        request = shim_pb2.PutStateMetadata(
            key=key,
            collection=collection,
            metadata=shim_pb2.StateMetadata(metakey=metakey, value=value),
        ).SerializeToString()
        await self._call(_MSG.PUT_STATE_METADATA, request)

    async def get_state_validation_parameter(self, key: str) -> bytes | None:
        """The key-level endorsement policy (SignaturePolicyEnvelope bytes), if any."""
        return (await self._get_metadata("", key)).get(VALIDATION_PARAMETER)

    async def set_state_validation_parameter(self, key: str, endorsement_policy: bytes) -> None:
        await self._put_metadata("", key, VALIDATION_PARAMETER, endorsement_policy)

    async def get_private_data_validation_parameter(
        self, collection: str, key: str
    ) -> bytes | None:
        _check_collection(collection)
        return (await self._get_metadata(collection, key)).get(VALIDATION_PARAMETER)

    async def set_private_data_validation_parameter(
        self, collection: str, key: str, endorsement_policy: bytes
    ) -> None:
        _check_collection(collection)
        await self._put_metadata(collection, key, VALIDATION_PARAMETER, endorsement_policy)

    # --- chaincode to chaincode --------------------------------------------------------

    async def invoke_chaincode(
        self, chaincode_name: str, args: list[bytes], channel: str = ""
    ) -> tuple[int, str, bytes]:
        """Call another chaincode; returns its (status, message, payload)."""
        name = f"{chaincode_name}/{channel}" if channel else chaincode_name
        spec = chaincode_pb2.ChaincodeSpec(
            chaincode_id=chaincode_pb2.ChaincodeID(name=name),
            input=chaincode_pb2.ChaincodeInput(args=args),
        )
        payload = await self._call(_MSG.INVOKE_CHAINCODE, spec.SerializeToString())
        try:
            inner = shim_pb2.ChaincodeMessage.FromString(payload)
            if inner.type != _MSG.COMPLETED:
                return 500, inner.payload.decode("utf-8", "replace"), b""
            response = proposal_response_pb2.Response.FromString(inner.payload)
        except DecodeError:
            raise ProtocolError("could not unmarshal the invoked chaincode's response") from None
        return response.status, response.message, response.payload
