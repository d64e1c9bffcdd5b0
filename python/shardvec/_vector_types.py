"""The vector settings both config layers use: the metric and strategy enums, the index and sharding
configs and ``VectorSpec``'s sharding mirror.

They depend on nothing else in the package, so :mod:`shardvec.config` (``VectorSpec``) and
:mod:`shardvec.vector.config` (``VectorShardedWriteConfig``) both import them without importing
each other. Their public homes are :mod:`shardvec.vector.types` (the enums) and
:mod:`shardvec.vector.config` (the configs), which re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, unique
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DistanceMetric",
    "VectorShardingStrategy",
    "VectorIndexConfig",
    "VectorShardingConfig",
    "VectorShardingSpec",
    "VectorSpecSharding",
]


@unique
class DistanceMetric(str, Enum):
    """Distance metric of a snapshot. sqlite-vec (and so shardvec) supports cosine and l2 only."""

    COSINE = "cosine"
    L2 = "l2"
    DOT_PRODUCT = "dot_product"


@unique
class VectorShardingStrategy(str, Enum):
    """How vectors are routed to shards."""

    CLUSTER = "cluster"
    LSH = "lsh"
    EXPLICIT = "explicit"
    CEL = "cel"


@dataclass(slots=True)
class VectorIndexConfig:
    """The per-shard index: dimension and metric.

    sqlite-vec shards are float32 and searched exhaustively, so the engine accepts ``index_type``
    "hnsw" (the reference's default) or "flat" (recorded in the manifest) and ``index_params``
    empty only. ``quantization`` "int8" also stores int8 codes of every row in each shard (extra
    tables other readers ignore), which shardvec's reader scans first and rescores with the
    float32 rows (the same scores); "none" or None stores float32 only. Other values are refused."""

    dim: int
    metric: DistanceMetric = DistanceMetric.COSINE
    index_type: str = "hnsw"
    index_params: dict[str, Any] = field(default_factory=dict)
    quantization: str | None = None


@dataclass(slots=True)
class VectorShardingConfig:
    """How vectors are distributed across shards (checked by ``VectorShardedWriteConfig``).

    Attributes:
        num_dbs: Shard count; inferred from ``len(centroids)`` for CLUSTER with given centroids
            (or ``len(routing_values)`` for CEL).
        strategy: CLUSTER, LSH, EXPLICIT or CEL.
        num_probes: Default read-time probe count; exactly 1 for EXPLICIT and CEL.
        sublists_per_shard: Sub-lists inside each shard, which a reader scans nearest first: 0 = auto
            (about sqrt(rows) per shard, none below 256 rows), 1 = none, n = at most n (0..65536).
        centroids: CLUSTER, shape ``(num_dbs, dim)``; not with ``train_centroids``.
        train_centroids: CLUSTER, train k-means on a sample of the input.
        centroids_training_sample_size: Sample cap for training.
        num_hash_bits: LSH hyperplane count.
        hyperplanes: LSH, shape ``(num_hash_bits, dim)``.
        cel_expr, cel_columns, routing_values: CEL expression, variable types, categorical tokens.

    A field set (to other than its default) under a strategy that does not read it is refused when
    the write starts, as are ``num_probes`` above what the routing can probe and an LSH ``num_dbs``
    above ``2**num_hash_bits``.
    """

    num_dbs: int | None = None
    strategy: VectorShardingStrategy = VectorShardingStrategy.CLUSTER
    num_probes: int = 1
    centroids: np.ndarray | None = None
    train_centroids: bool = False
    centroids_training_sample_size: int = 100_000
    num_hash_bits: int = 8
    hyperplanes: np.ndarray | None = None
    cel_expr: str | None = None
    cel_columns: dict[str, str] | None = None
    routing_values: list[int | str | bytes] | None = None
    sublists_per_shard: int = 0


#: shardyfusion's other name for :class:`VectorShardingConfig`.
VectorShardingSpec = VectorShardingConfig


@dataclass(slots=True)
class VectorSpecSharding:
    """String mirror of :class:`VectorShardingConfig` used by ``VectorSpec.sharding``."""

    strategy: str = "cluster"
    num_probes: int = 1
    centroids: np.ndarray | None = None
    train_centroids: bool = False
    centroids_training_sample_size: int = 100_000
    num_hash_bits: int = 8
    hyperplanes: np.ndarray | None = None
    cel_expr: str | None = None
    cel_columns: dict[str, str] | None = None
    routing_values: list[int | str | bytes] | None = None
