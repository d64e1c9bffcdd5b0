"""``write_sharded`` for Ray Datasets.

The driver samples for CLUSTER training, plans routing once and ships only the plan: ``map_batches``
adds the routing column with the C++ router over Arrow batches, ``groupby(routing column).map_groups``
hands each db's rows to one task that builds and uploads that shard, and the driver publishes the
winners. Tasks are retried (``max_retries``, ``retry_exceptions``); a retry claims a fresh attempt folder.

``update_sharded`` updates the current snapshot: ``map_batches`` routes the upserts with the base's
routing, the driver collects only their id and routing columns and the ids to delete, and plans;
``groupby(routing column).map_groups`` rebuilds each shard that receives upserts in one task, a
``map_groups`` over the other planned shards' db_ids rebuilds those, and the driver publishes from
one small row per shard.
"""

from __future__ import annotations


import numpy as np
import pyarrow as pa
import ray
import ray.data

from shardvec._native import _engine
from shardvec.config import VectorColumnInput
from shardvec.errors import ConfigValidationError
from shardvec.vector._distributed import (
    DistributedRun,
    ShardTaskSpec,
    build_shard,
    route_table,
    shard_info_table,
    vectors_from_arrow,
)
from shardvec.vector._distributed_update import (
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

TASK_RETRIES = 3


def _sample(data: ray.data.Dataset, run: DistributedRun) -> np.ndarray:
    cap = run.sample_size
    column = run.input.vector_col
    fraction = min(1.0, 1.2 * cap / max(data.count(), 1))
    rows = data.select_columns([column]).random_sample(fraction, seed=42).take_batch(cap, batch_format="pyarrow")
    return vectors_from_arrow(rows.column(column).combine_chunks(), run.task_spec().dim, column)


def _route_batch(batch: pa.Table, plan: _engine.RoutingPlan, spec: ShardTaskSpec | UpdateTaskSpec) -> pa.Table:
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


# --- update_sharded -------------------------------------------------------------------------------


def _rebuild_group(group: pa.Table, spec: UpdateTaskSpec) -> pa.Table:
    db_id = int(group.column(spec.routing_col)[0].as_py())
    return result_table(db_id, rebuild_shard(spec, db_id, [group]))


def _rebuild_alone(batch: pa.Table, spec: UpdateTaskSpec) -> pa.Table:
    """Rebuilds the planned shards no upsert routes to (a group of their db_id column)."""
    return pa.concat_tables([result_table(db_id, rebuild_shard(spec, db_id, []))
                             for db_id in batch.column("db_id").to_pylist()])


def _collect(data: ray.data.Dataset) -> pa.Table | None:
    tables = [t for t in ray.get(data.to_arrow_refs()) if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def update_sharded(ds_upserts: ray.data.Dataset | None, ds_deletes: ray.data.Dataset | None,
                   config: VectorShardedWriteConfig, input: VectorColumnInput, *,  # noqa: A002
                   delete_id_col: str | None = None, base: str = "current", strict: bool = False,
                   last_writer_wins: bool = False, compact: bool = False, rebase: bool = False) -> UpdateResult:
    """Upserts the rows of ``ds_upserts`` (columns as ``input`` names them; every row needs an id) and
    deletes the ids in column ``delete_id_col`` (default ``input.id_col``) of ``ds_deletes`` in the
    snapshot ``base`` names, and publishes the result; either Dataset may be None. Semantics and
    report are those of :func:`shardvec.vector.update_sharded`, ``compact`` and ``rebase`` included
    (a rebase redoes the whole distributed update on the current snapshot; see the module docstring)."""
    if ds_upserts is None and ds_deletes is None:
        raise ConfigValidationError("update_sharded needs ds_upserts, ds_deletes, or both")

    def begin(attempt_base: str) -> DistributedUpdate:
        return DistributedUpdate(config, input, "vector-ray-update", "Ray",
                                 None if ds_upserts is None else ds_upserts.columns(),
                                 None if ds_deletes is None else ds_deletes.columns(), delete_id_col, attempt_base,
                                 strict, last_writer_wins, compact, rebase)

    return run_update(begin, lambda update: _update_tasks(update, ds_upserts, ds_deletes), base, rebase)


def _update_tasks(update: DistributedUpdate, ds_upserts: ray.data.Dataset | None,
                  ds_deletes: ray.data.Dataset | None) -> list[bytes]:
    """Routes, plans and rebuilds on the cluster; the rebuild tasks' results."""
    spec = update.spec
    routed = None
    if ds_upserts is not None:
        routed = ds_upserts.map_batches(_route_batch, batch_format="pyarrow",
                                        fn_kwargs={"plan": spec.routing, "spec": spec})
    spec = update.plan(
        None if routed is None else _collect(routed.select_columns([spec.id_col, spec.routing_col])),
        None if ds_deletes is None else _collect(ds_deletes.select_columns([update.delete_id_col])))
    parts = []
    alone = spec.shards_without_upserts()
    with_upserts = len(spec.planned_shards()) - len(alone)
    if routed is not None and with_upserts:
        parts.append(routed.groupby(spec.routing_col, num_partitions=with_upserts).map_groups(
            _rebuild_group, batch_format="pyarrow", fn_kwargs={"spec": spec},
            max_retries=TASK_RETRIES, retry_exceptions=True))
    if alone:
        ids = ray.data.from_arrow(pa.table({"db_id": pa.array(alone, type=pa.int64())}))
        parts.append(ids.groupby("db_id", num_partitions=len(alone)).map_groups(
            _rebuild_alone, batch_format="pyarrow", fn_kwargs={"spec": spec},
            max_retries=TASK_RETRIES, retry_exceptions=True))
    results: list[bytes] = []
    if parts:
        combined = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
        results = [row["result"] for row in combined.take_all()]
    return results
