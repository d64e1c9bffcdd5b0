"""``write_sharded``: build and publish one snapshot through the C++ engine.

Two paths reach the same engine call:

* ``write_sharded(records, config)`` streams an iterable of :class:`VectorRecord` into the engine as
  NumPy batches of ``config.batch_size`` rows; only one batch is alive at a time, and the iterable is
  read exactly once (CLUSTER training keeps its first pass in a local spool file);
* ``write_arrays(vectors, config, ids=..., payloads=...)`` takes arrays directly; a C-contiguous
  float32 matrix and int64 ids are read in place (no copy) while the GIL is released.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from typing import Any

import numpy as np

from shardvec._arrays import column_values, int64_array, json_default, payload_rows, vectors_matrix
from shardvec._native import _engine
from shardvec.config import require_utf8
from shardvec.errors import ConfigValidationError
from shardvec.rate_limiter import write_rate_limiter
from shardvec.run_registry import writer_run_record
from shardvec.vector._bridge import NO_SHARD_ID, EngineBatch, build_result, split_ids, write_config
from shardvec.vector.config import DEFAULT_SHARD_ID_COL, VectorRecordInput, VectorShardedWriteConfig, VectorWriteOptions
from shardvec.vector.types import (
    BuildDurations,
    BuildResult,
    BuildStats,
    ShardResult,
    UpdateReport,
    UpdateResult,
    VectorRecord,
)

__all__ = [
    "BuildDurations", "BuildResult", "BuildStats", "ShardResult", "UpdateReport", "UpdateResult", "update_sharded",
    "write_arrays", "write_sharded",
]

# The writer_type of this writer's run records (the engine's own record says the same).
WRITER_TYPE = "vector-shardvec"


def _payload_texts(payloads: Sequence[Any] | None, rows: int) -> list[str | None]:
    if payloads is None:
        return []
    if len(payloads) != rows:
        raise ConfigValidationError(f"payloads has {len(payloads)} entries for {rows} vectors")
    return [
        None if p is None else (require_utf8(p, f"payload of row {row}") if isinstance(p, str)
                                else _payload_json(p, row))
        for row, p in enumerate(payloads)
    ]


def _payload_json(payload: Any, row: int) -> str:
    """A payload as JSON text; NumPy scalars and arrays inside it become JSON numbers, booleans,
    strings and lists."""
    try:
        return json.dumps(payload, default=json_default)
    except (TypeError, ValueError) as error:
        raise ConfigValidationError(f"payload of row {row} is not JSON-serializable: {error}") from None


def _check_python_writer_call(config: VectorShardedWriteConfig, input: Any = None,  # noqa: A002
                              options: Any = None) -> None:
    """What the single-process writers cannot honour: ``input`` other than the record marker,
    non-default ``options`` (routing verification belongs to the distributed writers: this writer
    routes each record once, in the engine) and a non-default ``shard_id_col`` (the distributed
    writers' routing column name). The config is validated again first: a setter may have changed
    it since construction."""
    config.validate()
    if input is not None and not isinstance(input, VectorRecordInput):
        raise ConfigValidationError(
            f"input must be None or VectorRecordInput() for the Python writer (records are its input), "
            f"got {type(input).__name__}; column inputs (VectorColumnInput) go to the Spark, Dask or Ray writer")
    if options is not None and options != VectorWriteOptions():
        raise ConfigValidationError(
            f"options={options!r} applies to the Spark, Dask and Ray writers only; the Python writer routes "
            "each record once in the engine, so there is no routing to verify: pass None")
    if config.shard_id_col != DEFAULT_SHARD_ID_COL:
        raise ConfigValidationError(
            f"shard_id_col={config.shard_id_col!r} names the routing column of the Spark, Dask and Ray "
            f"writers; the Python writer has none: leave the default {DEFAULT_SHARD_ID_COL!r}")


def _rate_limiter(config: VectorShardedWriteConfig) -> Any:
    """``rate_limits.max_writes_per_second`` as the engine's write limiter: one token before each
    ``batch_size`` rows of a shard (the reference's write batch), shared by the shards built at once."""
    return write_rate_limiter(config.rate_limits.max_writes_per_second, config.metrics_collector)


def _shard_id_array(shard_ids: Sequence[int | None]) -> np.ndarray | None:
    if all(s is None for s in shard_ids):
        return None
    return int64_array([NO_SHARD_ID if s is None else s for s in shard_ids], "shard_ids")


def write_arrays(
    vectors: Any,
    config: VectorShardedWriteConfig,
    *,
    ids: Any = None,
    payloads: Any = None,
    shard_ids: Any = None,
    routing_contexts: Sequence[dict[str, Any] | None] | None = None,
    last_writer_wins: bool = False,
) -> BuildResult:
    """Builds and publishes a snapshot from arrays: ``vectors`` (n, dim) float32, optional ``ids``
    (int64 array, or n ints / strs; default row numbers), ``payloads`` (dicts or JSON text),
    ``shard_ids`` (EXPLICIT) and ``routing_contexts`` (CEL: one dict of variables per row). Raises
    the :mod:`shardvec.errors` class the engine's error maps to.

    ``vectors`` may also be float16/float64 (converted to float32, float16 exactly), a pandas
    DataFrame, a pandas Series of arrays or a pyarrow FixedSizeList/List (Chunked)Array; ``ids`` and
    ``shard_ids`` pandas or pyarrow columns; ``payloads`` a pandas DataFrame or a pyarrow Table (one
    dict per row). NumPy scalars and arrays inside payloads serialize as JSON values."""
    _check_python_writer_call(config)
    matrix = vectors_matrix(vectors, "vectors")
    if matrix.ndim == 1 and matrix.size == 0:
        # No rows: the configured dim gives the shape, as the CLI's empty (0, dim) input does.
        matrix = matrix.reshape(0, config.index_config.dim)
    if matrix.ndim != 2:
        raise ConfigValidationError(f"vectors must be a 2-D array (n, dim), got shape {matrix.shape}")
    rows = int(matrix.shape[0])
    int_ids, str_ids = split_ids(column_values(ids, "ids"), rows)
    shard_array = None if shard_ids is None else int64_array(column_values(shard_ids, "shard_ids"), "shard_ids")
    texts = _payload_texts(payload_rows(payloads), rows)
    contexts = None if routing_contexts is None else list(routing_contexts)
    return _recorded_write(config, lambda run_id: _engine.write(
        write_config(config, last_writer_wins, run_id),
        vectors=matrix,
        int_ids=int_ids,
        str_ids=str_ids,
        payloads=texts,
        shard_ids=shard_array,
        routing_contexts=contexts,
        rate_limiter=_rate_limiter(config),
    ))


def _recorded_call(config: VectorShardedWriteConfig, call: Callable[[str | None], Any],
                   build_of: Callable[[Any], Any]) -> Any:
    """Runs ``call(run_id)`` (an engine write) inside the config's run registry record, if any;
    ``build_of`` picks the engine's BuildResult out of what it returns."""
    with writer_run_record(config, WRITER_TYPE) as (run_id, life):
        result = call(run_id)
        if life is not None:
            life.set_manifest_ref(build_of(result).manifest_ref)
            life.mark_succeeded()
    return result


def _recorded_write(config: VectorShardedWriteConfig, write: Callable[[str | None], Any]) -> BuildResult:
    """Runs ``write(run_id)`` (the engine's write) inside the config's run registry record, if any."""
    return build_result(_recorded_call(config, write, lambda result: result))


def _refuse_record(record: Any, row: int) -> None:
    """Records are VectorRecord objects (the reference's writer reads them by attribute, so a dict
    fails there with an AttributeError; here it is refused by name)."""
    if isinstance(record, Mapping):
        keys = ", ".join(f"{k}=..." for k in record)
        raise ConfigValidationError(
            f"record at row {row} is a {type(record).__name__}, not a VectorRecord: write "
            f"VectorRecord({keys}) (or VectorRecord(**record)), or pass arrays to write_arrays")
    raise ConfigValidationError(
        f"record at row {row} is a {type(record).__name__}, not a VectorRecord(id=..., vector=..., payload=...)")


def _record_batches(records: Iterable[VectorRecord], dim: int, batch_size: int) -> Iterator[EngineBatch]:
    """Turns records into engine batches of at most ``batch_size`` rows, checking each vector's length."""
    iterator = iter(records)
    first_row = 0
    while chunk := list(itertools.islice(iterator, batch_size)):
        matrix = np.empty((len(chunk), dim), dtype=np.float32)
        for offset, record in enumerate(chunk):
            if isinstance(record, Mapping) or not hasattr(record, "vector"):
                _refuse_record(record, first_row + offset)
            try:
                vector = np.asarray(record.vector, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError, OverflowError) as error:  # named here: this runs per row
                raise ConfigValidationError(f"record id={record.id!r} (row {first_row + offset}): vector must be "
                                            f"numbers convertible to float32: {error}") from None
            if vector.shape[0] != dim:
                raise ConfigValidationError(
                    f"record id={record.id!r} (row {first_row + offset}): vector has {vector.shape[0]} "
                    f"values, expected dim={dim}")
            matrix[offset] = vector
        # An engine batch holds one id type, so a chunk mixing int and str ids goes as one batch per
        # run of a type: whether ids may mix must not depend on batch_size.
        start = 0
        for _, run in itertools.groupby(chunk, key=lambda r: isinstance(r.id, str)):
            part = list(run)
            end = start + len(part)
            int_ids, str_ids = split_ids([r.id for r in part], len(part), first_row + start)
            payloads = [r.payload for r in part]
            contexts = [r.routing_context for r in part]
            yield (
                matrix if (start, end) == (0, len(chunk)) else matrix[start:end],
                int_ids,
                str_ids,
                _payload_texts(payloads, len(part)) if any(p is not None for p in payloads) else [],
                _shard_id_array([r.shard_id for r in part]),
                None if all(c is None for c in contexts) else contexts,
            )
            start = end
        first_row += len(chunk)


def write_sharded(
    records: Iterable[VectorRecord],
    config: VectorShardedWriteConfig,
    input: Any = None,  # noqa: A002  (the reference's signature)
    options: Any = None,
    *,
    last_writer_wins: bool = False,
) -> BuildResult:
    """Writes an iterable of :class:`VectorRecord` as one snapshot (the reference's iterator writer).

    Records stream into the engine in batches of ``config.batch_size``: memory holds one batch, not
    the input. The iterable is consumed once. An exception raised by the iterable propagates as is,
    and nothing is published. ``input`` may be None or ``VectorRecordInput()`` and ``options`` None or
    the default ``VectorWriteOptions()``; anything else is refused (see ``_check_python_writer_call``)."""
    _check_python_writer_call(config, input, options)
    dim = int(config.index_config.dim)
    size_hint = len(records) if isinstance(records, Sized) else None
    batches = _record_batches(records, dim, int(config.batch_size))
    return _recorded_write(config, lambda run_id: _engine.write(
        write_config(config, last_writer_wins, run_id),
        next_batch=lambda: next(batches, None),
        size_hint=size_hint,
        rate_limiter=_rate_limiter(config),
    ))


def _upsert_arrays(upserts: Any, dim: int) -> dict[str, Any]:
    """The engine's array arguments for ``upserts``: a mapping of arrays (``vectors`` and optional
    ``ids``, ``payloads``, ``shard_ids``, ``routing_contexts``, as ``write_arrays`` takes them) or an
    iterable of :class:`VectorRecord` (read once, into memory)."""
    if upserts is None:
        return {}
    if isinstance(upserts, Mapping):
        unknown = sorted(set(upserts) - {"vectors", "ids", "payloads", "shard_ids", "routing_contexts"})
        if unknown or "vectors" not in upserts:
            raise ConfigValidationError(
                f"upserts as a mapping takes 'vectors' and optionally 'ids', 'payloads', 'shard_ids', "
                f"'routing_contexts' (got keys {sorted(upserts)})")
        columns = dict(upserts)
    else:
        records = list(upserts)
        for row, record in enumerate(records):
            if isinstance(record, Mapping) or not hasattr(record, "vector"):
                _refuse_record(record, row)
        columns = {
            "vectors": np.asarray([np.asarray(r.vector, dtype=np.float32).reshape(-1) for r in records],
                                  dtype=np.float32).reshape(len(records), dim),
            "ids": [r.id for r in records],
            "payloads": [r.payload for r in records] if any(r.payload is not None for r in records) else None,
            "shard_ids": [r.shard_id for r in records] if any(r.shard_id is not None for r in records) else None,
            "routing_contexts": ([r.routing_context for r in records]
                                 if any(r.routing_context is not None for r in records) else None),
        }
    matrix = vectors_matrix(columns["vectors"], "upserts vectors")
    if matrix.ndim != 2:
        raise ConfigValidationError(f"upserts vectors must be a 2-D array (n, dim), got shape {matrix.shape}")
    rows = int(matrix.shape[0])
    if columns.get("ids") is None:
        raise ConfigValidationError("upserts need ids: an update replaces and deletes rows by id")
    int_ids, str_ids = split_ids(column_values(columns["ids"], "ids"), rows)
    shard_ids = columns.get("shard_ids")
    if shard_ids is not None and not isinstance(shard_ids, np.ndarray):
        shard_ids = _shard_id_array(list(shard_ids))
    elif shard_ids is not None:
        shard_ids = int64_array(shard_ids, "shard_ids")
    contexts = columns.get("routing_contexts")
    return {
        "vectors": matrix,
        "int_ids": int_ids,
        "str_ids": str_ids,
        "payloads": _payload_texts(payload_rows(columns.get("payloads")), rows),
        "shard_ids": shard_ids,
        "routing_contexts": None if contexts is None else list(contexts),
    }


def _delete_arrays(deletes: Iterable[int | str] | None) -> dict[str, Any]:
    """Ids to delete as the engine's two columns (int ids as int64, the rest as UTF-8 strings)."""
    if deletes is None:
        return {}
    values = list(column_values(deletes, "deletes"))
    ints = [v for v in values if isinstance(v, (int, np.integer)) and not isinstance(v, bool)]
    strs = [v for v in values if isinstance(v, str)]
    if len(ints) + len(strs) != len(values):
        kinds = sorted({type(v).__name__ for v in values if not isinstance(v, (int, np.integer, str))
                        or isinstance(v, bool)})
        raise ConfigValidationError(f"deletes must be int or str ids, got {', '.join(kinds)}")
    for position, value in enumerate(strs):
        require_utf8(value, f"deletes entry {position}")
    return {"delete_int_ids": int64_array(ints, "deletes") if ints else None, "delete_str_ids": strs}


def check_update_options(config: VectorShardedWriteConfig, base: Any, **flags: Any) -> None:
    """Refuses, naming it, what an update cannot take: a ``base`` that is not a str, a flag that is not
    a bool, and ``rate_limits.max_writes_per_second`` (an update does not pace its shards)."""
    if not isinstance(base, str):
        raise ConfigValidationError(f"base must be 'current' or a run id (str), got {type(base).__name__}")
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise ConfigValidationError(f"{name} must be a bool, got {type(value).__name__}")
    if config.rate_limits.max_writes_per_second is not None:
        raise ConfigValidationError(
            f"rate_limits.max_writes_per_second={config.rate_limits.max_writes_per_second!r} is not applied by "
            "update_sharded yet (it would be ignored): leave it None for an update")


def update_sharded(
    upserts: Any = None,
    deletes: Iterable[int | str] | None = None,
    config: VectorShardedWriteConfig | None = None,
    *,
    base: str = "current",
    strict: bool = False,
    last_writer_wins: bool = False,
    compact: bool = False,
    rebase: bool = False,
    retrain: bool = False,
) -> UpdateResult:
    """Upserts records and deletes ids in a published snapshot and publishes the result, rebuilding
    only the shards that change (the others are shared with the base by URL and digest).

    ``upserts``: None, an iterable of :class:`VectorRecord`, or a mapping of arrays as
    ``write_arrays`` takes them (``vectors``, ``ids``, ``payloads``, ``shard_ids``,
    ``routing_contexts``); every upsert needs an id, and one whose id the base holds replaces that row.
    ``deletes``: ids to remove (one the base does not hold is counted in
    ``report.missing_deletes``, or raises with ``strict``). ``config`` is the snapshot's write config;
    whatever it says of the index, the routing, the filter columns and the layout must agree with the
    base (``ConfigValidationError`` naming the field otherwise): upserts are routed with the base's
    centroids, hyperplanes or CEL expression. ``base`` is ``"current"`` or a run id, and must be the
    current snapshot (``PublishConflictError`` otherwise, and when another snapshot becomes current
    before the update publishes) unless ``last_writer_wins``. A touched shard is edited in place (its
    removed rows deleted, its new rows appended to their nearest sub-lists) unless ``compact``, which
    rebuilds each touched shard whole (sub-lists retrained, no holes left). With ``rebase``, an update
    whose base is not (or stops being) current is redone on the current snapshot instead of raising
    ``PublishConflictError`` (up to 3 times; not with ``last_writer_wins``). With ``retrain`` (CLUSTER
    snapshots), the whole snapshot is built anew from the base's rows less the changed ids plus the
    upserts, its centroids trained anew on them: what ``report.advice`` asks for when the upserts
    drift from the centroids or a shard grows too large; every shard is rebuilt, none shared (not with
    ``compact``)."""
    if config is None:
        raise ConfigValidationError("update_sharded needs config: the snapshot's VectorShardedWriteConfig")
    _check_python_writer_call(config)
    if upserts is None and deletes is None:
        raise ConfigValidationError("update_sharded needs upserts, deletes, or both")
    check_update_options(config, base, strict=strict, last_writer_wins=last_writer_wins, compact=compact,
                         rebase=rebase, retrain=retrain)
    arrays = _upsert_arrays(upserts, int(config.index_config.dim))
    arrays.update(_delete_arrays(deletes))
    build, report = _recorded_call(config, lambda run_id: _engine.update(
        write_config(config, last_writer_wins, run_id), base=base, strict=strict,
        compact=compact, rebase=rebase, retrain=retrain, **arrays),
        lambda result: result[0])
    return update_result(build, report)


def update_result(build: Any, report: dict[str, Any]) -> UpdateResult:
    """The engine's (BuildResult, report dict) of an update as the Python :class:`UpdateResult`."""
    return UpdateResult(build=build_result(build), report=UpdateReport(
        **{**report, "rebuilt": [tuple(change) for change in report["rebuilt"]]}))
