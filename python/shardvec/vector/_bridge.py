"""The one bridge between the Python API and the C++ engine (:mod:`shardvec._engine`).

The public configs (``VectorShardedWriteConfig``, the reader's keyword arguments) become the
engine's typed classes here, and only here: ``WriteConfig``, ``StoreOptions``, ``ReaderOptions``,
``ShardTask``. Each is built by keyword, so a name the engine does not have is a ``TypeError``
naming it, never a setting silently dropped. The engine's typed results (``BuildResult``,
``SnapshotInfo``, ``ShardDetail``, ``ReaderHealth``) become the public dataclasses here too. The
writer, the reader and the distributed writers all go through this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from shardvec._arrays import float32_array, int64_array
from shardvec._native import _engine
from shardvec.config import engine_store_options, require_utf8
from shardvec.errors import ConfigValidationError
from shardvec.manifest_store import engine_manifest_store
from shardvec.metrics import engine_sink
from shardvec.vector.types import (
    BuildDurations,
    BuildResult,
    BuildStats,
    DistanceMetric,
    ShardDetail,
    ShardResult,
    SnapshotInfo,
    ReaderHealth,
    VectorShardingStrategy,
)

if TYPE_CHECKING:
    from shardvec.sqlite_vec_adapter import ReaderTier
    from shardvec.vector.config import VectorShardedWriteConfig

# A shard_ids entry meaning "this record has no shard_id" (the engine's kNoShardId).
NO_SHARD_ID = np.iinfo(np.int64).min

#: One batch of rows for the engine: (vectors, int_ids, str_ids, payloads, shard_ids, routing_contexts).
EngineBatch = tuple[np.ndarray, "np.ndarray | None", list[str], "list[str | None]", "np.ndarray | None",
                    "list[dict[str, Any] | None] | None"]

# engine_store_options() names -> StoreOptions fields, where they differ.
_STORE_OPTION_FIELDS = {"connect_timeout": "connect_timeout_seconds", "read_timeout": "request_timeout_seconds"}


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value))


def engine_metric(value: Any, field_name: str) -> _engine.Metric:
    """A metric (``DistanceMetric`` or its value) as the engine's enum; others refused by name."""
    name = _enum_value(value)
    if name not in ("cosine", "l2"):
        raise ConfigValidationError(f"{field_name} must be one of ['cosine', 'l2'], got {value!r}")
    return _engine.Metric[name.upper()]


def _engine_strategy(value: Any) -> _engine.Strategy:
    name = _enum_value(value)
    if name not in {s.value for s in VectorShardingStrategy}:
        raise ConfigValidationError(
            f"sharding.strategy must be one of {[s.value for s in VectorShardingStrategy]}, got {value!r}")
    return _engine.Strategy[name.upper()]


