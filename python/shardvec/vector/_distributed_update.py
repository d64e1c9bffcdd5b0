"""The engine-independent half of the Spark, Dask and Ray ``update_sharded``.

The driver (:class:`DistributedUpdate`) validates, begins the engine's update run (the base loaded
and checked against the config, the run claimed) and hands the workers the base's routing. Workers
route the upserts with it (:func:`route_table`, the C++ router over Arrow batches); the driver
collects only each upsert's id and shard, and the ids to delete, and plans (the base's id index finds
the shards that hold them). One task per planned shard then calls :func:`rebuild_shard` (its base
file fetched from the store and checked, its replaced and deleted rows dropped, its upserts added,
built and uploaded by the C++ engine), and the driver publishes from the tasks' small results. The
plan (``_engine.UpdatePlan``) and the results (``_engine.UpdateShardResult``) pickle.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import pickle
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from shardvec._native import _engine
from shardvec.config import VectorColumnInput
from shardvec.errors import ConfigValidationError, PublishConflictError
from shardvec.run_registry import writer_run_record
from shardvec.vector._bridge import write_config
from shardvec.vector._distributed import (
    _column,
    _ids,
    _shippable,
    check_column_input,
    engine_batch,
    shipped_store_options,
    task_store_options,
)
from shardvec.vector.config import VectorShardedWriteConfig
from shardvec.vector.types import UpdateResult
from shardvec.vector.writer import check_update_options, update_result

_log = logging.getLogger("shardvec.update")

# What a rebuild task returns: its db_id and its pickled UpdateShardResult.
RESULT_SCHEMA = pa.schema([("db_id", pa.int64()), ("result", pa.binary())])
RESULT_DDL = "db_id long, result binary"


@dataclass(frozen=True, slots=True)
class UpdateTaskSpec:
    """What every routing and rebuild task of one update needs; picklable."""

    routing: _engine.RoutingPlan  # the base's: upserts are routed with it, never retrained
    plan: _engine.UpdatePlan | None  # None until the driver planned (routing tasks do not need it)
    vector_col: str
    id_col: str
    payload_cols: tuple[str, ...]
    user_shard_col: str | None
    routing_col: str
    context_cols: tuple[str, ...]
    # The config's credential provider when it pickles: each task resolves it, and the plan's store
    # options then carry no keys.
    credential_provider: Any = None

    @property
    def dim(self) -> int:
        return int(self.routing.dim)

    @property
    def routing_input_cols(self) -> list[str]:
        """The columns routing reads: the vector, and the shard id or routing-context columns."""
        return [self.vector_col, *([self.user_shard_col] if self.user_shard_col else []), *self.context_cols]

    @property
    def rebuild_cols(self) -> list[str]:
        """The columns a rebuild reads: the vector, the id and the payload columns."""
        return [self.vector_col, self.id_col, *self.payload_cols]

    def planned_shards(self) -> list[int]:
        assert self.plan is not None
        return [int(shard.db_id) for shard in self.plan.shards]

    def shards_without_upserts(self) -> list[int]:
        """The planned shards no upsert routes to (only deletes or replaced rows change them): the
        engines' group-by of the upserts yields no group for them, so they get tasks of their own."""
        assert self.plan is not None
        return [int(shard.db_id) for shard in self.plan.shards if shard.upserts == 0]


def rebuild_shard(spec: UpdateTaskSpec, db_id: int, batches: Iterable[pa.RecordBatch | pa.Table]) -> bytes:
    """A task: rebuilds planned shard ``db_id`` from its base file and ``batches`` (every upsert the
    base's routing sends there, none for a shard only deletes change) and uploads it. Returns its
    pickled ``UpdateShardResult`` (a :data:`RESULT_SCHEMA` row's ``result``)."""
    assert spec.plan is not None
    pieces = [pa.Table.from_batches([b]) if isinstance(b, pa.RecordBatch) else b for b in batches]
    pieces = [p.select(spec.rebuild_cols) for p in pieces if p.num_rows]
    plan = spec.plan
    if spec.credential_provider is not None:
        plan = copy.copy(plan)
        plan.store_options = task_store_options(plan.store_options, spec.credential_provider)
    if not pieces:
        result = _engine.rebuild_update_shard(plan, int(db_id))
    else:
        rows = pa.concat_tables(pieces)
        vectors, int_ids, str_ids, payloads, _, _ = engine_batch(rows, spec)
        result = _engine.rebuild_update_shard(plan, int(db_id), vectors=np.ascontiguousarray(vectors),
                                              int_ids=int_ids, str_ids=str_ids, payloads=payloads)
    return pickle.dumps(result)


def result_table(db_id: int, result: bytes) -> pa.Table:
    return pa.Table.from_pylist([{"db_id": int(db_id), "result": result}], schema=RESULT_SCHEMA)


def results_from_rows(rows: Iterable[bytes]) -> list[_engine.UpdateShardResult]:
    return [pickle.loads(row) for row in rows]


def ids_for_engine(column: pa.Array | pa.ChunkedArray, field: str) -> dict[str, Any]:
    """A collected id column as the engine's (int64 array, str list) pair; ``field`` names it in errors."""
    table = pa.table({"id": column})
    int_ids, str_ids = _ids(table, "id", 0, field)
    return {"int_ids": int_ids, "str_ids": str_ids}


