"""``write_sharded`` for Dask DataFrames.

The driver samples for CLUSTER training, plans routing once and ships only the plan:
``map_partitions`` adds the routing column with the C++ router (and turns the vector column into an
Arrow fixed-size list, so shuffled partitions hold buffers rather than Python objects), a task-based
``shuffle`` on the routing column co-locates each db, and one task per partition builds and uploads
each of its dbs. Tasks are retried (``retries``); a retried task claims a fresh attempt folder.

``update_sharded`` updates the current snapshot: ``map_partitions`` routes the upserts with the base's
routing, the driver computes only their id and routing columns and the ids to delete, and plans; a
``shuffle`` on the routing column hands each shard's upserts to one task that rebuilds it, the other
planned shards get a task each, and the driver publishes from one small row per shard.
"""

from __future__ import annotations


import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa

from shardvec._native import _engine
from shardvec.config import VectorColumnInput
from shardvec.errors import ConfigValidationError
from shardvec.vector._distributed import (
    SHARD_INFO_SCHEMA,
    DistributedRun,
    ShardTaskSpec,
    build_shard,
    route_vectors,
    shard_info_table,
    vectors_from_arrow,
)
from shardvec.vector._distributed_update import (
    RESULT_SCHEMA,
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


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def _vector_dtype(dim: int) -> pd.ArrowDtype:
    return pd.ArrowDtype(pa.list_(pa.float32(), dim))


def _sample(data: dd.DataFrame, run: DistributedRun) -> np.ndarray:
    cap = run.sample_size
    column = run.input.vector_col
    fraction = min(1.0, 1.2 * cap / max(len(data), 1))
    rows = data[[column]].dropna().sample(frac=fraction, random_state=42).head(cap, npartitions=-1)
    return vectors_from_arrow(_arrow(rows).column(column).combine_chunks(), run.task_spec().dim, column)


def _route_partition(frame: pd.DataFrame, plan: _engine.RoutingPlan,
                     spec: ShardTaskSpec | UpdateTaskSpec) -> pd.DataFrame:
    vectors, db_ids = route_vectors(_arrow(frame[spec.routing_input_cols]), plan, spec)
    packed = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), spec.dim)
    return frame.assign(**{
        spec.vector_col: pd.Series(pd.arrays.ArrowExtensionArray(packed), index=frame.index),
        spec.routing_col: db_ids,
    })


def _build_partition(frame: pd.DataFrame, spec: ShardTaskSpec) -> pd.DataFrame:
    columns = [spec.vector_col, spec.id_col, *spec.payload_cols]
    limiter = spec.new_rate_limiter()  # one per task, as the reference's partition writer
    infos = [build_shard(spec, int(db_id), [_arrow(group[columns])], limiter=limiter)
             for db_id, group in frame.groupby(spec.routing_col, sort=True)]
    return shard_info_table(infos).to_pandas()


def _is_text_dtype(dtype: object) -> bool:
    if isinstance(dtype, pd.StringDtype):
        return True
    return isinstance(dtype, pd.ArrowDtype) and (pa.types.is_string(dtype.pyarrow_dtype)
                                                 or pa.types.is_large_string(dtype.pyarrow_dtype))


def _refuse_converted_vectors(data: dd.DataFrame, input: VectorColumnInput) -> None:  # noqa: A002
    """A vector column of text: Dask's ``dataframe.convert-string`` (on by default) turns object
    columns, such as one of NumPy arrays, into strings when the DataFrame is made, and the vectors
    are then only their printed form. Refused here with the fix, before any task runs."""
    dtype = data.dtypes.get(input.vector_col) if input.vector_col in data.columns else None
    if dtype is not None and _is_text_dtype(dtype):
        raise ConfigValidationError(
            f"input.vector_col {input.vector_col!r} is a text column ({dtype}) in this Dask DataFrame, not vectors: "
            "Dask's 'dataframe.convert-string' setting (on by default) turned its objects (e.g. NumPy arrays) into "
            "strings when the DataFrame was made. Make the DataFrame after dask.config.set({'dataframe.convert-string': "
            "False}), or hold the vectors in an Arrow list column (pd.ArrowDtype(pa.list_(pa.float32(), dim))), "
            "which the setting leaves alone")


