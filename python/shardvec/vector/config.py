"""Vector write configuration (shardyfusion ``vector/config.py``; docs/architecture.md#write-configuration).

``VectorShardedWriteConfig`` takes keyword arguments only: either grouped sub-configs
(``storage=``, ``adapter=``, …) or the flat shortcuts (``s3_prefix=``, ``batch_size=``, …),
never both for the same group. Every rule raises
:class:`~shardvec.errors.ConfigValidationError` naming the field. Beyond the reference, shardvec
also rejects: ``dot_product`` (sqlite-vec has no such metric), an ``adapter_factory`` other than
``SqliteVecFactory``, a ``SqliteVecFactory`` whose ``VectorSpec`` disagrees with ``index_config``,
and CEL ``routing_values`` that are empty, repeated, of mixed types or of another type than the
expression returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import (
    CredentialProvider,
    refuse_unsupported,
    S3ConnectionOptions,
    VectorWriteRateLimitConfig,
    WriterLifecycleConfig,
    WriterManifestConfig,
    WriterObservabilityConfig,
    WriterOutputConfig,
    WriterStorageConfig,
    engine_store_options,
)
from .._vector_types import VectorIndexConfig, VectorShardingConfig, VectorShardingSpec, VectorSpecSharding
from ..errors import ConfigValidationError
from .types import DistanceMetric, VectorShardingStrategy

if TYPE_CHECKING:
    from .types import VectorIndexWriterFactory, VectorShardReaderFactory

__all__ = [
    "DEFAULT_SHARD_ID_COL",
    "VectorIndexConfig",
    "VectorShardingConfig",
    "VectorShardingSpec",
    "VectorSpecSharding",
    "VectorAdapterConfig",
    "VectorRecordInput",
    "VectorWriteOptions",
    "VectorShardedWriteConfig",
]

#: Internal routing column name used by the distributed writers.
DEFAULT_SHARD_ID_COL = "_vector_db_id"



def _check_routing_values(values: Any) -> None:
    """``routing_values``: None, or a non-empty list of ints, strs or bytes (bool is not an int here)."""
    if values is None:
        return
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise ConfigValidationError(f"routing_values must be a list of int, str or bytes, got {values!r}")
    if not values:
        raise ConfigValidationError("routing_values must not be empty (got [])")
    for i, token in enumerate(values):
        if isinstance(token, bool) or not isinstance(token, (int, str, bytes)):
            raise ConfigValidationError(
                f"routing_values[{i}] is {token!r} ({type(token).__name__}); tokens must be int, str or bytes")

def _same_setting(a: object, b: object) -> bool:
    """Two setting values say the same: enums by value, arrays element-wise, None only to None."""
    a, b = getattr(a, "value", a), getattr(b, "value", b)
    if a is None or b is None:
        return a is b
    if hasattr(a, "shape") or hasattr(b, "shape"):
        import numpy as np

        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    return bool(a == b)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(slots=True)
class VectorAdapterConfig:
    """Shard adapter settings: the factories, the rows per insert batch and (a shardvec addition)
    how many shards a single-process write builds at once (0 = one per core)."""

    adapter_factory: VectorIndexWriterFactory | None = None
    reader_factory: VectorShardReaderFactory | None = None
    batch_size: int = 10_000
    max_parallel_shards: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """``batch_size`` must be an int > 0; ``max_parallel_shards`` an int >= 0."""
        if not _is_int(self.batch_size) or self.batch_size <= 0:
            raise ConfigValidationError(f"adapter.batch_size must be > 0, got {self.batch_size!r}")
        if not _is_int(self.max_parallel_shards) or self.max_parallel_shards < 0:
            raise ConfigValidationError(
                f"adapter.max_parallel_shards must be >= 0, got {self.max_parallel_shards!r}")


@dataclass(slots=True)
class VectorRecordInput:
    """Marker input for ``write_sharded(records: Iterable[VectorRecord], ...)``."""

    def validate(self) -> None:
        """Nothing to check."""
        return None


@dataclass(slots=True)
class VectorWriteOptions:
    """Per-call settings of the distributed writers. The Python writer routes every record once
    in the engine, so it has no routing to verify: it accepts only the default options."""

    verify_routing: bool = True

    def validate(self) -> None:
        """Nothing to check."""
        return None


_GROUPS: tuple[tuple[str, type], ...] = (
    ("storage", WriterStorageConfig),
    ("output", WriterOutputConfig),
    ("manifest", WriterManifestConfig),
    ("adapter", VectorAdapterConfig),
    ("rate_limits", VectorWriteRateLimitConfig),
    ("observability", WriterObservabilityConfig),
    ("lifecycle", WriterLifecycleConfig),
)


def _conflict(group: str, flat: list[str], given: dict[str, object]) -> None:
    """Raises when a grouped sub-config is given together with one of its flat shortcuts."""
    if given[group] is None or all(given[name] is None for name in flat):
        return
    names = flat[0] if len(flat) == 1 else ", ".join(flat[:-1]) + ", or " + flat[-1]
    raise ConfigValidationError(f"{group} cannot be combined with {names}")


@dataclass(slots=True, init=False)
class VectorShardedWriteConfig:
    """Configuration of a vector snapshot write (``write_sharded``).

    Keyword-only. ``index_config`` is required. Grouped sub-configs and their flat shortcuts:
    ``storage`` / ``s3_prefix``, ``credential_provider``, ``s3_connection_options``;
    ``adapter`` / ``adapter_factory``, ``reader_factory``, ``batch_size``;
    ``rate_limits`` / ``max_writes_per_second``; ``observability`` / ``metrics_collector``;
    ``lifecycle`` / ``run_registry``. ``sharding`` may be combined with ``num_dbs`` when they
    agree (the given ``sharding`` object then gets ``num_dbs`` set in place).

    ``filter_columns`` ({name: "string" | "int" | "double" | "bool" | "list<string>"}) stores those
    payload keys typed and columnar in every shard (an extra table other readers ignore), with
    per-shard statistics in the manifest; a missing key or None is null, a value of another type
    fails the write naming the record, the column and the value.

    Raises:
        ConfigValidationError: on the first rule broken, in the reference's order.
    """

    index_config: VectorIndexConfig = field(default_factory=lambda: VectorIndexConfig(dim=0))
    sharding: VectorShardingConfig = field(default_factory=VectorShardingConfig)
    storage: WriterStorageConfig = field(default_factory=WriterStorageConfig)
    output: WriterOutputConfig = field(default_factory=WriterOutputConfig)
    manifest: WriterManifestConfig = field(default_factory=WriterManifestConfig)
    adapter: VectorAdapterConfig = field(default_factory=VectorAdapterConfig)
    rate_limits: VectorWriteRateLimitConfig = field(default_factory=VectorWriteRateLimitConfig)
    observability: WriterObservabilityConfig = field(default_factory=WriterObservabilityConfig)
    lifecycle: WriterLifecycleConfig = field(default_factory=WriterLifecycleConfig)
    shard_id_col: str = DEFAULT_SHARD_ID_COL
    filter_columns: dict[str, str] | None = None

    def __init__(
        self,
        *,
        index_config: VectorIndexConfig | None = None,
        sharding: VectorShardingConfig | None = None,
        storage: WriterStorageConfig | None = None,
        output: WriterOutputConfig | None = None,
        manifest: WriterManifestConfig | None = None,
        adapter: VectorAdapterConfig | None = None,
        rate_limits: VectorWriteRateLimitConfig | None = None,
        observability: WriterObservabilityConfig | None = None,
        lifecycle: WriterLifecycleConfig | None = None,
        shard_id_col: str = DEFAULT_SHARD_ID_COL,
        num_dbs: int | None = None,
        s3_prefix: str | None = None,
        adapter_factory: VectorIndexWriterFactory | None = None,
        reader_factory: VectorShardReaderFactory | None = None,
        batch_size: int | None = None,
        max_writes_per_second: float | None = None,
        credential_provider: CredentialProvider | None = None,
        s3_connection_options: S3ConnectionOptions | None = None,
        metrics_collector: Any | None = None,
        run_registry: Any | None = None,
        filter_columns: dict[str, str] | None = None,
    ) -> None:
        resolved_index = index_config if index_config is not None else VectorIndexConfig(dim=0)
        self._check_dim(resolved_index)
        if sharding is not None and num_dbs is not None:
            if sharding.num_dbs is not None and sharding.num_dbs != num_dbs:
                raise ConfigValidationError(
                    f"sharding.num_dbs cannot disagree with num_dbs "
                    f"({sharding.num_dbs} != {num_dbs})"
                )
            sharding.num_dbs = num_dbs
        given = {
            "storage": storage, "s3_prefix": s3_prefix,
            "credential_provider": credential_provider,
            "s3_connection_options": s3_connection_options,
            "adapter": adapter, "adapter_factory": adapter_factory,
            "reader_factory": reader_factory, "batch_size": batch_size,
            "rate_limits": rate_limits, "max_writes_per_second": max_writes_per_second,
            "observability": observability, "metrics_collector": metrics_collector,
            "lifecycle": lifecycle, "run_registry": run_registry,
        }  # fmt: skip
        _conflict("storage", ["s3_prefix", "credential_provider", "s3_connection_options"], given)
        _conflict("adapter", ["adapter_factory", "reader_factory", "batch_size"], given)
        _conflict("rate_limits", ["max_writes_per_second"], given)
        _conflict("observability", ["metrics_collector"], given)
        _conflict("lifecycle", ["run_registry"], given)

        self.index_config = resolved_index
        self.sharding = sharding if sharding is not None else VectorShardingConfig(num_dbs=num_dbs)
        self.storage = storage or WriterStorageConfig(
            s3_prefix=s3_prefix if s3_prefix is not None else "",
            credential_provider=credential_provider,
            s3_connection_options=s3_connection_options,
        )
        self.output = output or WriterOutputConfig()
        self.manifest = manifest or WriterManifestConfig()
        self.adapter = adapter or VectorAdapterConfig(
            adapter_factory=adapter_factory,
            reader_factory=reader_factory,
            batch_size=10_000 if batch_size is None else batch_size,
        )
        self.rate_limits = rate_limits or VectorWriteRateLimitConfig(
            max_writes_per_second=max_writes_per_second
        )
        self.observability = observability or WriterObservabilityConfig(
            metrics_collector=metrics_collector
        )
        self.lifecycle = lifecycle or WriterLifecycleConfig(run_registry=run_registry)
        self.shard_id_col = shard_id_col
        self.filter_columns = filter_columns
        self.validate()

    # --- validation -------------------------------------------------------------------------------

    @staticmethod
    def _check_dim(index_config: object) -> None:
        if not isinstance(index_config, VectorIndexConfig):
            raise ConfigValidationError(
                f"index_config must be a VectorIndexConfig, got {type(index_config).__name__}"
            )
        dim = index_config.dim
        if not _is_int(dim) or dim <= 0:
            raise ConfigValidationError(
                f"index_config.dim must be > 0; provide an explicit VectorIndexConfig (got {dim!r})"
            )

    def _check_metric(self) -> None:
        metric = self.index_config.metric
        try:
            metric = DistanceMetric(getattr(metric, "value", metric))
        except ValueError:
            raise ConfigValidationError(
                f"index_config.metric must be one of ['cosine', 'l2'], got {metric!r}"
            ) from None
        if metric is DistanceMetric.DOT_PRODUCT:
            raise ConfigValidationError(
                "index_config.metric 'dot_product' is not supported by sqlite-vec; use cosine or l2"
            )
        self.index_config.metric = metric

    def _check_adapter_factory(self) -> None:
        from ..sqlite_vec_adapter import SqliteVecFactory

        factory = self.adapter.adapter_factory
        if factory is None:
            return
        if not isinstance(factory, SqliteVecFactory):
            raise ConfigValidationError(
                "adapter_factory must be a SqliteVecFactory or None (shardvec builds sqlite-vec "
                f"shards itself), got {type(factory).__name__}"
            )
        spec, index = factory.vector_spec, self.index_config
        if spec.dim != index.dim:
            raise ConfigValidationError(
                f"adapter_factory.vector_spec.dim ({spec.dim!r}) does not match "
                f"index_config.dim ({index.dim})"
            )
        if spec.metric != index.metric.value:
            raise ConfigValidationError(
                f"adapter_factory.vector_spec.metric {spec.metric!r} does not match "
                f"index_config.metric {index.metric.value!r}"
            )
        for name in ("index_type", "index_params", "quantization"):
            if getattr(spec, name) != getattr(index, name):
                raise ConfigValidationError(
                    f"adapter_factory.vector_spec.{name} {getattr(spec, name)!r} does not match "
                    f"index_config.{name} {getattr(index, name)!r}"
                )
        if spec.vector_col is not None:
            refuse_unsupported("adapter_factory.vector_spec.vector_col", spec.vector_col,
                               "the vector writers take the column from input.vector_col")
        # The spec's sharding is the reference's string mirror, unused by the writer: a field left at
        # its default is fine, any other value must say what config.sharding says.
        default = VectorSpecSharding()
        for name in VectorSpecSharding.__slots__:
            mirrored, used = getattr(spec.sharding, name), getattr(self.sharding, name)
            if not _same_setting(mirrored, getattr(default, name)) and not _same_setting(mirrored, used):
                raise ConfigValidationError(
                    f"adapter_factory.vector_spec.sharding.{name} {mirrored!r} does not match "
                    f"sharding.{name} {used!r}; the write's sharding comes from config.sharding")

    def _check_sharding(self) -> None:
        s = self.sharding
        try:
            s.strategy = VectorShardingStrategy(getattr(s.strategy, "value", s.strategy))
        except ValueError:
            raise ConfigValidationError(
                f"sharding.strategy must be one of "
                f"{[m.value for m in VectorShardingStrategy]}, got {s.strategy!r}"
            ) from None
        if not _is_int(s.num_probes):
            raise ConfigValidationError(f"num_probes must be >= 1, got {s.num_probes!r}")
        if not _is_int(s.sublists_per_shard) or not 0 <= s.sublists_per_shard <= 65536:
            raise ConfigValidationError(
                f"sublists_per_shard must be in 0..65536 (0 = auto, 1 = none), got {s.sublists_per_shard!r}")
        probes_error = (
            f"num_probes is only supported for CLUSTER and LSH sharding, "
            f"got {s.num_probes} for {s.strategy.value}"
        )
        if s.strategy is VectorShardingStrategy.CLUSTER:
            if s.centroids is None and not s.train_centroids:
                raise ConfigValidationError(
                    "CLUSTER sharding requires either centroids or train_centroids=True"
                )
        elif s.strategy is VectorShardingStrategy.CEL:
            if not s.cel_expr:
                raise ConfigValidationError("CEL sharding requires cel_expr to be set")
            if not s.cel_columns:
                raise ConfigValidationError("CEL sharding requires cel_columns to be set")
            if s.num_probes > 1:
                raise ConfigValidationError(probes_error)
            _check_routing_values(s.routing_values)
        elif s.strategy is VectorShardingStrategy.EXPLICIT and s.num_probes > 1:
            raise ConfigValidationError(probes_error)
        if s.num_probes < 1:
            raise ConfigValidationError(f"num_probes must be >= 1, got {s.num_probes}")

    def validate(self) -> None:
        """Checks every rule that does not need the data (docs/architecture.md#write-configuration), first failure raised.

        Order: ``index_config.dim``; ``index_config.metric`` (cosine or l2); ``num_dbs``;
        ``shard_id_col``; each sub-config's own rules (storage, output, manifest, adapter,
        rate_limits, observability, lifecycle); the adapter factory; the strategy rules;
        ``num_probes >= 1``; then the settings the engine would not honour (``index_params``,
        ``adapter.reader_factory``, manifest store settings that differ from the storage ones).
        The engine refuses, when the write starts, every sharding field the strategy does not
        use (set to other than its default), ``num_probes`` above ``num_dbs``, LSH ``num_dbs``
        above ``2**num_hash_bits``, and ``index_type`` / ``quantization`` values it cannot build. The engine then compiles a CEL expression against ``cel_columns`` and
        checks its result type against ``routing_values`` (duplicates and mixed types refused)
        when the write starts.
        """
        self._check_dim(self.index_config)
        self._check_metric()
        if not isinstance(self.sharding, VectorShardingConfig):
            raise ConfigValidationError(
                f"sharding must be VectorShardingConfig, got {type(self.sharding).__name__}"
            )
        num_dbs = self.sharding.num_dbs
        if num_dbs is not None and (not _is_int(num_dbs) or num_dbs <= 0):
            raise ConfigValidationError(f"num_dbs must be > 0, got {num_dbs!r}")
        if not isinstance(self.shard_id_col, str) or not self.shard_id_col:
            raise ConfigValidationError(
                f"shard_id_col must be a non-empty string, got {self.shard_id_col!r}"
            )
        for name, cls in _GROUPS:
            group = getattr(self, name)
            if not isinstance(group, cls):
                raise ConfigValidationError(
                    f"{name} must be {cls.__name__}, got {type(group).__name__}"
                )
            group.validate()
        self._check_adapter_factory()
        self._check_sharding()
        self._check_filter_columns()
        self._check_not_ignored()

    def _check_filter_columns(self) -> None:
        """``filter_columns``: None, or a dict of column name -> type the engine can store."""
        columns = self.filter_columns
        if columns is None:
            return
        if not isinstance(columns, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                    for k, v in columns.items()):
            raise ConfigValidationError(
                f"filter_columns must be a dict of column name -> type name (str -> str), got {columns!r}")
        from .._native import _engine

        _engine.validate_filter_columns(columns, "filter_columns")

    def _check_not_ignored(self) -> None:
        """Fields the engine would not honour: refused unless they hold the value it honours."""
        from ..sqlite_vec_adapter import check_reader_factory

        if self.index_config.index_params:
            refuse_unsupported("index_config.index_params", self.index_config.index_params,
                               "sqlite-vec has no index parameters; leave it {}")
        factory = self.adapter.reader_factory
        tier = check_reader_factory(factory, field_name="adapter.reader_factory")
        # The writer reads no shards: a factory is accepted for the reference's signature, but only
        # with its defaults (a setting here would take no effect).
        if factory is not None and tier != check_reader_factory(type(factory)()):
            refuse_unsupported("adapter.reader_factory", factory,
                               "the writer reads no shards; pass the factory to the reader, and leave it "
                               "None or at its defaults here")
        for name in ("credential_provider", "s3_connection_options"):
            mine, theirs = getattr(self.manifest, name), getattr(self.storage, name)
            if mine is not None and theirs is not None and mine is not theirs and mine != theirs:
                raise ConfigValidationError(
                    f"manifest.{name} differs from storage.{name}; shardvec writes shards and "
                    f"manifests through one store, so give it once (storage.{name})")

    # --- engine bridge ----------------------------------------------------------------------------

    def engine_store_options(self) -> dict[str, Any]:
        """The engine's store options: credentials and connection settings, merged.

        Uses ``storage.credential_provider`` and ``storage.s3_connection_options``, each falling
        back to the ``manifest`` one when unset (shardvec writes everything through one store).
        Keys present only when set: ``endpoint_url``, ``region``, ``profile``,
        ``addressing_style``, ``access_key_id``, ``secret_access_key``, ``session_token``,
        ``max_attempts``. The credential provider is called on every use.
        """
        options = self.storage.s3_connection_options
        if options is None:
            options = self.manifest.s3_connection_options
        return engine_store_options(self.effective_credential_provider(), options)

    def effective_credential_provider(self) -> Any:
        """``storage.credential_provider``, else the ``manifest`` one (or None)."""
        provider = self.storage.credential_provider
        return self.manifest.credential_provider if provider is None else provider

    # --- convenience properties (delegate to the sub-configs) -------------------------------------

    @property
    def num_dbs(self) -> int | None:
        """``sharding.num_dbs``."""
        return self.sharding.num_dbs

    @property
    def s3_prefix(self) -> str:
        """``storage.s3_prefix`` (validated when set)."""
        return self.storage.s3_prefix

    @s3_prefix.setter
    def s3_prefix(self, value: str) -> None:
        self.storage.s3_prefix = value
        self.storage.validate()

    @property
    def adapter_factory(self) -> VectorIndexWriterFactory | None:
        """``adapter.adapter_factory``."""
        return self.adapter.adapter_factory

    @adapter_factory.setter
    def adapter_factory(self, value: VectorIndexWriterFactory | None) -> None:
        self.adapter.adapter_factory = value

    @property
    def reader_factory(self) -> VectorShardReaderFactory | None:
        """``adapter.reader_factory``."""
        return self.adapter.reader_factory

    @reader_factory.setter
    def reader_factory(self, value: VectorShardReaderFactory | None) -> None:
        self.adapter.reader_factory = value

    @property
    def batch_size(self) -> int:
        """``adapter.batch_size`` (validated when set)."""
        return self.adapter.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.adapter.batch_size = value
        self.adapter.validate()

    @property
    def max_writes_per_second(self) -> float | None:
        """``rate_limits.max_writes_per_second``."""
        return self.rate_limits.max_writes_per_second

    @property
    def credential_provider(self) -> CredentialProvider | None:
        """``storage.credential_provider``."""
        return self.storage.credential_provider

    @credential_provider.setter
    def credential_provider(self, value: CredentialProvider | None) -> None:
        self.storage.credential_provider = value

    @property
    def s3_connection_options(self) -> S3ConnectionOptions | None:
        """``storage.s3_connection_options``."""
        return self.storage.s3_connection_options

    @s3_connection_options.setter
    def s3_connection_options(self, value: S3ConnectionOptions | None) -> None:
        self.storage.s3_connection_options = value

    @property
    def metrics_collector(self) -> Any | None:
        """``observability.metrics_collector``."""
        return self.observability.metrics_collector

    @metrics_collector.setter
    def metrics_collector(self, value: Any | None) -> None:
        self.observability.metrics_collector = value

    @property
    def run_registry(self) -> Any | None:
        """``lifecycle.run_registry``."""
        return self.lifecycle.run_registry

    @run_registry.setter
    def run_registry(self, value: Any | None) -> None:
        self.lifecycle.run_registry = value
