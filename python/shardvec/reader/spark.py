"""``search_sharded`` for Spark DataFrames.

The driver pins the snapshot and checks the arguments (``shardvec.reader._batch.plan_search``);
``mapInArrow`` adds each query's group (the shard it routes to first, by the C++ router on the
executors), ``groupBy(group).applyInArrow`` streams each group's queries into one task, which searches
them in batched engine calls (each shard they probe read once per batch) with a reader of the pinned
snapshot, cached per Python worker. The result is a lazy DataFrame; nothing is collected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    DoubleType,
    FloatType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from shardvec.errors import ConfigValidationError
from shardvec.reader._batch import CHUNK_ROWS, GROUP_COL, SearchSpec, plan_search, route_table, search_table

__all__ = ["search_sharded"]


def _router(spec: SearchSpec) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    def route(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        offset = 0
        for batch in batches:
            group = route_table(spec, batch, offset)
            offset += batch.num_rows
            yield pa.RecordBatch.from_arrays([*batch.columns, group], names=[*batch.schema.names, GROUP_COL])
    return route


def _searcher(spec: SearchSpec) -> Callable[[tuple[pa.Scalar, ...], Iterator[pa.RecordBatch]],
                                                Iterator[pa.RecordBatch]]:
    def search(key: tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        del key
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in batches:
            pending.append(batch)
            rows += batch.num_rows
            if rows >= CHUNK_ROWS:
                yield from search_table(spec, pa.Table.from_batches(pending)).to_batches()
                pending, rows = [], 0
        if pending:
            yield from search_table(spec, pa.Table.from_batches(pending)).to_batches()
    return search


def _check_query_type(query_col: str, kind: DataType) -> None:
    numeric = isinstance(kind, ArrayType) and isinstance(kind.elementType, (FloatType, DoubleType))
    if not (numeric or isinstance(kind, BinaryType)):
        raise ConfigValidationError(
            f"query_col {query_col!r} has type {kind.simpleString()}; expected array<float>, array<double> or "
            "binary (float32 bytes)")


def search_sharded(df: DataFrame, store: str, query_col: str, id_col: str, top_k: int = 10,
                   num_probes: int | None = None, filter: str | None = None, *,  # noqa: A002
                   sublist_probes: int | None = None, max_extra_probes: int | None = None,
                   shard_ids: Sequence[int] | None = None, routing_context: Mapping[str, Any] | None = None,
                   manifest_ref: str | None = None, local_root: str | None = None, max_workers: int = 1,
                   credential_provider: Any = None, s3_connection_options: Mapping[str, Any] | None = None
                   ) -> DataFrame:
    """The ``top_k`` nearest rows of the snapshot at ``store`` for every query of ``df``: a DataFrame
    with the columns ``query_id`` (``id_col``'s values and type), ``rank`` (from 0), ``id`` (long when
    the manifest records that every id is an integer, else string), ``score`` and ``payload`` (JSON text,
    null when none), equal to ``ShardedVectorReader.batch_search`` on one machine. The search options
    are ``batch_search``'s; ``manifest_ref`` searches that manifest instead of the current one;
    ``max_workers`` is each task's search threads; ``local_root`` each worker's shard cache folder."""
    spec = plan_search(store=store, query_col=query_col, id_col=id_col, columns=df.columns, top_k=top_k,
                       num_probes=num_probes, filter=filter, sublist_probes=sublist_probes,
                       max_extra_probes=max_extra_probes, shard_ids=shard_ids, routing_context=routing_context,
                       manifest_ref=manifest_ref, local_root=local_root, max_workers=max_workers,
                       credential_provider=credential_provider, s3_connection_options=s3_connection_options)
    _check_query_type(query_col, df.schema[query_col].dataType)
    queries = df.select(id_col, query_col)
    routed_schema = StructType([*queries.schema.fields, StructField(GROUP_COL, LongType(), False)])
    routed = queries.mapInArrow(_router(spec), routed_schema)
    result = StructType([StructField("query_id", df.schema[id_col].dataType, True),
                         StructField("rank", LongType(), False),
                         StructField("id", LongType() if spec.result_ids == "int" else StringType(), False),
                         StructField("score", DoubleType(), False),
                         StructField("payload", StringType(), True)])
    return routed.groupBy(GROUP_COL).applyInArrow(_searcher(spec), result)
