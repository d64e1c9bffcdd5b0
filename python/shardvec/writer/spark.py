"""``write_sharded`` for Spark DataFrames.

The driver samples for CLUSTER training (at most ``centroids_training_sample_size`` rows), plans routing
once and ships only the plan: ``mapInArrow`` adds the routing column on the executors with the C++
router, ``groupBy(routing column).applyInArrow`` streams each db's rows into one task that builds and
uploads that shard (attempt folder claimed from ``TaskContext.attemptNumber()``), and the driver
collects one small row per attempt and publishes the winners.

``update_sharded`` updates the current snapshot from a DataFrame of upserts and one of ids to delete:
``mapInArrow`` routes the upserts with the base's routing, the driver collects their ids and shards
(never their vectors or payloads) and the ids to delete, and plans; ``groupBy(routing
column).applyInArrow`` rebuilds each shard that receives upserts in one task, a ``mapInArrow`` over
the other planned shards' db_ids rebuilds those, and the driver publishes from one small row per
shard.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import LongType, StructField, StructType

from shardvec._native import _engine
from shardvec.config import VectorColumnInput
from shardvec.errors import ConfigValidationError
from shardvec.vector._distributed import (
    DistributedRun,
    ShardTaskSpec,
    build_shard,
    route_table,
    shard_info_table,
    shard_infos_from_table,
    vectors_from_arrow,
)
from shardvec.vector._distributed_update import (
    RESULT_DDL,
    DistributedUpdate,
    UpdateTaskSpec,
    rebuild_shard,
    result_table,
    run_update,
)
from shardvec.vector.config import VectorShardedWriteConfig, VectorWriteOptions
from shardvec.vector.types import UpdateResult
from shardvec.vector.writer import BuildResult

__all__ = ["update_sharded", "write_sharded", "write_vector_sharded"]

_SHARD_INFO_DDL = ("db_id long, db_url string, row_count long, db_bytes long, checkpoint_id string, "
                   "digest string, attempt long, id_type string, sublists long, filter_stats string")


def _sample(df: DataFrame, run: DistributedRun) -> np.ndarray:
    cap = run.sample_size
    total = df.count()
    fraction = min(1.0, 1.2 * cap / max(total, 1))
    column = run.input.vector_col
    rows = df.select(column).where(df[column].isNotNull()).sample(fraction=fraction, seed=42).limit(cap).toArrow()
    return vectors_from_arrow(rows.column(column).combine_chunks(), run.task_spec().dim, column)


def _router(plan: _engine.RoutingPlan, spec: ShardTaskSpec | UpdateTaskSpec):
    def route(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield route_table(batch, plan, spec)
    return route


def _builder(spec: ShardTaskSpec):
    def build(key: tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        context = TaskContext.get()
        attempt = context.attemptNumber() if context is not None else 0
        info = build_shard(spec, int(key[0].as_py()), batches, first_attempt=attempt)
        yield from shard_info_table([info]).to_batches()
    return build


def write_sharded(data: DataFrame, config: VectorShardedWriteConfig, input: VectorColumnInput,  # noqa: A002
                  options: VectorWriteOptions | None = None) -> BuildResult:
    """Builds and publishes one snapshot from a Spark DataFrame (see the module docstring)."""
    run = DistributedRun(config, input, options, "vector-spark", "Spark", data.columns)
    try:
        plan = run.plan_routing(_sample(data, run) if run.needs_sample else None)
        spec = run.task_spec()
        schema = StructType([*data.schema.fields, StructField(spec.routing_col, LongType(), False)])
        routed = data.mapInArrow(_router(plan, spec), schema)
        if run.options.verify_routing:
            run.verify(routed.limit(20).toArrow())
        results = routed.groupBy(spec.routing_col).applyInArrow(_builder(spec), _SHARD_INFO_DDL).toArrow()
        return run.publish(shard_infos_from_table(results))
    except BaseException as error:
        run.abort(error)
        raise


write_vector_sharded = write_sharded


# --- update_sharded -------------------------------------------------------------------------------


def _rebuilder(spec: UpdateTaskSpec):
    def rebuild(key: tuple[pa.Scalar, ...], batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        db_id = int(key[0].as_py())
        yield from result_table(db_id, rebuild_shard(spec, db_id, batches)).to_batches()
    return rebuild


def _lone_rebuilder(spec: UpdateTaskSpec):
    """Rebuilds the planned shards no upsert routes to (a column of their db_ids)."""
    def rebuild(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for db_id in batch.column("db_id").to_pylist():
                yield from result_table(db_id, rebuild_shard(spec, db_id, [])).to_batches()
    return rebuild


def update_sharded(df_upserts: DataFrame | None, df_deletes: DataFrame | None, config: VectorShardedWriteConfig,
                   input: VectorColumnInput, *, delete_id_col: str | None = None,  # noqa: A002
                   base: str = "current", strict: bool = False, last_writer_wins: bool = False,
                   compact: bool = False, rebase: bool = False) -> UpdateResult:
    """Upserts the rows of ``df_upserts`` (columns as ``input`` names them; every row needs an id) and
    deletes the ids in column ``delete_id_col`` (default ``input.id_col``) of ``df_deletes`` in the
    snapshot ``base`` names, and publishes the result; either DataFrame may be None. Semantics and
    report are those of :func:`shardvec.vector.update_sharded`, ``compact`` and ``rebase`` included (a
    rebase redoes the whole distributed update on the current snapshot; see the module docstring for
    how the work is spread). Refused with ``spark.speculation`` on: a speculative copy of a rebuild task
    would upload the same shard."""
    if df_upserts is None and df_deletes is None:
        raise ConfigValidationError("update_sharded needs df_upserts, df_deletes, or both")
    session = (df_upserts if df_upserts is not None else df_deletes).sparkSession
    if str(session.conf.get("spark.speculation", "false")).lower() == "true":
        raise ConfigValidationError(
            "spark.speculation is true: a speculative copy of an update's rebuild task would upload the same shard "
            "as the original; set it false for update_sharded")

    def begin(attempt_base: str) -> DistributedUpdate:
        return DistributedUpdate(config, input, "vector-spark-update", "Spark",
                                 None if df_upserts is None else df_upserts.columns,
                                 None if df_deletes is None else df_deletes.columns, delete_id_col, attempt_base,
                                 strict, last_writer_wins, compact, rebase)

    return run_update(begin, lambda update: _update_tasks(update, session, df_upserts, df_deletes), base, rebase)


def _update_tasks(update: DistributedUpdate, session: SparkSession, df_upserts: DataFrame | None,
                  df_deletes: DataFrame | None) -> list[bytes]:
    """Routes, plans and rebuilds on the cluster; the rebuild tasks' results."""
    spec = update.spec
    routed = None
    if df_upserts is not None:
        schema = StructType([*df_upserts.schema.fields, StructField(spec.routing_col, LongType(), False)])
        routed = df_upserts.mapInArrow(_router(spec.routing, spec), schema)
    spec = update.plan(
        None if routed is None else routed.select(spec.id_col, spec.routing_col).toArrow(),
        None if df_deletes is None else df_deletes.select(update.delete_id_col).toArrow())
    frames = []
    if routed is not None and len(spec.shards_without_upserts()) < len(spec.planned_shards()):
        frames.append(routed.groupBy(spec.routing_col).applyInArrow(_rebuilder(spec), RESULT_DDL))
    alone = spec.shards_without_upserts()
    if alone:
        ids = session.createDataFrame([(db_id,) for db_id in alone], "db_id long")
        ids = ids.repartition(max(1, min(len(alone), session.sparkContext.defaultParallelism)))
        frames.append(ids.mapInArrow(_lone_rebuilder(spec), RESULT_DDL))
    results: list[bytes] = []
    if frames:
        combined = frames[0]
        for frame in frames[1:]:
            combined = combined.unionByName(frame)
        results = combined.toArrow().column("result").to_pylist()
    return results
