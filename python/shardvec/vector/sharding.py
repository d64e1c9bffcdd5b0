"""Routing functions (the names of shardyfusion's ``vector/sharding.py``) over the C++ engine.

Every function runs the engine's own routing code, the code the writer assigns rows with and the
reader probes shards with, so for a snapshot's centroids or hyperplanes
``route_vector_to_shards(...)`` lists exactly the shards ``ShardedVectorReader.route_vector`` does, and
``cluster_assign`` / ``lsh_assign`` give the shard the writer put the vector in.

Differences from the reference, each deliberate:

* ``metric`` is ``cosine`` or ``l2``; ``dot_product`` (which sqlite-vec cannot search) raises
  ``ConfigValidationError``, as everywhere in shardvec.
* ``lsh_generate_hyperplanes`` and ``train_centroids_kmeans`` are the writer's generators: the same
  definitions (standard-normal hyperplanes; k-means++ then Lloyd on squared L2, seed 42, 100
  iterations) with the engine's platform-independent random numbers, so their values differ from
  NumPy's ``default_rng``. Both return float32. A snapshot persists its centroids and hyperplanes,
  so readers of either tool route by the stored values.
* Inputs are checked: a wrong dimension, a non-finite value, ``num_dbs`` < 1, a negative
  ``num_probes``, a shard id outside ``[0, num_dbs)`` or ``num_dbs`` that disagrees with the
  centroids raise ``ConfigValidationError`` naming the argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from shardvec._arrays import float32_array
from shardvec._native import _engine
from shardvec.errors import ConfigValidationError
from shardvec.vector._bridge import engine_metric
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

__all__ = [
    "cluster_assign",
    "cluster_assign_batch",
    "cluster_probe_shards",
    "lsh_assign",
    "lsh_assign_batch",
    "lsh_generate_hyperplanes",
    "lsh_hash",
    "lsh_probe_shards",
    "route_vector_to_shards",
    "train_centroids_kmeans",
]


def _whole(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigValidationError(f"{name} must be an int, got {value!r}")
    if int(value) < minimum:
        raise ConfigValidationError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _matrix(value: Any, name: str) -> np.ndarray:
    matrix = float32_array(value, name)
    if matrix.ndim != 2:
        raise ConfigValidationError(f"{name} must be a 2-D array, got shape {matrix.shape}")
    return matrix


def _vector(value: Any, name: str) -> np.ndarray:
    vector = float32_array(value, name)
    if vector.ndim != 1:
        raise ConfigValidationError(f"{name} must be a 1-D array, got shape {vector.shape}")
    return vector


def _cluster_plan(centroids: Any, metric: Any, num_dbs: int | None = None) -> _engine.RoutingPlan:
    matrix = _matrix(centroids, "centroids")
    if num_dbs is not None and num_dbs != matrix.shape[0]:
        raise ConfigValidationError(f"num_dbs ({num_dbs}) does not match the {matrix.shape[0]} centroids")
    return _engine.RoutingPlan(strategy=_engine.Strategy.CLUSTER, metric=engine_metric(metric, "metric"),
                               dim=int(matrix.shape[1]), num_dbs=int(matrix.shape[0]), centroids=matrix)


def _lsh_plan(hyperplanes: Any, num_dbs: Any) -> _engine.RoutingPlan:
    matrix = _matrix(hyperplanes, "hyperplanes")
    return _engine.RoutingPlan(strategy=_engine.Strategy.LSH, dim=int(matrix.shape[1]),
                               num_dbs=_whole(num_dbs, "num_dbs", 1), num_hash_bits=int(matrix.shape[0]),
                               hyperplanes=matrix)


def _probe(plan: _engine.RoutingPlan, query: Any, num_probes: Any,
           routing_context: dict[str, Any] | None = None) -> list[int]:
    probes = _whole(num_probes, "num_probes", 0)
    return list(_engine.probe_shards(plan, _vector(query, "query"), probes, routing_context))


def _assign_rows(plan: _engine.RoutingPlan, vectors: Any) -> np.ndarray:
    return np.asarray(_engine.route_rows(plan, _matrix(vectors, "vectors")), dtype=np.int64)


# --- CLUSTER ---------------------------------------------------------------------------------------


def cluster_assign(vector: Any, centroids: Any, metric: DistanceMetric | str = DistanceMetric.COSINE) -> int:
    """The index of the centroid nearest to ``vector`` (ties to the lowest index): its shard."""
    return int(_assign_rows(_cluster_plan(centroids, metric), _vector(vector, "vector").reshape(1, -1))[0])


def cluster_assign_batch(vectors: Any, centroids: Any,
                         metric: DistanceMetric | str = DistanceMetric.COSINE) -> np.ndarray:
    """``cluster_assign`` of every row of ``vectors``, as an int64 array."""
    return _assign_rows(_cluster_plan(centroids, metric), vectors)


def cluster_probe_shards(query: Any, centroids: Any, num_probes: int,
                         metric: DistanceMetric | str = DistanceMetric.COSINE) -> list[int]:
    """The ``num_probes`` centroids nearest to ``query``, nearest first (a stable order, so the first
    is ``cluster_assign``'s)."""
    return _probe(_cluster_plan(centroids, metric), query, num_probes)


def train_centroids_kmeans(vectors: Any, num_clusters: int, max_iter: int = 100, seed: int = 42) -> np.ndarray:
    """``num_clusters`` centroids (float32, ``(num_clusters, dim)``) trained on the rows of ``vectors``
    by the writer's k-means; fewer rows than ``num_clusters`` raise ``ConfigValidationError``."""
    sample = _matrix(vectors, "vectors")
    k = _whole(num_clusters, "num_clusters", 1)
    if sample.shape[0] < k:
        raise ConfigValidationError(
            f"Need at least {k} vectors to train {k} centroids, got {sample.shape[0]}")
    return _engine.train_kmeans(sample, k, _whole(max_iter, "max_iter", 0), _whole(seed, "seed", 0))


# --- LSH -------------------------------------------------------------------------------------------


def lsh_generate_hyperplanes(num_hash_bits: int, dim: int, seed: int = 42) -> np.ndarray:
    """The ``(num_hash_bits, dim)`` float32 hyperplanes the writer generates (``num_hash_bits`` 1..64)."""
    return _engine.lsh_hyperplanes(_whole(num_hash_bits, "num_hash_bits", 1), _whole(dim, "dim", 1),
                                   _whole(seed, "seed", 0))


def lsh_hash(vector: Any, hyperplanes: Any) -> int:
    """The LSH code of ``vector``: bit i is set when ``hyperplanes[i] . vector > 0``."""
    return int(_engine.lsh_code(_vector(vector, "vector"), _matrix(hyperplanes, "hyperplanes")))


def lsh_assign(vector: Any, hyperplanes: Any, num_dbs: int) -> int:
    """``lsh_hash(vector) % num_dbs``: the vector's shard."""
    return int(_assign_rows(_lsh_plan(hyperplanes, num_dbs), _vector(vector, "vector").reshape(1, -1))[0])


def lsh_assign_batch(vectors: Any, hyperplanes: Any, num_dbs: int) -> np.ndarray:
    """``lsh_assign`` of every row of ``vectors``, as an int64 array."""
    return _assign_rows(_lsh_plan(hyperplanes, num_dbs), vectors)


def lsh_probe_shards(query: Any, hyperplanes: Any, num_dbs: int, num_probes: int) -> list[int]:
    """The query's shard, then the shards of its code with one bit flipped (bit 0 first), without
    repeats, at most ``num_probes`` of them."""
    return _probe(_lsh_plan(hyperplanes, num_dbs), query, num_probes)


# --- dispatch --------------------------------------------------------------------------------------


def route_vector_to_shards(
    query: Any,
    *,
    strategy: VectorShardingStrategy | str,
    num_dbs: int,
    num_probes: int,
    metric: DistanceMetric | str = DistanceMetric.COSINE,
    centroids: Any = None,
    hyperplanes: Any = None,
    shard_ids: Sequence[int] | None = None,
    routing_context: dict[str, Any] | None = None,
    cel_expr: str | None = None,
    cel_columns: dict[str, str] | None = None,
    routing_values: list[int | str | bytes] | None = None,
) -> list[int]:
    """The shards to search for ``query``, best first: ``shard_ids`` when given (each checked against
    ``num_dbs``), else the strategy's probe order (CEL: the one shard ``routing_context`` selects)."""
    dbs = _whole(num_dbs, "num_dbs", 1)
    if shard_ids is not None:
        ids = [_whole(s, "shard_ids entry", 0) for s in shard_ids]
        for s in ids:
            if s >= dbs:
                raise ConfigValidationError(f"shard_ids contains {s}, outside [0, {dbs})")
        return ids
    name = str(getattr(strategy, "value", strategy))
    if name == VectorShardingStrategy.CLUSTER.value:
        if centroids is None:
            raise ConfigValidationError("CLUSTER sharding requires centroids")
        return _probe(_cluster_plan(centroids, metric, dbs), query, num_probes)
    if name == VectorShardingStrategy.LSH.value:
        if hyperplanes is None:
            raise ConfigValidationError("LSH sharding requires hyperplanes")
        return _probe(_lsh_plan(hyperplanes, dbs), query, num_probes)
    if name == VectorShardingStrategy.EXPLICIT.value:
        raise ConfigValidationError("EXPLICIT sharding requires shard_ids to be provided at query time")
    if name == VectorShardingStrategy.CEL.value:
        if routing_context is None:
            raise ConfigValidationError("CEL sharding requires routing_context to be provided at query time")
        if cel_expr is None or cel_columns is None:
            raise ConfigValidationError("CEL sharding requires cel_expr and cel_columns")
        plan = _engine.RoutingPlan(strategy=_engine.Strategy.CEL, dim=1, num_dbs=dbs, cel_expr=cel_expr,
                                   cel_columns=dict(cel_columns), routing_values=routing_values)
        return list(_engine.probe_shards(plan, np.zeros(1, dtype=np.float32), 1, routing_context))
    raise ConfigValidationError(
        f"strategy must be one of {[s.value for s in VectorShardingStrategy]}, got {strategy!r}")