def write_sharded(data: dd.DataFrame, config: VectorShardedWriteConfig, input: VectorColumnInput,  # noqa: A002
                  options: VectorWriteOptions | None = None) -> BuildResult:
    """Builds and publishes one snapshot from a Dask DataFrame (see the module docstring)."""
    if isinstance(input, VectorColumnInput):
        _refuse_converted_vectors(data, input)
    run = DistributedRun(config, input, options, "vector-dask", "Dask", list(data.columns))
    try:
        plan = run.plan_routing(_sample(data, run) if run.needs_sample else None)
        spec = run.task_spec()
        meta = data._meta.assign(**{spec.vector_col: pd.Series(dtype=_vector_dtype(spec.dim)),
                                    spec.routing_col: pd.Series(dtype="int64")})
        routed = data.map_partitions(_route_partition, plan, spec, meta=meta)
        if run.options.verify_routing:
            run.verify(_arrow(routed.head(20, npartitions=-1)))
        shuffled = routed.shuffle(on=spec.routing_col, npartitions=max(1, min(int(plan.num_dbs), routed.npartitions)),
                                  shuffle_method="tasks")
        infos_meta = SHARD_INFO_SCHEMA.empty_table().to_pandas()
        infos = shuffled.map_partitions(_build_partition, spec, meta=infos_meta).compute(retries=TASK_RETRIES)
        return run.publish(infos.to_dict("records"))
    except BaseException as error:
        run.abort(error)
        raise


write_vector_sharded = write_sharded


# --- update_sharded -------------------------------------------------------------------------------


def _rebuild_partition(frame: pd.DataFrame, spec: UpdateTaskSpec) -> pd.DataFrame:
    tables = [result_table(int(db_id), rebuild_shard(spec, int(db_id), [_arrow(group[spec.rebuild_cols])]))
              for db_id, group in frame.groupby(spec.routing_col, sort=True)]
    return (pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()).to_pandas()


def _rebuild_alone(frame: pd.DataFrame, spec: UpdateTaskSpec) -> pd.DataFrame:
    """Rebuilds the planned shards no upsert routes to (a column of their db_ids)."""
    tables = [result_table(int(db_id), rebuild_shard(spec, int(db_id), [])) for db_id in frame["db_id"]]
    return (pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table()).to_pandas()


def update_sharded(df_upserts: dd.DataFrame | None, df_deletes: dd.DataFrame | None, config: VectorShardedWriteConfig,
                   input: VectorColumnInput, *, delete_id_col: str | None = None,  # noqa: A002
                   base: str = "current", strict: bool = False, last_writer_wins: bool = False,
                   compact: bool = False, rebase: bool = False) -> UpdateResult:
    """Upserts the rows of ``df_upserts`` (columns as ``input`` names them; every row needs an id) and
    deletes the ids in column ``delete_id_col`` (default ``input.id_col``) of ``df_deletes`` in the
    snapshot ``base`` names, and publishes the result; either DataFrame may be None. Semantics and
    report are those of :func:`shardvec.vector.update_sharded`, ``compact`` and ``rebase`` included
    (a rebase redoes the whole distributed update on the current snapshot; see the module docstring)."""
    if df_upserts is None and df_deletes is None:
        raise ConfigValidationError("update_sharded needs df_upserts, df_deletes, or both")
    if df_upserts is not None and isinstance(input, VectorColumnInput):
        _refuse_converted_vectors(df_upserts, input)

    def begin(attempt_base: str) -> DistributedUpdate:
        return DistributedUpdate(config, input, "vector-dask-update", "Dask",
                                 None if df_upserts is None else list(df_upserts.columns),
                                 None if df_deletes is None else list(df_deletes.columns), delete_id_col, attempt_base,
                                 strict, last_writer_wins, compact, rebase)

    return run_update(begin, lambda update: _update_tasks(update, df_upserts, df_deletes), base, rebase)


def _update_tasks(update: DistributedUpdate, df_upserts: dd.DataFrame | None,
                  df_deletes: dd.DataFrame | None) -> list[bytes]:
    """Routes, plans and rebuilds on the cluster; the rebuild tasks' results."""
    spec = update.spec
    routed = routed_ids = None
    if df_upserts is not None:
        meta = df_upserts._meta.assign(**{spec.vector_col: pd.Series(dtype=_vector_dtype(spec.dim)),
                                          spec.routing_col: pd.Series(dtype="int64")})
        routed = df_upserts.map_partitions(_route_partition, spec.routing, spec, meta=meta)
        routed_ids = _arrow(routed[[spec.id_col, spec.routing_col]].compute(retries=TASK_RETRIES))
    deletes = None if df_deletes is None else _arrow(df_deletes[[update.delete_id_col]].compute(retries=TASK_RETRIES))
    spec = update.plan(routed_ids, deletes)
    results_meta = RESULT_SCHEMA.empty_table().to_pandas()
    parts = []
    alone = spec.shards_without_upserts()
    with_upserts = len(spec.planned_shards()) - len(alone)
    if routed is not None and with_upserts:
        shuffled = routed.shuffle(on=spec.routing_col, npartitions=max(1, min(with_upserts, routed.npartitions)),
                                  shuffle_method="tasks")
        parts.append(shuffled.map_partitions(_rebuild_partition, spec, meta=results_meta))
    if alone:
        ids = dd.from_pandas(pd.DataFrame({"db_id": pd.Series(alone, dtype="int64")}), npartitions=len(alone))
        parts.append(ids.map_partitions(_rebuild_alone, spec, meta=results_meta))
    frames = dask.compute(*parts, retries=TASK_RETRIES)
    return [row for frame in frames for row in frame["result"]]
