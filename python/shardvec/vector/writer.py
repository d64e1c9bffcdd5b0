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
from collections.abc import Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shardvec._arrays import float32_array, int64_array
from shardvec._native import _engine
from shardvec.config import require_utf8
from shardvec.errors import ConfigValidationError
from shardvec.metrics import engine_sink
from shardvec.vector.config import DEFAULT_SHARD_ID_COL, VectorRecordInput, VectorShardedWriteConfig, VectorWriteOptions
from shardvec.vector.types import VectorRecord


@dataclass(frozen=True, slots=True)
class ShardResult:
    """One published (non-empty) shard."""

    db_id: int
    db_url: str
    row_count: int
    db_bytes: int
    checkpoint_id: str
    digest: str
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class BuildStats:
    """Timings and counts of a write (milliseconds)."""

    total_ms: float
    num_winners: int
    rows_written: int


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What ``write_sharded`` returns: the run, its shards and the manifest it published."""

    run_id: str
    winners: list[ShardResult]
    manifest_ref: str
    stats: BuildStats
    num_dbs: int = 0
    run_record_ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# A shard_ids entry meaning "this record has no shard_id" (the engine's kNoShardId).
NO_SHARD_ID = np.iinfo(np.int64).min

EngineBatch = tuple[np.ndarray, "np.ndarray | None", list[str], "list[str | None]", "np.ndarray | None",
                    "list[dict[str, Any] | None] | None"]


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value))


def _matrix_or_none(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    matrix = float32_array(value, name)
    if matrix.ndim != 2:
        raise ConfigValidationError(f"{name} must be a 2-D array, got shape {matrix.shape}")
    return matrix


def _split_ids(ids: Any, rows: int, first_row: int = 0) -> tuple[np.ndarray | None, list[str]]:
    """Integer ids stay an int64 array (read in place); anything else becomes strings (UTF-8 text:
    ``first_row`` numbers the rows in the message of one that is not)."""
    if ids is None:
        return None, []
    if isinstance(ids, np.ndarray) and np.issubdtype(ids.dtype, np.integer):
        array = int64_array(ids, "ids")
    else:
        values = list(ids)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            array = int64_array(values, "ids")
        elif all(isinstance(v, str) for v in values):
            if len(values) != rows:
                raise ConfigValidationError(f"ids has {len(values)} entries for {rows} vectors")
            for row, value in enumerate(values, start=first_row):
                require_utf8(value, f"id of row {row}")
            return None, values
        else:
            kinds = sorted({type(v).__name__ for v in values})
            raise ConfigValidationError(f"ids must be all int or all str, got {', '.join(kinds)}")
    if array.ndim != 1 or array.shape[0] != rows:
        raise ConfigValidationError(f"ids has shape {array.shape} for {rows} vectors")
    return array, []


def _payload_texts(payloads: Sequence[Any] | None, rows: int) -> list[str | None]:
    if payloads is None:
        return []
    if len(payloads) != rows:
        raise ConfigValidationError(f"payloads has {len(payloads)} entries for {rows} vectors")
    return [
        None if p is None else (require_utf8(p, f"payload of row {row}") if isinstance(p, str) else json.dumps(p))
        for row, p in enumerate(payloads)
    ]


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


def _engine_settings(config: VectorShardedWriteConfig, last_writer_wins: bool) -> dict[str, Any]:
    """The engine's write settings for ``config`` (everything except the records)."""
    sharding = config.sharding
    output = config.output
    custom = {k: json.dumps(v) for k, v in (config.manifest.custom_manifest_fields or {}).items()}
    return dict(
        store=config.s3_prefix,
        store_options={k: str(v) for k, v in config.engine_store_options().items()},
        dim=int(config.index_config.dim),
        metric=_enum_value(config.index_config.metric),
        strategy=_enum_value(sharding.strategy),
        num_dbs=sharding.num_dbs,
        num_probes=int(sharding.num_probes),
        train_centroids=bool(sharding.train_centroids),
        centroids=_matrix_or_none(sharding.centroids, "sharding.centroids"),
        sample_size=int(sharding.centroids_training_sample_size),
        num_hash_bits=sharding.num_hash_bits,
        hyperplanes=_matrix_or_none(sharding.hyperplanes, "sharding.hyperplanes"),
        cel_expr=sharding.cel_expr,
        cel_columns=dict(sharding.cel_columns) if sharding.cel_columns else None,
        routing_values=list(sharding.routing_values) if sharding.routing_values is not None else None,
        run_id=output.run_id,
        local_root=str(output.local_root or ""),
        batch_size=int(config.batch_size),
        max_parallel_shards=int(config.adapter.max_parallel_shards),
        last_writer_wins=last_writer_wins,
        index_type=str(config.index_config.index_type),
        quantization=config.index_config.quantization,
        custom_json=custom,
        metrics=engine_sink(config.metrics_collector),
    )


