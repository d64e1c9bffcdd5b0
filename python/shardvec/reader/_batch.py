"""The engine-independent half of distributed batch search (``shardvec.reader.spark``, ``.dask``
and ``.ray``).

The driver (:func:`plan_search`) pins the snapshot the store's ``_CURRENT`` names (or the manifest
given), checks every argument with a reader of that snapshot (no shard is downloaded), and returns a
picklable :class:`SearchSpec`. Workers then call :func:`route_table` (each query's group key: the
shard it routes to first) and, after the engine co-locates each group, :func:`search_table` (one
``batch_search`` of the engine over the group's queries, so each shard a group probes is read once for
all its queries, and the answers are exactly those of ``batch_search`` on one machine). Every task's
reader reads the pinned snapshot, whatever ``_CURRENT`` says meanwhile.
"""

from __future__ import annotations

import json
import pickle
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shardvec.errors import ConfigValidationError, ManifestStoreError
from shardvec.manifest_store import S3ManifestStore
from shardvec.vector._distributed import vectors_from_arrow
from shardvec.vector.reader import ShardedVectorReader
from shardvec.vector.types import VectorShardingStrategy

__all__ = ["CHUNK_ROWS", "GROUP_COL", "RESULT_COLUMNS", "SearchSpec", "plan_search", "result_schema", "route_table",
           "search_chunks", "search_table"]

GROUP_COL = "__shardvec_group"
RESULT_COLUMNS = ("query_id", "rank", "id", "score", "payload")
# Queries per engine call inside a task (bounds its memory; a shard is reused across calls).
CHUNK_ROWS = 4096
# Queries that are not routed by their vector (shard_ids given, a CEL or EXPLICIT snapshot) are spread
# over this many groups by their row number.
UNROUTED_GROUPS = 16
# Readers a worker process keeps open (per pinned snapshot and reader settings).
_MAX_READERS = 4


@dataclass(frozen=True)
class SearchSpec:
    """Everything a task needs; picklable (``credential_provider`` is shipped only when it pickles,
    else its credentials, resolved on the driver, are)."""

    s3_prefix: str
    manifest_ref: str  # the pinned snapshot's manifest
    query_col: str
    id_col: str
    dim: int
    top_k: int
    num_probes: int | None
    filter: str | None
    sublist_probes: int | None
    max_extra_probes: int | None
    shard_ids: tuple[int, ...] | None
    routing_context: Mapping[str, Any] | None
    routes_by_vector: bool
    result_ids: str  # "int" (every id of the snapshot is an integer) or "str"
    local_root: str | None
    max_workers: int
    credential_provider: Any
    s3_connection_options: Mapping[str, Any] | None

    def reader(self) -> ShardedVectorReader:
        """This process's reader of the pinned snapshot (opened once, then reused by later tasks)."""
        key = pickle.dumps((self.s3_prefix, self.manifest_ref, self.local_root, self.max_workers,
                            self.credential_provider, self.s3_connection_options))
        with _READERS_LOCK:
            reader = _READERS.get(key)
            if reader is not None:
                _READERS.move_to_end(key)
                return reader
        reader = open_pinned_reader(self.s3_prefix, self.manifest_ref, local_root=self.local_root,
                                    max_workers=self.max_workers, credential_provider=self.credential_provider,
                                    s3_connection_options=self.s3_connection_options)
        with _READERS_LOCK:
            if key in _READERS:  # another thread of this process opened it meanwhile
                reader.close()
                return _READERS[key]
            _READERS[key] = reader
            while len(_READERS) > _MAX_READERS:
                _READERS.popitem(last=False)[1].close()
        return reader

    def search_args(self) -> dict[str, Any]:
        return {"num_probes": self.num_probes, "filter": self.filter, "sublist_probes": self.sublist_probes,
                "max_extra_probes": self.max_extra_probes,
                "shard_ids": None if self.shard_ids is None else list(self.shard_ids),
                "routing_context": None if self.routing_context is None else dict(self.routing_context)}


_READERS: OrderedDict[bytes, ShardedVectorReader] = OrderedDict()
_READERS_LOCK = threading.Lock()


