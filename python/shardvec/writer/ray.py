"""``write_sharded`` for Ray Datasets.

The driver samples for CLUSTER training, plans routing once and ships only the plan: ``map_batches``
adds the routing column with the C++ router over Arrow batches, ``groupby(routing column).map_groups``
hands each db's rows to one task that builds and uploads that shard, and the driver publishes the
winners. Tasks are retried (``max_retries``, ``retry_exceptions``); a retry claims a fresh attempt folder.
"""

from __future__ import annotations


import numpy as np
import pyarrow as pa
import ray.data

from shardvec._native import _engine
from shardvec.config import VectorColumnInput
from shardvec.vector._distributed import (
    DistributedRun,
    ShardTaskSpec,
    build_shard,
    route_table,
    shard_info_table,
    vectors_from_arrow,
)
from shardvec.vector.config import VectorShardedWriteConfig, VectorWriteOptions
from shardvec.vector.writer import BuildResult

__all__ = ["write_sharded", "write_vector_sharded"]

TASK_RETRIES = 3


def _sample(data: ray.data.Dataset, run: DistributedRun) -> np.ndarray:
    cap = run.sample_size
    column = run.input.vector_col
    fraction = min(1.0, 1.2 * cap / max(data.count(), 1))
    rows = data.select_columns([column]).random_sample(fraction, seed=42).take_batch(cap, batch_format="pyarrow")
    return vectors_from_arrow(rows.column(column).combine_chunks(), run.task_spec().dim, column)


def _route_batch(batch: pa.Table, plan: _engine.RoutingPlan, spec: ShardTaskSpec) -> pa.Table:
    return route_table(batch, plan, spec)


def _build_group(group: pa.Table, spec: ShardTaskSpec) -> pa.Table:
    db_id = int(group.column(spec.routing_col)[0].as_py())
    return shard_info_table([build_shard(spec, db_id, [group])])


def write_sharded(data: ray.data.Dataset, config: VectorShardedWriteConfig, input: VectorColumnInput,  # noqa: A002
                  options: VectorWriteOptions | None = None) -> BuildResult:
    """Builds and publishes one snapshot from a Ray Dataset (see the module docstring)."""
    run = DistributedRun(config, input, options, "vector-ray", "Ray", data.columns())
    try:
        plan = run.plan_routing(_sample(data, run) if run.needs_sample else None)
        spec = run.task_spec()
        routed = data.map_batches(_route_batch, batch_format="pyarrow", fn_kwargs={"plan": plan, "spec": spec})
        if run.options.verify_routing:
            run.verify(routed.take_batch(20, batch_format="pyarrow"))
        results = routed.groupby(spec.routing_col, num_partitions=int(plan.num_dbs)).map_groups(
            _build_group, batch_format="pyarrow", fn_kwargs={"spec": spec},
            max_retries=TASK_RETRIES, retry_exceptions=True)
        infos = results.take_all()
        return run.publish(infos)
    except BaseException as error:
        run.abort(error)
        raise


write_vector_sharded = write_sharded