def _matrix_or_none(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    matrix = float32_array(value, name)
    if matrix.ndim != 2:
        raise ConfigValidationError(f"{name} must be a 2-D array, got shape {matrix.shape}")
    return matrix


def store_options(options: Mapping[str, Any]) -> _engine.StoreOptions:
    """``engine_store_options()``'s dict as the engine's ``StoreOptions``: every key must name a field
    (``connect_timeout`` and ``read_timeout`` are the ``*_seconds`` ones, ``verify_tls`` may be the
    text "false"); any other key is a TypeError naming it."""
    fields: dict[str, Any] = {}
    for key, value in options.items():
        if key == "verify_tls" and isinstance(value, str):
            value = value != "false"
        elif key in _STORE_OPTION_FIELDS:
            value = float(value)
        fields[_STORE_OPTION_FIELDS.get(key, key)] = value
    return _engine.StoreOptions(**fields)


def write_config(config: VectorShardedWriteConfig, last_writer_wins: bool,
                 run_id: str | None = None) -> _engine.WriteConfig:
    """The engine's ``WriteConfig`` for ``config`` (everything a write needs except the records);
    ``run_id``, when given, replaces ``config.output.run_id``."""
    sharding = config.sharding
    index = config.index_config
    custom = {k: json.dumps(v) for k, v in (config.manifest.custom_manifest_fields or {}).items()}
    return _engine.WriteConfig(
        store=config.s3_prefix,
        store_options=store_options(config.engine_store_options()),
        index=_engine.IndexConfig(
            dim=int(index.dim),
            metric=engine_metric(index.metric, "index_config.metric"),
            index_type=str(index.index_type),
            quantization=index.quantization,
        ),
        sharding=_engine.ShardingConfig(
            num_dbs=sharding.num_dbs,
            strategy=_engine_strategy(sharding.strategy),
            num_probes=int(sharding.num_probes),
            sublists_per_shard=int(sharding.sublists_per_shard),
            centroids=_matrix_or_none(sharding.centroids, "sharding.centroids"),
            train_centroids=bool(sharding.train_centroids),
            centroids_training_sample_size=int(sharding.centroids_training_sample_size),
            num_hash_bits=sharding.num_hash_bits,
            hyperplanes=_matrix_or_none(sharding.hyperplanes, "sharding.hyperplanes"),
            cel_expr=sharding.cel_expr,
            cel_columns=dict(sharding.cel_columns) if sharding.cel_columns else {},
            routing_values=list(sharding.routing_values) if sharding.routing_values is not None else None,
        ),
        run_id=run_id if run_id is not None else config.output.run_id,
        local_root=str(config.output.local_root or ""),
        shard_prefix=config.output.shard_prefix,
        db_path_template=config.output.db_path_template,
        run_registry_prefix=config.output.run_registry_prefix,
        batch_size=int(config.batch_size),
        max_parallel_shards=int(config.adapter.max_parallel_shards),
        publish_policy=(_engine.PublishPolicy.LAST_WRITER_WINS if last_writer_wins
                        else _engine.PublishPolicy.REJECT_IF_NEWER),
        allow_schema_change=bool(config.manifest.allow_schema_change),
        filter_columns=dict(config.filter_columns or {}),
        custom_manifest_fields_json=custom,
        manifest_store=engine_manifest_store(config.manifest.store, "manifest.store"),
        metrics=engine_sink(config.metrics_collector),
    )


def reader_options(store: str, options: Mapping[str, Any], cache_dir: str, max_workers: int,
                   max_fallback_attempts: int, max_cached_shards: int, preload_shards: bool,
                   metrics_collector: Any, manifest_store: Any = None, tier: ReaderTier | None = None,
                   max_cache_bytes: int | None = None, filter_cache_bytes: int | None = None,
                   manifest_ref: str | None = None) -> _engine.ReaderOptions:
    """The engine's ``ReaderOptions``; ``manifest_store`` (None: beside the shards) supplies the
    current pointer and the manifests; ``tier`` is what the reader factory asks for (see
    ``check_reader_factory``), its store settings merged over ``options`` for the shards."""
    if tier is None:
        # Imported here: sqlite_vec_adapter imports _shard_files, which imports this module.
        from shardvec.sqlite_vec_adapter import ReaderTier

        tier = ReaderTier()
    shard_options = None
    if tier.has_store_settings():
        if not store.startswith("s3://"):
            raise ConfigValidationError(
                f"reader_factory's s3_connection_options / credential_provider reach shards on an s3:// store; "
                f"{store!r} is a folder")
        shard_options = store_options({**options, **engine_store_options(tier.credential_provider,
                                                                         tier.s3_connection_options)})
    extra: dict[str, Any] = {}
    if max_cache_bytes is not None:
        if isinstance(max_cache_bytes, bool) or not isinstance(max_cache_bytes, int):
            raise ConfigValidationError(f"max_cache_bytes must be an int >= 0 or None, got {max_cache_bytes!r}")
        extra["max_cache_bytes"] = max_cache_bytes
    if filter_cache_bytes is not None:
        if isinstance(filter_cache_bytes, bool) or not isinstance(filter_cache_bytes, int) or filter_cache_bytes < 0:
            raise ConfigValidationError(f"filter_cache_bytes must be an int >= 0 or None, got {filter_cache_bytes!r}")
        extra["filter_cache_bytes"] = filter_cache_bytes
    if manifest_ref is not None:
        if not isinstance(manifest_ref, str) or not manifest_ref:
            raise ConfigValidationError(f"manifest_ref must be a manifest's URL or key (text) or None, got {manifest_ref!r}")
        extra["manifest_ref"] = manifest_ref
    return _engine.ReaderOptions(
        **extra,
        store=store, store_options=store_options(options), cache_dir=cache_dir, max_workers=max_workers,
        max_fallback_attempts=max_fallback_attempts, max_cached_shards=max_cached_shards,
        preload_shards=preload_shards, metrics=engine_sink(metrics_collector),
        reader_mode=_engine.ReaderMode[tier.mode.upper()], mmap_size=tier.mmap_size,
        page_cache_pages=tier.page_cache_pages, auto_per_shard_threshold_bytes=tier.per_shard_threshold,
        auto_total_budget_bytes=tier.total_budget, shard_store_options=shard_options,
        manifest_store=engine_manifest_store(manifest_store, "manifest_store"))


def split_ids(ids: Any, rows: int, first_row: int = 0) -> tuple[np.ndarray | None, list[str]]:
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


def shard_info(row: Mapping[str, Any]) -> _engine.ShardInfo:
    """One shard attempt a worker reported (a row of its info table) as the engine's ``ShardInfo``."""
    return _engine.ShardInfo(**{k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()})


def shard_info_row(info: _engine.ShardInfo) -> dict[str, Any]:
    """The engine's ``ShardInfo`` as a plain row (for an Arrow or pandas table)."""
    return dict(info.__getstate__())


def build_durations(d: _engine.BuildDurations, sharding_ms: float | None = None) -> BuildDurations:
    """The public ``BuildDurations`` (whole milliseconds) of the engine's; ``sharding_ms``, when
    given, is the driver's routing-plan time of a distributed write, which the engine does not see
    (it is then taken out of ``write_ms``)."""
    write_ms = d.write_ms
    if sharding_ms is not None:
        write_ms = max(0.0, write_ms - sharding_ms)
    else:
        sharding_ms = d.sharding_ms
    return BuildDurations(sharding_ms=int(sharding_ms), write_ms=int(write_ms), manifest_ms=int(d.manifest_ms),
                          total_ms=int(d.total_ms))


def build_result(result: _engine.BuildResult, sharding_ms: float | None = None) -> BuildResult:
    """The public ``BuildResult`` of the engine's (``sharding_ms``: see ``build_durations``)."""
    winners = [ShardResult(**shard_info_row(shard)) for shard in result.shards]
    return BuildResult(
        run_id=result.run_id,
        winners=winners,
        manifest_ref=result.manifest_ref,
        stats=BuildStats(durations=build_durations(result.durations, sharding_ms),
                         num_attempt_results=result.num_attempt_results, num_winners=len(winners),
                         rows_written=result.total_vectors),
        num_dbs=result.num_dbs,
    )


def snapshot_info(info: _engine.SnapshotInfo) -> SnapshotInfo:
    """The public ``SnapshotInfo`` (a ``VectorSnapshotInfo``) of the engine's (CEL fields None for
    other strategies)."""
    cel = info.strategy == _engine.Strategy.CEL
    return SnapshotInfo(
        run_id=info.run_id, num_dbs=info.num_dbs, dim=info.dim, metric=DistanceMetric(info.metric.name.lower()),
        sharding=VectorShardingStrategy(info.strategy.name.lower()), manifest_ref=info.manifest_ref,
        total_vectors=info.total_vectors, num_probes=info.num_probes, created_at=info.created_at,
        published_at=info.published_at, cel_expr=info.cel_expr if cel else None,
        cel_columns=dict(info.cel_columns) if cel else None, routing_values=info.routing_values)


def shard_detail(detail: _engine.ShardDetail) -> ShardDetail:
    """The public ``ShardDetail`` (a ``VectorShardDetail``) of the engine's."""
    return ShardDetail(db_id=detail.db_id, db_url=detail.db_url, vector_count=detail.vector_count,
                             checkpoint_id=detail.checkpoint_id, db_bytes=detail.db_bytes, digest=detail.digest)


def reader_health(health: _engine.ReaderHealth) -> ReaderHealth:
    """The public ``ReaderHealth`` (a ``VectorReaderHealth``) of the engine's."""
    return ReaderHealth(status=health.status,  # type: ignore[arg-type]  # the engine's three values
                              manifest_ref=health.manifest_ref, manifest_age_seconds=health.manifest_age_seconds,
                              num_shards=health.num_shards, is_closed=health.is_closed)