def open_pinned_reader(s3_prefix: str, manifest_ref: str, *, local_root: str | None, max_workers: int,
                       credential_provider: Any, s3_connection_options: Mapping[str, Any] | None
                       ) -> ShardedVectorReader:
    """A reader of the manifest ``manifest_ref``, whatever ``_CURRENT`` says now or later."""
    return ShardedVectorReader(s3_prefix=s3_prefix, local_root=local_root, manifest_ref=manifest_ref,
                               max_workers=max_workers, credential_provider=credential_provider,
                               s3_connection_options=None if s3_connection_options is None else dict(s3_connection_options))


class _ResolvedCredentials:
    """A credential provider that does not pickle, resolved once on the driver."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    def __call__(self) -> Any:
        return self._credentials

    def resolve(self) -> Any:
        return self._credentials


def _shippable_provider(provider: Any) -> Any:
    if provider is None:
        return None
    try:
        pickle.dumps(provider)
        return provider
    except Exception:  # a lambda, a closure, a provider holding a lock
        return _ResolvedCredentials(provider.resolve() if hasattr(provider, "resolve") else provider())


def _optional_int(name: str, value: Any, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise ConfigValidationError(f"{name} must be an integer >= {minimum} (or None), got {value!r}")
    return int(value)


def plan_search(*, store: str, query_col: str, id_col: str, columns: Sequence[str], top_k: int,
                num_probes: int | None, filter: str | None,  # noqa: A002
                sublist_probes: int | None, max_extra_probes: int | None, shard_ids: Sequence[int] | None,
                routing_context: Mapping[str, Any] | None, manifest_ref: str | None, local_root: str | None,
                max_workers: int, credential_provider: Any,
                s3_connection_options: Mapping[str, Any] | None) -> SearchSpec:
    """On the driver: every argument checked (errors name it), the snapshot pinned."""
    if not isinstance(store, str) or not store:
        raise ConfigValidationError(f"store must be a non-empty s3:// prefix or folder, got {store!r}")
    for name, column in (("query_col", query_col), ("id_col", id_col)):
        if not isinstance(column, str) or column not in columns:
            raise ConfigValidationError(f"{name} {column!r} is not a column of the DataFrame (columns: {list(columns)})")
    if query_col == id_col:
        raise ConfigValidationError(f"query_col and id_col are both {query_col!r}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise ConfigValidationError(f"top_k must be an integer >= 1, got {top_k!r}")
    workers = _optional_int("max_workers", max_workers, 1)
    provider = _shippable_provider(credential_provider)
    options = None if s3_connection_options is None else dict(s3_connection_options)
    manifests = S3ManifestStore(store, credential_provider=provider, s3_connection_options=options)
    if manifest_ref is None:
        current = manifests.load_current()
        if current is None:
            raise ManifestStoreError(f"no snapshot to search: {store!r} has no current pointer")
        manifest_ref = current.ref
    elif not isinstance(manifest_ref, str) or not manifest_ref:
        raise ConfigValidationError(f"manifest_ref must be a manifest's ref (text), got {manifest_ref!r}")
    ids = None if shard_ids is None else tuple(int(s) for s in shard_ids)
    context = None if routing_context is None else dict(routing_context)
    with open_pinned_reader(store, manifest_ref, local_root=local_root, max_workers=1, credential_provider=provider,
                            s3_connection_options=options) as reader:
        info = reader.snapshot_info()
        manifest_ref = info.manifest_ref  # a key given: the manifest's URL
        # No query: every option is checked against the snapshot (a bad filter names its position),
        # and no shard is read.
        reader.batch_search(np.zeros((0, info.dim), np.float32), top_k, num_probes=num_probes, filter=filter,
                            sublist_probes=sublist_probes, max_extra_probes=max_extra_probes,
                            shard_ids=None if ids is None else list(ids), routing_context=context)
        if ids is None:
            reader.route_vector(np.ones(info.dim, np.float32), num_probes=num_probes, routing_context=context)
    id_type = manifests.load_manifest(manifest_ref).custom.get("shardvec", {}).get("id_type")
    routes = ids is None and context is None and info.sharding not in (VectorShardingStrategy.EXPLICIT,
                                                                       VectorShardingStrategy.CEL)
    return SearchSpec(s3_prefix=store, manifest_ref=manifest_ref, query_col=query_col, id_col=id_col, dim=int(info.dim),
                      top_k=int(top_k), num_probes=num_probes, filter=filter, sublist_probes=sublist_probes,
                      max_extra_probes=max_extra_probes, shard_ids=ids, routing_context=context,
                      routes_by_vector=routes, result_ids="int" if id_type == "int" else "str",
                      local_root=local_root, max_workers=workers or 1, credential_provider=provider,
                      s3_connection_options=options)


def result_schema(spec: SearchSpec, query_id_type: pa.DataType) -> pa.Schema:
    """query_id (the id column's type), rank (from 0), id (int64 when the manifest records that every id
    is an integer, else text), score, payload (JSON text, null when the row has none)."""
    types = (query_id_type, pa.int64(), pa.int64() if spec.result_ids == "int" else pa.string(), pa.float64(),
             pa.string())
    return pa.schema(list(zip(RESULT_COLUMNS, types)))


def _queries(spec: SearchSpec, table: pa.Table | pa.RecordBatch) -> np.ndarray[Any, np.dtype[np.float32]]:
    column = table.column(spec.query_col)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return vectors_from_arrow(column, spec.dim, spec.query_col, field="query_col")


def route_table(spec: SearchSpec, table: pa.Table | pa.RecordBatch, row_offset: int = 0) -> pa.Array:
    """Each query's group: the shard it is routed to first, so a group's queries probe mostly the same
    shards (queries not routed by their vector: their row number modulo UNROUTED_GROUPS)."""
    if not spec.routes_by_vector:
        return pa.array((np.arange(table.num_rows, dtype=np.int64) + row_offset) % UNROUTED_GROUPS)
    reader = spec.reader()
    queries = _queries(spec, table)
    first = [reader.route_vector(q, num_probes=1)[0] for q in queries]
    return pa.array(np.asarray(first, dtype=np.int64))


def search_table(spec: SearchSpec, table: pa.Table | pa.RecordBatch) -> pa.Table:
    """One engine ``batch_search`` over ``table``'s queries: ``top_k`` rows per query (fewer when the
    snapshot or the filter has fewer), in rank order."""
    query_ids = table.column(spec.id_col)
    if isinstance(query_ids, pa.ChunkedArray):
        query_ids = query_ids.combine_chunks()
    schema = result_schema(spec, query_ids.type)
    if table.num_rows == 0:
        return schema.empty_table()
    if query_ids.null_count:
        first = int(np.argmax(query_ids.is_null().to_numpy(zero_copy_only=False)))
        raise ConfigValidationError(f"id_col {spec.id_col!r} is null at row {first}")
    responses = spec.reader().batch_search(_queries(spec, table), spec.top_k, **spec.search_args())
    take: list[int] = []
    ranks: list[int] = []
    ids: list[Any] = []
    scores: list[float] = []
    payloads: list[str | None] = []
    for row, response in enumerate(responses):
        for rank, hit in enumerate(response.results):
            take.append(row)
            ranks.append(rank)
            ids.append(hit.id if spec.result_ids == "int" else str(hit.id))
            scores.append(hit.score)
            payloads.append(None if hit.payload is None else json.dumps(hit.payload))
    return pa.Table.from_arrays(
        [query_ids.take(pa.array(take, pa.int64())), pa.array(ranks, pa.int64()), pa.array(ids, schema.field("id").type),
         pa.array(scores, pa.float64()), pa.array(payloads, pa.string())], schema=schema)


def search_chunks(spec: SearchSpec, table: pa.Table) -> pa.Table:
    """``search_table`` over ``table`` CHUNK_ROWS queries at a time, the answers concatenated."""
    parts = [search_table(spec, table.slice(start, CHUNK_ROWS)) for start in range(0, table.num_rows, CHUNK_ROWS)]
    return pa.concat_tables(parts) if parts else search_table(spec, table)
