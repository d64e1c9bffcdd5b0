"""The engine-independent half of the Spark, Dask and Ray writers.

The driver (:class:`DistributedRun`) validates, starts the run, trains routing on a sample, checks a
routed sample, and publishes the winning shard attempts. Workers call :func:`route_table` (the C++
router over whole Arrow batches) and :func:`build_shard` (one shard from a stream of Arrow batches,
built and uploaded by the C++ engine). Plans (``_engine.RoutingPlan``), task specs (holding an
``_engine.ShardTask``) and shard infos (``_engine.ShardInfo``) are typed and picklable.
"""

from __future__ import annotations

import contextlib
import copy
import json
import pickle
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shardvec._native import _engine
from shardvec.config import VectorColumnInput, resolve_credentials
from shardvec.errors import ConfigValidationError, ShardAssignmentError
from shardvec.rate_limiter import RateLimiter, write_rate_limiter
from shardvec.run_registry import writer_run_record
from shardvec.vector.config import VectorShardedWriteConfig, VectorWriteOptions
from shardvec.vector._bridge import (
    NO_SHARD_ID,
    EngineBatch,
    build_result,
    shard_info,
    shard_info_row,
    split_ids,
    write_config,
)
from shardvec.vector.types import BuildResult, VectorShardingStrategy

VERIFY_SAMPLE_ROWS = 20
_CREDENTIAL_FIELDS = ("access_key_id", "secret_access_key", "session_token")


def _shippable(provider: Any) -> Any:
    """``provider`` when tasks can resolve it themselves (it pickles), else None: its keys, resolved
    on the driver, then travel in the task's store options."""
    if provider is None:
        return None
    try:
        pickle.dumps(provider)
    except Exception:  # a lambda, a closure, a provider holding a lock: resolved on the driver
        return None
    return provider


def shipped_store_options(options: _engine.StoreOptions, provider: Any) -> _engine.StoreOptions:
    """The store options a task receives: without keys when it resolves ``provider`` itself (see
    :func:`_shippable`), else as the driver resolved them."""
    if provider is None:
        return options
    options = copy.copy(options)
    for key in _CREDENTIAL_FIELDS:
        setattr(options, key, "")
    return options


def task_store_options(options: _engine.StoreOptions, provider: Any) -> _engine.StoreOptions:
    """In a task: the shipped store options with the keys ``provider`` (when shipped) resolves now."""
    if provider is None:
        return options
    options = copy.copy(options)
    for key, value in resolve_credentials(provider).items():
        setattr(options, key, value)
    return options


@dataclass(frozen=True, slots=True)
class ShardTaskSpec:
    """What every build task needs: where to write (``task``: the engine's ShardTask for this run, its
    ``db_id`` and ``first_attempt`` set per task) and which columns hold what."""

    task: _engine.ShardTask
    batch_size: int
    vector_col: str
    id_col: str
    payload_cols: tuple[str, ...]
    user_shard_col: str | None
    routing_col: str
    # CEL: the columns whose values form each row's routing_context (column name = variable name).
    context_cols: tuple[str, ...] = ()
    # Called in the task with each shard's info once its upload returned (it travels with the spec,
    # so it must pickle); an exception it raises fails the task, which the engine then retries.
    after_upload: Callable[[_engine.ShardInfo], None] | None = None
    # rate_limits.max_writes_per_second: each task takes one token before each batch_size rows of a
    # shard from a bucket of its own; the bucket's events go to metrics_collector (shipped to the
    # tasks, so it must pickle; only set when a rate is).
    max_writes_per_second: float | None = None
    metrics_collector: Any = None
    # The write's credential provider when it pickles: each task resolves it (an EnvCredentialProvider
    # reads the worker's environment), so ``task.store_options`` then carries no keys.
    credential_provider: Any = None

    @property
    def dim(self) -> int:
        return int(self.task.dim)

    def new_rate_limiter(self) -> RateLimiter | None:
        """A task's own write limiter (None without a rate limit)."""
        return write_rate_limiter(self.max_writes_per_second, self.metrics_collector)

    @property
    def routing_input_cols(self) -> list[str]:
        """The columns routing reads: the vector, and the shard id or routing-context columns."""
        return [self.vector_col, *([self.user_shard_col] if self.user_shard_col else []), *self.context_cols]


