"""``write_sharded`` for Spark DataFrames.

The driver samples for CLUSTER training (at most ``centroids_training_sample_size`` rows), plans routing
once and ships only the plan: ``mapInArrow`` adds the routing column on the executors with the C++
router, ``groupBy(routing column).applyInArrow`` streams each db's rows into one task that builds and
uploads that shard (attempt folder claimed from ``TaskContext.attemptNumber()``), and the driver
collects one small row per attempt and publishes the winners.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql.types import LongType, StructField, StructType

from shardvec._native import _engine
from shardvec.config import VectorColumnInput
from shardvec.vector._distributed import (
    DistributedRun,
    ShardTaskSpec,
    build_shard,
    route_table,
    shard_info_table,
    shard_infos_from_table,
    vectors_from_arrow,
)
from shardvec.vector.config import VectorShardedWriteConfig, VectorWriteOptions
from shardvec.vector.writer import BuildResult

__all__ = ["write_sharded", "write_vector_sharded"]

_SHARD_INFO_DDL = ("db_id long, db_url string, row_count long, db_bytes long, checkpoint_id string, "
                   "digest string, attempt long, id_type string, sublists long, filter_stats string")


def _sample(df: DataFrame, run: DistributedRun) -> np.ndarray:
    cap = run.sample_size
    total = df.count()
    fraction = min(1.0, 1.2 * cap / max(total, 1))
    column = run.input.vector_col
    rows = df.select(column).where(df[column].isNotNull()).sample(fraction=fraction, seed=42).limit(cap).toArrow()
    return vectors_from_arrow(rows.column(column).combine_chunks(), run.task_spec().dim, column)


def _router(plan: _engine.RoutingPlan, spec: ShardTaskSpec):
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
