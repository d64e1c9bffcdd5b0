"""A program written against shardyfusion's API for the async reader and rate limits runs on shardvec
with only the import prefix changed: the program text below names ``shardyfusion``; the test
replaces the prefix and runs it in a second process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROGRAM = r'''
import asyncio, json, sys
import numpy as np
from shardyfusion import ThreadSafeTokenBucket, TokenBucket, VectorSpec
from shardyfusion.config import VectorWriteRateLimitConfig
from shardyfusion.sqlite_vec_adapter import SqliteVecFactory
from shardyfusion.vector import AsyncShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_sharded
from shardyfusion.vector.config import VectorIndexConfig, VectorShardingConfig
from shardyfusion.vector.types import DistanceMetric, VectorShardingStrategy

prefix, cache = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(5)
data = rng.standard_normal((200, 16)).astype(np.float32)
config = VectorShardedWriteConfig(
    sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
    s3_prefix=prefix,
    index_config=VectorIndexConfig(dim=16, metric=DistanceMetric.COSINE),
    adapter_factory=SqliteVecFactory(vector_spec=VectorSpec(dim=16, metric="cosine")),
    rate_limits=VectorWriteRateLimitConfig(max_writes_per_second=1000.0),
    batch_size=50,
)
result = write_sharded((VectorRecord(id=i, vector=v, payload={"i": i}) for i, v in enumerate(data)), config)

limiter = ThreadSafeTokenBucket(1000.0)
first = TokenBucket(5.0).try_acquire()


async def main():
    reader = await AsyncShardedVectorReader.open(s3_prefix=prefix, local_root=cache, max_concurrency=4,
                                                 rate_limiter=limiter)
    try:
        found = await asyncio.gather(*(reader.search(data[i], top_k=3, num_probes=4) for i in range(10)))
        batch = await reader.batch_search(data[:5], top_k=1, num_probes=4)
        info = reader.snapshot_info()
        health = reader.health()
        refreshed = await reader.refresh()
    finally:
        await reader.close()
    print(json.dumps({
        "rows": result.stats.rows_written,
        "top_ids": [r.results[0].id for r in found],
        "payloads": [r.results[0].payload for r in found[:2]],
        "batch_ids": [r.results[0].id for r in batch],
        "total_vectors": info.total_vectors,
        "health": health.status,
        "refreshed": refreshed,
        "closed": reader.health().is_closed,
        "first_acquired": bool(first),
    }))

asyncio.run(main())
'''


def test_a_shardyfusion_async_program_runs_with_the_prefix_changed(tmp_path: Path) -> None:
    program = PROGRAM.replace("shardyfusion", "shardvec")
    assert "shardyfusion" not in program
    out = subprocess.run([sys.executable, "-c", program, str(tmp_path / "store"), str(tmp_path / "cache")],
                         capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.splitlines()[-1])
    assert got == {
        "rows": 200, "top_ids": list(range(10)), "payloads": [{"i": 0}, {"i": 1}], "batch_ids": list(range(5)),
        "total_vectors": 200, "health": "healthy", "refreshed": False, "closed": True, "first_acquired": True,
    }