class ColumnSpec(Protocol):
    """Which columns of a task's rows hold what: a :class:`ShardTaskSpec`, or an update's task spec."""

    @property
    def vector_col(self) -> str: ...
    @property
    def id_col(self) -> str: ...
    @property
    def payload_cols(self) -> tuple[str, ...]: ...
    @property
    def user_shard_col(self) -> str | None: ...
    @property
    def routing_col(self) -> str: ...
    @property
    def context_cols(self) -> tuple[str, ...]: ...
    @property
    def dim(self) -> int: ...


# --- columns -> engine arrays -------------------------------------------------------------------


def _column(data: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    column = data.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def vectors_from_arrow(column: pa.Array, dim: int, name: str, row_offset: int = 0,
                       field: str = "input.vector_col") -> np.ndarray:
    """An (n, dim) float32 matrix from a list / fixed-size list of numbers or float32 binary column;
    errors name ``field`` (the parameter that named the column) and the column."""
    if isinstance(column.type, pa.ExtensionType):  # e.g. Ray's tensor columns
        column = column.storage
    rows = len(column)
    if column.null_count:
        first = column.is_null().to_numpy(zero_copy_only=False).argmax()
        raise ConfigValidationError(f"{field} {name!r} is null at row {row_offset + int(first)}")
    kind = column.type
    if pa.types.is_fixed_size_binary(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        lengths = np.asarray(pc.binary_length(column))
        width = 4 * dim
        bad = np.flatnonzero(lengths != width)
        if bad.size:
            raise ConfigValidationError(
                f"{field} {name!r} row {row_offset + int(bad[0])}: {int(lengths[bad[0]])} bytes, "
                f"expected {width} (dim={dim} float32)")
        if pa.types.is_fixed_size_binary(kind):
            buffer = column.buffers()[1]
            return np.frombuffer(buffer, dtype="<f4", count=rows * dim, offset=column.offset * width).reshape(rows, dim)
        return np.frombuffer(b"".join(column.to_pylist()), dtype="<f4").reshape(rows, dim)
    if pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        lengths = np.asarray(pc.list_value_length(column))
        bad = np.flatnonzero(lengths != dim)
        if bad.size:
            raise ConfigValidationError(
                f"{field} {name!r} row {row_offset + int(bad[0])}: vector has {int(lengths[bad[0]])} "
                f"values, expected dim={dim}")
        flat = column.flatten().to_numpy(zero_copy_only=False)
        return np.ascontiguousarray(flat, dtype=np.float32).reshape(rows, dim)
    raise ConfigValidationError(
        f"{field} {name!r} has type {kind}; expected a list of numbers or float32 bytes")


def _payload_texts(data: pa.RecordBatch | pa.Table, columns: Sequence[str]) -> list[str | None]:
    if not columns:
        return []
    return [json.dumps(row, default=str) for row in data.select(list(columns)).to_pylist()]


def _ids(data: pa.RecordBatch | pa.Table, name: str, row_offset: int,
         field: str = "input.id_col") -> tuple[np.ndarray | None, list[str]]:
    """A column of ids as the engine takes them: int64 ids, or str ids; ``field`` names the parameter
    that named the column in errors."""
    column = _column(data, name)
    if column.null_count:
        first = int(column.is_null().to_numpy(zero_copy_only=False).argmax())
        raise ConfigValidationError(f"{field} {name!r} is null at row {row_offset + first}")
    if pa.types.is_integer(column.type):
        return np.asarray(column.to_numpy(), dtype=np.int64), []
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return None, column.to_pylist()
    return split_ids(column.to_pylist(), len(column))


def _shard_ids(data: pa.RecordBatch | pa.Table, name: str | None) -> np.ndarray | None:
    if name is None:
        return None
    column = _column(data, name)
    filled = pc.fill_null(column.cast(pa.int64()), NO_SHARD_ID)
    return np.asarray(filled.to_numpy(), dtype=np.int64)


def _routing_contexts(data: pa.RecordBatch | pa.Table, columns: Sequence[str]) -> list[dict[str, Any]] | None:
    """Each row's routing_context: {column: value} over the CEL columns (None without CEL)."""
    if not columns:
        return None
    return data.select(list(columns)).to_pylist()


def engine_batch(data: pa.RecordBatch | pa.Table, spec: ColumnSpec, row_offset: int = 0) -> EngineBatch:
    """The engine's (vectors, int_ids, str_ids, payloads, shard_ids, routing_contexts) for a batch of
    rows already routed (so without shard ids or contexts)."""
    vectors = vectors_from_arrow(_column(data, spec.vector_col), spec.dim, spec.vector_col, row_offset)
    int_ids, str_ids = _ids(data, spec.id_col, row_offset)
    return vectors, int_ids, str_ids, _payload_texts(data, spec.payload_cols), None, None


# --- workers --------------------------------------------------------------------------------------


# The last plan routed by in this process and its router: a worker routes many batches by one plan,
# and builds (checks, and for CEL compiles) its router once. The plan is held, so `is` stays valid.
_prepared: tuple[_engine.RoutingPlan, _engine.RowRouter] | None = None


def prepared_router(plan: _engine.RoutingPlan) -> _engine.RowRouter:
    """The engine's router for ``plan``, built on the first call with this plan object and reused."""
    global _prepared
    cached = _prepared
    if cached is not None and cached[0] is plan:
        return cached[1]
    router = _engine.RowRouter(plan)
    _prepared = (plan, router)
    return router


def route_vectors(data: pa.RecordBatch | pa.Table, plan: _engine.RoutingPlan, spec: ColumnSpec,
                  row_offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Each row's vector as an (n, dim) float32 matrix, and its shard from the C++ router."""
    vectors = vectors_from_arrow(_column(data, spec.vector_col), spec.dim, spec.vector_col, row_offset)
    routed = prepared_router(plan).route(vectors, _shard_ids(data, spec.user_shard_col), row_offset,
                                         _routing_contexts(data, spec.context_cols))
    return vectors, routed


def route_table(data: pa.RecordBatch | pa.Table, plan: _engine.RoutingPlan, spec: ColumnSpec,
                row_offset: int = 0) -> pa.RecordBatch | pa.Table:
    """``data`` with ``spec.routing_col`` (int64) appended: each row's shard, from the C++ router."""
    _, routed = route_vectors(data, plan, spec, row_offset)
    return data.append_column(spec.routing_col, pa.array(routed, type=pa.int64()))


def _slices(batches: Iterable[pa.RecordBatch | pa.Table], size: int) -> Iterator[pa.RecordBatch | pa.Table]:
    for batch in batches:
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)


def build_shard(spec: ShardTaskSpec, db_id: int, batches: Iterable[pa.RecordBatch | pa.Table],
                first_attempt: int = 0, limiter: RateLimiter | None = None) -> _engine.ShardInfo:
    """Builds and uploads db ``db_id`` from ``batches`` (all rows of that db), streaming them into the
    engine ``spec.batch_size`` rows at a time. Each batch first takes a token from ``limiter`` (a
    task building several shards passes its one limiter; by default ``spec.new_rate_limiter()``).
    Returns the shard info the driver publishes."""
    offset = 0
    if limiter is None:
        limiter = spec.new_rate_limiter()

    def batches_for_engine() -> Iterator[EngineBatch]:
        nonlocal offset
        for piece in _slices(batches, spec.batch_size):
            if limiter is not None:
                # One token for each batch of batch_size rows starting in this piece (the input's
                # own batches may cut the rows anywhere; the shard's batches start every batch_size rows).
                starts = -(-(offset + piece.num_rows) // spec.batch_size) - -(-offset // spec.batch_size)
                for _ in range(starts):
                    limiter.acquire()
            yield engine_batch(piece, spec, offset)
            offset += piece.num_rows

    stream = batches_for_engine()
    task = copy.copy(spec.task)
    task.store_options = task_store_options(task.store_options, spec.credential_provider)
    task.db_id = int(db_id)
    task.first_attempt = int(first_attempt)
    info = _engine.build_shard_attempt(task, lambda: next(stream, None))
    if spec.after_upload is not None:
        spec.after_upload(info)
    return info


SHARD_INFO_SCHEMA = pa.schema([
    ("db_id", pa.int64()), ("db_url", pa.string()), ("row_count", pa.int64()), ("db_bytes", pa.int64()),
    ("checkpoint_id", pa.string()), ("digest", pa.string()), ("attempt", pa.int64()), ("id_type", pa.string()),
    ("sublists", pa.int64()), ("filter_stats", pa.string()),
])


def shard_info_table(infos: Sequence[_engine.ShardInfo]) -> pa.Table:
    """Shard infos as an Arrow table (what tasks return to the driver)."""
    return pa.Table.from_pylist([shard_info_row(info) for info in infos], schema=SHARD_INFO_SCHEMA)


# --- driver ---------------------------------------------------------------------------------------


def _context_columns(config: VectorShardedWriteConfig, input: VectorColumnInput) -> tuple[str, ...]:  # noqa: A002
    """The routing-context columns of a CEL write: ``input.routing_context_cols`` ({column: CEL
    type}, column name = variable name), by default the variables of ``sharding.cel_columns``. Each
    variable needs a column of the same declared type, so workers and readers cannot diverge."""
    declared = {str(k): str(v) for k, v in (config.sharding.cel_columns or {}).items()}
    given = input.routing_context_cols
    if config.sharding.strategy != VectorShardingStrategy.CEL:
        if given:
            raise ConfigValidationError(
                f"input.routing_context_cols applies to CEL sharding only (strategy is "
                f"{config.sharding.strategy.value})")
        return ()
    columns = {str(k): str(v) for k, v in (given or declared).items()}
    for name, cel_type in declared.items():
        if name not in columns:
            raise ConfigValidationError(
                f"input.routing_context_cols has no column for CEL variable {name!r} "
                f"(sharding.cel_columns: {declared})")
        if columns[name] != cel_type:
            raise ConfigValidationError(
                f"input.routing_context_cols[{name!r}] is {columns[name]!r} but sharding.cel_columns declares "
                f"{cel_type!r}; they must agree")
    return tuple(sorted(columns))


def check_column_input(config: VectorShardedWriteConfig, input: VectorColumnInput,  # noqa: A002
                       engine_name: str, columns: Sequence[str] | None) -> tuple[str, ...]:
    """What a distributed writer (a write or an update) checks before it starts: the config, the
    column input against the strategy and the data's ``columns`` (None: not known); returns the
    routing-context columns (CEL)."""
    if not isinstance(input, VectorColumnInput):
        raise ConfigValidationError(f"input must be a VectorColumnInput, got {type(input).__name__}")
    config.validate()  # again: a setter may have changed it since construction
    input.validate()
    if input.id_col is None:
        raise ConfigValidationError("input.id_col is required for vector writes")
    strategy = config.sharding.strategy
    context_cols = _context_columns(config, input)
    if strategy == VectorShardingStrategy.EXPLICIT and input.shard_id_col is None:
        raise ConfigValidationError("EXPLICIT sharding needs input.shard_id_col (the column of shard ids)")
    if strategy != VectorShardingStrategy.EXPLICIT and input.shard_id_col is not None:
        raise ConfigValidationError(
            f"input.shard_id_col={input.shard_id_col!r} applies to EXPLICIT sharding only (strategy is "
            f"{strategy.value})")
    if config.adapter.max_parallel_shards != 0:
        raise ConfigValidationError(
            f"adapter.max_parallel_shards={config.adapter.max_parallel_shards!r} applies to the Python "
            f"writer only; {engine_name} builds one shard per task (leave it 0)")
    if columns is not None:
        if config.shard_id_col in columns:
            raise ConfigValidationError(
                f"shard_id_col {config.shard_id_col!r} conflicts with user data column "
                f"{config.shard_id_col!r}; set config.shard_id_col to another name")
        wanted = [input.vector_col, input.id_col, *(input.payload_cols or [])]
        if input.shard_id_col:
            wanted.append(input.shard_id_col)
        wanted.extend(c for c in context_cols if c not in wanted)
        missing = [c for c in wanted if c not in columns]
        if missing:
            raise ConfigValidationError(f"input columns {missing} are not in the data (columns: {list(columns)})")
    return context_cols


class DistributedRun:
    """One distributed write on the driver: validation, run record, routing plan, publish."""

    def __init__(self, config: VectorShardedWriteConfig, input: VectorColumnInput,  # noqa: A002
                 options: VectorWriteOptions | None, writer_type: str, engine_name: str,
                 columns: Sequence[str] | None) -> None:
        self.context_cols = check_column_input(config, input, engine_name, columns)
        if options is not None and not isinstance(options, VectorWriteOptions):
            raise ConfigValidationError(f"options must be a VectorWriteOptions or None, got {type(options).__name__}")
        self.config = config
        self.input = input
        self.options = options or VectorWriteOptions()
        self.engine_name = engine_name
        # The config's run registry (if any) records this run from here to publish or abort.
        self._record_scope = contextlib.ExitStack()
        run_id, self._record = self._record_scope.enter_context(writer_run_record(config, writer_type))
        try:
            self.engine_config = write_config(config, last_writer_wins=False, run_id=run_id)
            self._run = _engine.DistributedWrite.begin(self.engine_config, writer_type)
        except BaseException as error:
            self._record_scope.__exit__(type(error), error, error.__traceback__)
            raise
        self.plan: _engine.RoutingPlan | None = None
        self.sharding_ms = 0.0  # the routing plan's time (BuildDurations.sharding_ms)

    @property
    def run_id(self) -> str:
        return self._run.run_id

    @property
    def needs_sample(self) -> bool:
        return self.config.sharding.strategy == VectorShardingStrategy.CLUSTER and bool(
            self.config.sharding.train_centroids)

    @property
    def sample_size(self) -> int:
        return int(self.config.sharding.centroids_training_sample_size)

    def plan_routing(self, sample: np.ndarray | None) -> _engine.RoutingPlan:
        """Resolves routing once (training centroids on ``sample`` for CLUSTER)."""
        started = time.perf_counter()
        matrix = None if sample is None else np.ascontiguousarray(sample, dtype=np.float32)
        self.plan = _engine.plan_routing(self.engine_config, matrix)
        self.sharding_ms = (time.perf_counter() - started) * 1000
        return self.plan

    def task_spec(self) -> ShardTaskSpec:
        c = self.engine_config
        rate = self.config.rate_limits.max_writes_per_second
        provider = _shippable(self.config.effective_credential_provider())
        # When the task resolves the provider, no keys travel with it.
        options = shipped_store_options(c.store_options, provider)
        task = _engine.ShardTask(store=c.store, store_options=options, local_root=c.local_root,
                                 run_id=self.run_id, dim=c.index.dim, metric=c.index.metric,
                                 quantization=c.index.quantization,
                                 sublists_per_shard=c.sharding.sublists_per_shard,
                                 filter_columns=c.filter_columns,
                                 shard_prefix=c.shard_prefix, db_path_template=c.db_path_template)
        return ShardTaskSpec(
            task=task, batch_size=int(c.batch_size),
            vector_col=self.input.vector_col, id_col=str(self.input.id_col),
            payload_cols=tuple(self.input.payload_cols or ()), user_shard_col=self.input.shard_id_col,
            routing_col=self.config.shard_id_col, context_cols=self.context_cols,
            credential_provider=provider, max_writes_per_second=rate,
            metrics_collector=None if rate is None else self.config.metrics_collector)

    def verify(self, routed_sample: pa.Table) -> None:
        """Re-routes up to 20 routed rows on the driver; a disagreement is a ShardAssignmentError."""
        if not self.options.verify_routing or routed_sample.num_rows == 0:
            return
        assert self.plan is not None
        spec = self.task_spec()
        expected = route_table(routed_sample.drop_columns([spec.routing_col]), self.plan, spec)
        engine = _column(routed_sample, spec.routing_col).to_pylist()
        python = _column(expected, spec.routing_col).to_pylist()
        ids = _column(routed_sample, spec.id_col).to_pylist()
        wrong = [(i, e, p) for i, e, p in zip(ids, engine, python, strict=True) if e != p]
        if wrong:
            listed = "; ".join(f"id={i!r}, {self.engine_name.lower()}={e}, python={p}" for i, e, p in wrong[:5])
            raise ShardAssignmentError(
                f"{self.engine_name}/Python vector routing mismatch in {len(wrong)}/{len(ids)} sampled rows. "
                f"First mismatches: {listed}")

    def publish(self, attempts: Sequence[Mapping[str, Any]]) -> BuildResult:
        """Publishes one winner per db_id (``attempts``: the rows of the workers' info tables) and
        removes every other attempt."""
        assert self.plan is not None
        result = self._run.publish(self.plan, [shard_info(a) for a in attempts])
        if self._record is not None:
            self._record.set_manifest_ref(result.manifest_ref)
            self._record.mark_succeeded()
        self._record_scope.close()
        return build_result(result, self.sharding_ms)

    def abort(self, error: BaseException) -> None:
        self._run.abort(f"{type(error).__name__}: {error}")
        self._record_scope.__exit__(type(error), error, error.__traceback__)


def shard_infos_from_table(table: pa.Table) -> list[dict[str, Any]]:
    return table.select(SHARD_INFO_SCHEMA.names).to_pylist()