class DistributedUpdate:
    """One distributed update on the driver: validation, run record, the engine's update run."""

    def __init__(self, config: VectorShardedWriteConfig, input: VectorColumnInput,  # noqa: A002
                 writer_type: str, engine_name: str, columns: Sequence[str] | None,
                 delete_columns: Sequence[str] | None, delete_id_col: str | None, base: str, strict: bool,
                 last_writer_wins: bool, compact: bool = False, rebase: bool = False) -> None:
        self.context_cols = check_column_input(config, input, engine_name, columns)
        check_update_options(config, base, strict=strict, last_writer_wins=last_writer_wins, compact=compact,
                             rebase=rebase)
        if rebase and last_writer_wins:
            raise ConfigValidationError(
                "rebase cannot take effect with last_writer_wins=True (which publishes over a newer snapshot instead "
                "of conflicting); choose one")
        self.delete_id_col = str(input.id_col) if delete_id_col is None else delete_id_col
        if delete_columns is None and delete_id_col is not None:
            raise ConfigValidationError(
                f"delete_id_col={delete_id_col!r} names a column of the deletes, but there are none (deletes is None)")
        if delete_columns is not None and self.delete_id_col not in delete_columns:
            raise ConfigValidationError(
                f"delete_id_col {self.delete_id_col!r} is not a column of the deletes (columns: {list(delete_columns)}); "
                "it defaults to input.id_col")
        self.config = config
        self.input = input
        self.engine_name = engine_name
        self._record_scope = contextlib.ExitStack()
        run_id, self._record = self._record_scope.enter_context(writer_run_record(config, writer_type))
        try:
            engine_config = write_config(config, last_writer_wins=last_writer_wins, run_id=run_id)
            self._run = _engine.UpdateRun.begin(engine_config, writer_type, base=base, strict=strict, compact=compact)
        except BaseException as error:
            self._record_scope.__exit__(type(error), error, error.__traceback__)
            raise
        self._provider = _shippable(config.effective_credential_provider())
        self.spec = UpdateTaskSpec(
            routing=self._run.routing, plan=None, vector_col=input.vector_col, id_col=str(input.id_col),
            payload_cols=tuple(input.payload_cols or ()), user_shard_col=input.shard_id_col,
            routing_col=config.shard_id_col, context_cols=self.context_cols, credential_provider=self._provider)

    @property
    def run_id(self) -> str:
        return self._run.run_id

    def plan(self, routed_ids: pa.Table | None, deletes: pa.Table | None) -> UpdateTaskSpec:
        """Plans from the upserts' ids and shards (``routed_ids``: the id and routing columns of the
        routed upserts, or None) and the ids to delete (``deletes``: a table with the delete id
        column, or None). Returns the rebuild tasks' spec."""
        args: dict[str, Any] = {}
        if routed_ids is not None and routed_ids.num_rows:
            ids = ids_for_engine(_column(routed_ids, self.spec.id_col), "input.id_col")
            args.update(upsert_int_ids=ids["int_ids"], upsert_str_ids=ids["str_ids"],
                        upsert_db_ids=np.ascontiguousarray(_column(routed_ids, self.spec.routing_col).to_numpy(),
                                                           dtype=np.int64))
        if deletes is not None and deletes.num_rows:
            ids = ids_for_engine(_column(deletes, self.delete_id_col), "delete_id_col")
            args.update(delete_int_ids=ids["int_ids"], delete_str_ids=ids["str_ids"])
        plan = self._run.plan(**args)
        plan.store_options = shipped_store_options(plan.store_options, self._provider)
        return dataclasses.replace(self.spec, plan=plan)

    def finish(self, results: Iterable[bytes]) -> UpdateResult:
        """Publishes from the rebuild tasks' results (their pickled ``UpdateShardResult``)."""
        build, report = self._run.finish(results_from_rows(results))
        if self._record is not None:
            self._record.set_manifest_ref(build.manifest_ref)
            self._record.mark_succeeded()
        self._record_scope.close()
        return update_result(build, report)

    def abort(self, error: BaseException) -> None:
        self._run.abort(f"{type(error).__name__}: {error}")
        self._record_scope.__exit__(type(error), error, error.__traceback__)


def run_update(begin: Callable[[str], DistributedUpdate], tasks: Callable[[DistributedUpdate], list[bytes]],
               base: str, rebase: bool) -> UpdateResult:
    """One distributed update: ``begin(base)`` starts it on the driver, ``tasks(update)`` routes, plans
    and runs the rebuild tasks on the engine (their results), and the driver publishes. With
    ``rebase``, a :class:`PublishConflictError` (the base is no longer current: at the start, or a
    snapshot published while the tasks ran) redoes the whole update on the current snapshot, up to
    ``_engine.MAX_REBASES`` times (as the single-process update), after the failed attempt's uploads
    are removed; the report counts it in ``rebased``. The routing is redone too: the new current
    snapshot may route otherwise."""
    rebased = 0
    while True:
        update: DistributedUpdate | None = None
        try:
            update = begin(base if rebased == 0 else "current")
            result = update.finish(tasks(update))
        except BaseException as error:
            if update is not None:
                update.abort(error)  # after a conflict the engine already removed the attempt's uploads
            if not (rebase and isinstance(error, PublishConflictError) and rebased < _engine.MAX_REBASES):
                raise
            rebased += 1
            _log.info("update_rebased attempt=%d: redoing the update on the current snapshot: %s", rebased, error)
            continue
        return dataclasses.replace(result, report=dataclasses.replace(result.report, rebased=rebased))
