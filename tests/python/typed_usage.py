"""A small typed use of shardvec._engine, checked by ``mypy --strict`` against the stubs shipped in the
wheel (test_typed_binding.py). Every name and type below comes from shardvec/_engine.pyi: a field
the stubs lack, or a type they give differently, fails the check. Never run, only type-checked."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from shardvec._native import _engine


def plan_for(store: str, sample: npt.NDArray[np.float32]) -> _engine.RoutingPlan:
    config = _engine.WriteConfig(store=store, batch_size=512)
    config.index.dim = int(sample.shape[1])
    config.index.metric = _engine.Metric.L2
    config.sharding.strategy = _engine.Strategy.CLUSTER
    config.sharding.num_dbs = 4
    config.sharding.train_centroids = True
    config.store_options.max_attempts = 3
    return _engine.plan_routing(config, sample)


def shards_of(plan: _engine.RoutingPlan, vectors: npt.NDArray[np.float32]) -> list[int]:
    probes: int = plan.num_probes
    dbs: int = plan.num_dbs
    routed = _engine.route_rows(plan, vectors)
    return [int(db) % dbs for db in routed] + [probes]


def describe(reader: _engine.Reader) -> str:
    info: _engine.SnapshotInfo = reader.info()
    details: list[_engine.ShardDetail] = reader.shard_details()
    sizes = sum(d.db_bytes for d in details)
    digests = [d.digest for d in details if d.digest is not None]
    health: _engine.ReaderHealth = reader.health(None)
    return f"{info.run_id} {info.created_at} {info.num_probes} {sizes} {len(digests)} {health.status}"


def open_reader(store: str) -> _engine.Reader:
    options = _engine.ReaderOptions(store=store)
    options.max_workers = 2
    options.store_options.region = "us-east-1"
    return _engine.Reader(options)


def shard_row(info: _engine.ShardInfo) -> tuple[int, str, int]:
    return info.db_id, info.digest, info.db_bytes