def _build_result(result: dict[str, Any]) -> BuildResult:
    winners = [ShardResult(**shard) for shard in result["shards"]]
    return BuildResult(
        run_id=result["run_id"],
        winners=winners,
        manifest_ref=result["manifest_ref"],
        stats=BuildStats(total_ms=result["elapsed_ms"], num_winners=len(winners),
                         rows_written=result["total_vectors"]),
        num_dbs=result["num_dbs"],
    )


def _shard_id_array(shard_ids: Sequence[int | None]) -> np.ndarray | None:
    if all(s is None for s in shard_ids):
        return None
    return int64_array([NO_SHARD_ID if s is None else s for s in shard_ids], "shard_ids")


def write_arrays(
    vectors: np.ndarray,
    config: VectorShardedWriteConfig,
    *,
    ids: np.ndarray | Sequence[int] | Sequence[str] | None = None,
    payloads: Sequence[dict[str, Any] | str | None] | None = None,
    shard_ids: np.ndarray | Sequence[int] | None = None,
    routing_contexts: Sequence[dict[str, Any] | None] | None = None,
    last_writer_wins: bool = False,
) -> BuildResult:
    """Builds and publishes a snapshot from arrays: ``vectors`` (n, dim) float32, optional ``ids``
    (int64 array, or n ints / strs; default row numbers), ``payloads`` (dicts or JSON text),
    ``shard_ids`` (EXPLICIT) and ``routing_contexts`` (CEL: one dict of variables per row). Raises
    the :mod:`shardvec.errors` class the engine's error maps to."""
    _check_python_writer_call(config)
    matrix = float32_array(vectors, "vectors")
    if matrix.ndim != 2:
        raise ConfigValidationError(f"vectors must be a 2-D array (n, dim), got shape {matrix.shape}")
    rows = int(matrix.shape[0])
    int_ids, str_ids = _split_ids(ids, rows)
    shard_array = None if shard_ids is None else int64_array(shard_ids, "shard_ids")
    result = _engine.write(
        _engine_settings(config, last_writer_wins),
        vectors=matrix,
        int_ids=int_ids,
        str_ids=str_ids,
        payloads=_payload_texts(payloads, rows),
        shard_ids=shard_array,
        routing_contexts=None if routing_contexts is None else list(routing_contexts),
    )
    return _build_result(result)


def _record_batches(records: Iterable[VectorRecord], dim: int, batch_size: int) -> Iterator[EngineBatch]:
    """Turns records into engine batches of at most ``batch_size`` rows, checking each vector's length."""
    iterator = iter(records)
    first_row = 0
    while chunk := list(itertools.islice(iterator, batch_size)):
        matrix = np.empty((len(chunk), dim), dtype=np.float32)
        for offset, record in enumerate(chunk):
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
            int_ids, str_ids = _split_ids([r.id for r in part], len(part), first_row + start)
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
    result = _engine.write(
        _engine_settings(config, last_writer_wins),
        next_batch=lambda: next(batches, None),
        size_hint=size_hint,
    )
    return _build_result(result)
