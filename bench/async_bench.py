"""AsyncShardedVectorReader: N concurrent searches from one event loop against the same N searches
awaited one after another (and the synchronous reader's loop, as the baseline). Warm cache: every
shard is downloaded before timing, so this measures how well concurrent engine calls use the cores.

Run: .venv/bin/python bench/async_bench.py [--rows 200000] [--dim 128] [--shards 16] [--queries 256]
     [--concurrency 1,2,4,8,16] [--num-probes 2] [--repeat 3] [--store DIR]
Prints one table row per max_concurrency: QPS of the sequential awaits, of the concurrent gather,
and their ratio (best of --repeat runs each).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from shardvec.vector import AsyncShardedVectorReader, ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy


def build(store: str, rows: int, dim: int, shards: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((64, dim)).astype(np.float32) * 4
    data = (centers[rng.integers(0, 64, rows)] + rng.standard_normal((rows, dim))).astype(np.float32)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=shards, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=store, index_config=VectorIndexConfig(dim=dim, metric=DistanceMetric.L2))
    write_arrays(data, config)
    return data


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--concurrency", default="1,2,4,8,16")
    parser.add_argument("--num-probes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", help="a folder to build the snapshot in (default: a temp folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or str(Path(tmp) / "store")
        t0 = time.perf_counter()
        data = build(store, args.rows, args.dim, args.shards)
        print(f"built {args.rows} x {args.dim} in {args.shards} shards: {time.perf_counter() - t0:.1f} s; "
              f"{os.cpu_count()} CPUs; {args.queries} queries, top 10, num_probes={args.num_probes}")
        rng = np.random.default_rng(8)
        queries = data[rng.integers(0, len(data), args.queries)] + 0.1

        cache = str(Path(tmp) / "cache")
        with ShardedVectorReader(s3_prefix=store, local_root=cache, preload_shards=True) as sync:
            sync_s = best(lambda: [sync.search(q, top_k=10, num_probes=args.num_probes) for q in queries],
                          args.repeat)
        print(f"sync reader, one search after another: {args.queries / sync_s:,.0f} QPS")
        print()
        print("| max_concurrency | sequential awaits QPS | concurrent gather QPS | gather / sequential |")
        print("|---|---|---|---|")

        async def run(concurrency: int) -> tuple[float, float]:
            async with AsyncShardedVectorReader(s3_prefix=store, local_root=cache, preload_shards=True,
                                                max_concurrency=concurrency) as reader:
                async def sequential() -> None:
                    for q in queries:
                        await reader.search(q, top_k=10, num_probes=args.num_probes)

                async def concurrent() -> None:
                    await asyncio.gather(*(reader.search(q, top_k=10, num_probes=args.num_probes) for q in queries))

                results = []
                for body in (sequential, concurrent):
                    times = []
                    for _ in range(args.repeat):
                        t = time.perf_counter()
                        await body()
                        times.append(time.perf_counter() - t)
                    results.append(min(times))
                return results[0], results[1]

        for concurrency in (int(c) for c in args.concurrency.split(",")):
            seq_s, conc_s = asyncio.run(run(concurrency))
            print(f"| {concurrency} | {args.queries / seq_s:,.0f} | {args.queries / conc_s:,.0f} | "
                  f"{seq_s / conc_s:.2f}x |")


if __name__ == "__main__":
    main()
