"""A program written against shardyfusion's reader surface, with only the import prefix changed to
``shardvec``: it builds a CLUSTER snapshot from records, opens a reader with a metrics collector,
routes with ``vector.sharding``, inspects shards with ``shard_for_id``, searches one shard file with
``SqliteVecShardReader`` and prints a JSON report (run by tests/python/test_reader_surface.py).

Usage: sf_reader_surface_program.py PREFIX WORK_DIR [S3_CONNECTION_OPTIONS_JSON CREDENTIALS_JSON]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from shardvec.metrics import MetricEvent, MetricsCollector
from shardvec.sqlite_vec_adapter import SqliteVecFactory, SqliteVecReaderFactory, SqliteVecShardReader
from shardvec import VectorSpec
from shardvec.config import WriterOutputConfig
from shardvec.vector import (
    ShardedVectorReader,
    VectorRecord,
    VectorShardDetail,
    VectorShardedWriteConfig,
    VectorShardReader,
    write_sharded,
)
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.sharding import cluster_probe_shards, route_vector_to_shards, train_centroids_kmeans
from shardvec.vector.types import DistanceMetric, SearchResult, VectorShardingStrategy


class EventLog(MetricsCollector):
    def __init__(self) -> None:
        self.events: list[str] = []

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        if event in (MetricEvent.VECTOR_SEARCH, MetricEvent.VECTOR_SHARD_SEARCH, MetricEvent.VECTOR_READER_CLOSED,
                     MetricEvent.VECTOR_READER_INITIALIZED):
            self.events.append(MetricEvent(event).value)


def search_one_shard(shard: VectorShardReader, query: np.ndarray) -> list[SearchResult]:
    return shard.search(query, 5)


def main() -> None:
    prefix, work = sys.argv[1], Path(sys.argv[2])
    storage: dict[str, Any] = {}
    if len(sys.argv) > 3:
        creds = json.loads(sys.argv[4])
        storage = {"s3_connection_options": json.loads(sys.argv[3]), "credential_provider": lambda: creds}
    rng = np.random.default_rng(3)
    vectors = (rng.standard_normal((200, 16)) + np.repeat(np.eye(16)[:5] * 8, 40, axis=0)).astype(np.float32)
    # Six centroids for five clusters: one shard may stay empty, which shard_for_id reports.
    centroids = np.vstack([train_centroids_kmeans(vectors, 5), np.full((1, 16), 100.0, dtype=np.float32)])
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.CLUSTER, centroids=centroids, num_probes=2),
        s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=16, metric=DistanceMetric.L2),
        adapter_factory=SqliteVecFactory(vector_spec=VectorSpec(dim=16, metric="l2")),
        output=WriterOutputConfig(local_root=str(work / "build")),
        **storage,
    )
    write_sharded((VectorRecord(id=i, vector=v, payload={"i": i}) for i, v in enumerate(vectors)), config)

    log = EventLog()
    report: dict[str, Any] = {}
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(work / "cache"), metrics_collector=log,
                             reader_factory=SqliteVecReaderFactory(), **storage) as reader:
        info = reader.snapshot_info()
        routed_ok = True
        for row in range(0, 200, 7):
            mine = route_vector_to_shards(vectors[row], strategy=info.sharding, num_dbs=info.num_dbs, num_probes=3,
                                          metric=info.metric, centroids=centroids)
            routed_ok &= mine == reader.route_vector(vectors[row], num_probes=3)
            routed_ok &= cluster_probe_shards(vectors[row], centroids, 1, info.metric)[0] == mine[0]
        report["routed_equals_reader"] = routed_ok
        report["own_nearest"] = [reader.search(vectors[row], top_k=1).results[0].id for row in range(0, 200, 20)]
        empty: VectorShardDetail = reader.shard_for_id(5)
        report["empty_shard"] = [empty.db_url, empty.vector_count]
        detail = reader.shard_for_id(route_vector_to_shards(
            vectors[0], strategy=info.sharding, num_dbs=info.num_dbs, num_probes=1, metric=info.metric,
            centroids=centroids)[0])
        with SqliteVecShardReader(db_url=detail.db_url, local_dir=work / "one-shard",
                                  checkpoint_id=detail.checkpoint_id, **storage) as shard:
            alone = search_one_shard(shard, vectors[0])
        routed = reader.search(vectors[0], top_k=5, shard_ids=[detail.db_id]).results
        report["shard_alone_equals_reader"] = [(r.id, r.score, r.payload) for r in alone] == [
            (r.id, r.score, r.payload) for r in routed]
    report["events"] = sorted(set(log.events))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
