"""Vector enums, records and result types (shardyfusion ``vector/types.py``).

Plain data only: nothing here validates its fields (the writer and the reader do).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .._vector_types import DistanceMetric, VectorIndexConfig, VectorShardingStrategy

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "UpdateReport",
    "UpdateResult",
    "DistanceMetric",
    "VectorShardingStrategy",
    "VectorRecord",
    "SearchResult",
    "VectorSearchResponse",
    "VectorShardDetail",
    "ShardDetail",
    "VectorSnapshotInfo",
    "SnapshotInfo",
    "ReaderHealth",
    "VectorReaderHealth",
    "ShardResult",
    "BuildDurations",
    "BuildStats",
    "BuildResult",
    "VectorIndexWriter",
    "VectorIndexWriterFactory",
    "VectorShardReader",
    "VectorShardReaderFactory",
    "AsyncVectorShardReader",
    "AsyncVectorShardReaderFactory",
    "HnswNode",
    "HnswGraph",
    "HnswGraphBuilder",
]


@dataclass
class VectorRecord:
    """One vector to write.

    Attributes:
        id: The record id, an int or a str; returned with search hits.
        vector: The embedding, shape ``(dim,)`` (any array-like of numbers).
        payload: A JSON-able dict stored with the vector and returned with hits.
        shard_id: The target shard under EXPLICIT sharding.
        routing_context: The variables the CEL expression reads under CEL sharding.
    """

    id: int | str
    vector: np.ndarray | Sequence[float]
    payload: dict[str, Any] | None = None
    shard_id: int | None = None
    routing_context: dict[str, Any] | None = None


@dataclass(frozen=True)
class SearchResult:
    """One hit: ``score`` is the sqlite-vec distance (lower is better); ``vector`` stays None."""

    id: int | str
    score: float
    vector: np.ndarray | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class VectorSearchResponse:
    """The merged global top-k of one query."""

    results: list[SearchResult]
    num_shards_queried: int
    latency_ms: float


@dataclass(frozen=True)
class VectorShardDetail:
    """One shard of a snapshot; ``db_url`` and ``checkpoint_id`` are None for an empty shard."""

    db_id: int
    db_url: str | None
    vector_count: int
    checkpoint_id: str | None


@dataclass(frozen=True)
class ShardDetail(VectorShardDetail):
    """What ``shard_details()`` returns: the reference's fields, then the manifest's size and checksum
    of the shard file, ``db_bytes`` and ``digest`` (``xxh3:<16 hex>``; None for an empty shard)."""

    db_bytes: int = 0
    digest: str | None = None


@dataclass(frozen=True)
class VectorSnapshotInfo:
    """What a reader's pinned snapshot is. ``total_vectors`` sums the manifest's row counts."""

    run_id: str
    num_dbs: int
    dim: int
    metric: DistanceMetric
    sharding: VectorShardingStrategy
    manifest_ref: str
    total_vectors: int


@dataclass(frozen=True)
class SnapshotInfo(VectorSnapshotInfo):
    """What ``snapshot_info()`` returns: the reference's fields, then what the engine records beyond
    them: ``num_probes`` (the default probe count), ``created_at`` (the manifest's timestamp),
    ``published_at`` (when ``_CURRENT`` moved to it) and, for CEL snapshots, ``cel_expr``,
    ``cel_columns`` and the categorical ``routing_values`` (None otherwise)."""

    num_probes: int = 1
    created_at: str = ""
    published_at: str = ""
    cel_expr: str | None = None
    cel_columns: dict[str, str] | None = None
    routing_values: list[int | str | bytes] | None = None


@dataclass(frozen=True)
class VectorReaderHealth:
    """A reader's health: "degraded" when its manifest is older than the staleness threshold."""

    status: Literal["healthy", "degraded", "unhealthy"]
    manifest_ref: str | None
    manifest_age_seconds: float | None
    num_shards: int
    is_closed: bool


@dataclass(frozen=True)
class ReaderHealth(VectorReaderHealth):
    """What ``health()`` returns: the reference's fields, then ``deep``: the
    :class:`shardvec.VerifyReport` of ``health(deep=True)`` (None otherwise); a problem in it makes
    the status "unhealthy"."""

    deep: Any = None


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
    id_type: str = ""  # "int", "str" or "mixed" (what the manifest's custom.shardvec.id_type sums up)
    sublists: int = 0  # the sub-lists the shard was split into (0: none; custom.shardvec.sublists sums them up)
    # The shard's filter column statistics as JSON text ({name: {"nulls": ..., ...}}); "" without
    # filter columns (the manifest's custom.shardvec.filter_stats holds them by db_id).
    filter_stats: str = ""


@dataclass(frozen=True, slots=True)
class BuildDurations:
    """Where a write's time went, in whole milliseconds (the reference's fields, measured):
    ``sharding_ms`` the routing plan (k-means training included) and, for the Python writer, routing
    every record; ``write_ms`` building and uploading the shards; ``manifest_ms`` the manifest and
    ``_CURRENT``; ``total_ms`` the whole call."""

    sharding_ms: int
    write_ms: int
    manifest_ms: int
    total_ms: int


@dataclass(frozen=True, slots=True)
class BuildStats:
    """Timings and counts of a write: ``num_attempt_results`` is the shard attempts built (the Python
    writer: one per non-empty shard; Spark, Dask, Ray: every attempt the tasks reported, retries
    included), ``num_winners`` the shards published, ``rows_written`` their rows."""

    durations: BuildDurations
    num_attempt_results: int
    num_winners: int
    rows_written: int

    @property
    def total_ms(self) -> int:
        """``durations.total_ms``."""
        return self.durations.total_ms


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


@dataclass(frozen=True, slots=True)
class UpdateReport:
    """What an update changed (``update_sharded``): rows upserted (``replaced`` of them took the place
    of a base row with the same id), rows deleted, ids to delete the base did not hold, the shards
    rebuilt as ``(db_id, base_rows, rows)``, the shards shared with the base, the largest shard's rows
    over the mean before and after, and for CLUSTER the mean distance of the upserted vectors to their
    centroid vs the rebuilt shards' base rows. ``rebuild_advised`` and ``advice`` say when a full
    rebuild (a new ``write_sharded``, retraining the routing) would pay. ``used_id_index`` is False
    when the base had no id index (every shard's id map was read instead). ``edited_in_place``
    lists the rebuilt shards that were edited in place rather than rebuilt whole; ``rebased`` how many
    times the update was redone on a newer current snapshot (``rebase=True``)."""

    base_run_id: str
    base_manifest_ref: str
    upserted: int
    replaced: int
    deleted: int
    missing_deletes: int
    used_id_index: bool
    rebuilt: list[tuple[int, int, int]]
    edited_in_place: list[int]
    rebased: int
    shared_shards: int
    base_imbalance: float
    imbalance: float
    upsert_centroid_distance: float | None
    base_centroid_distance: float | None
    rebuild_advised: bool
    advice: str


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """What ``update_sharded`` returns: the published snapshot and what changed."""

    build: BuildResult
    report: UpdateReport


# --- adapter protocols (documented shape; the shardvec engine builds and reads shards itself) ----


class VectorIndexWriter(Protocol):
    """Writes one shard's vectors (the reference's per-shard adapter protocol)."""

    def add_batch(
        self, ids: np.ndarray, vectors: np.ndarray, payloads: list[dict[str, Any]] | None
    ) -> None: ...

    def flush(self) -> None: ...

    def seal(self) -> None: ...

    def db_bytes(self) -> int: ...

    def close(self) -> None: ...


class VectorIndexWriterFactory(Protocol):
    """Called as ``factory(db_url=, local_dir=, index_config=)`` to open one shard writer."""

    def __call__(
        self, *, db_url: str, local_dir: Path, index_config: VectorIndexConfig
    ) -> VectorIndexWriter: ...


class VectorShardReader(Protocol):
    """Searches one shard."""

    def search(self, query: np.ndarray, top_k: int) -> list[SearchResult]: ...

    def close(self) -> None: ...


class VectorShardReaderFactory(Protocol):
    """Called as ``factory(db_url=, local_dir=, index_config=, manifest=)`` to open one shard."""

    def __call__(
        self, *, db_url: str, local_dir: Path, index_config: VectorIndexConfig, manifest: Any
    ) -> VectorShardReader: ...


class AsyncVectorShardReader(Protocol):
    """Searches one shard from asyncio code."""

    async def search(self, query: np.ndarray, top_k: int) -> list[SearchResult]: ...

    async def close(self) -> None: ...


class AsyncVectorShardReaderFactory(Protocol):
    """Awaited as ``await factory(db_url=, local_dir=, index_config=, manifest=)`` to open one shard."""

    async def __call__(
        self, *, db_url: str, local_dir: Path, index_config: VectorIndexConfig, manifest: Any
    ) -> AsyncVectorShardReader: ...


# --- HNSW graph types (the reference's serialisation types; plain data, read by no shardvec API) ---


@dataclass(frozen=True, slots=True)
class HnswNode:
    """One node of an HNSW graph: its top layer and its neighbours per layer."""

    max_layer: int
    neighbors: dict[int, list[int]]


@dataclass(frozen=True, slots=True)
class HnswGraph:
    """A whole HNSW graph. shardvec shards are sqlite-vec tables, so no shardvec API reads one."""

    entry_point: int
    max_layer: int
    nodes: dict[int, HnswNode]


class HnswGraphBuilder(Protocol):
    """Builds an ``HnswGraph`` in memory from vectors (a protocol for user code; shardvec has none)."""

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def build(self) -> HnswGraph: ...
