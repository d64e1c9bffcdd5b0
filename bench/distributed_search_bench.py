"""Distributed batch search on this machine: queries/s of Spark, Dask and Ray ``search_sharded`` against
the single-process ``batch_search`` on the same snapshot and queries, and whether their answers agree.

Run: .venv/bin/python bench/distributed_search_bench.py [--rows 1000000] [--queries 100000] [--shards 64]
     [--engines python spark dask ray] [--work-dir /dev/shm]

The synthetic clustered cosine set (bench/synthetic_data.py: bench/suite.py's) is written as
a snapshot (CLUSTER, trained centroids, sub-lists by default) and the queries as 8 Parquet files. Each
engine runs in a fresh child process: it reads the queries on its workers, searches (top 10, the
snapshot's default probing) and writes the hits to Parquet, so neither the driver nor the baseline
holds the results in Python objects; ``python`` loads the queries into NumPy, runs ``batch_search``
once over all of them and writes the same Parquet columns. Every engine's hits are then compared with
the baseline's (ids and scores, rank by rank). Times cover the search and the writing of the hits,
not the start of the cluster; readers start cold (an empty shard cache) in each child.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_setup  # noqa: E402
import synthetic_data  # noqa: E402

CHILD = r"""
import json, os, sys, time
import numpy as np, pyarrow as pa, pyarrow.parquet as pq

TOP_K = 10


def main():
    engine, store, queries_dir, out_dir, cache = sys.argv[1:6]
    if engine == "spark":
        import engine_setup
        from shardvec.reader.spark import search_sharded
        spark = engine_setup.start(engine)
        run = lambda: search_sharded(spark.read.parquet(queries_dir), store, "embedding", "qid", TOP_K,
                                     local_root=cache).write.parquet(out_dir)
    elif engine == "dask":
        import dask.dataframe as dd
        import engine_setup
        from shardvec.reader.dask import search_sharded
        client = engine_setup.start(engine)
        run = lambda: search_sharded(dd.read_parquet(queries_dir, dtype_backend="pyarrow"), store, "embedding", "qid",
                                     TOP_K, local_root=cache).to_parquet(out_dir)
    elif engine == "ray":
        import engine_setup
        import ray.data
        from shardvec.reader.ray import search_sharded
        engine_setup.start(engine)
        run = lambda: search_sharded(ray.data.read_parquet(queries_dir), store, "embedding", "qid", TOP_K,
                                     local_root=cache).write_parquet(out_dir)
    else:
        from shardvec.vector import ShardedVectorReader

        def run():
            table = pq.read_table(queries_dir)
            dim = table.schema.field("embedding").type.list_size
            queries = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dim)
            with ShardedVectorReader(s3_prefix=store, local_root=cache) as reader:
                responses = reader.batch_search(queries, TOP_K)
            qids = table.column("qid").to_numpy()
            take, ranks, ids, scores, payloads = [], [], [], [], []
            for row, response in enumerate(responses):
                for rank, hit in enumerate(response.results):
                    take.append(row); ranks.append(rank); ids.append(hit.id); scores.append(hit.score)
                    payloads.append(None if hit.payload is None else json.dumps(hit.payload))
            os.makedirs(out_dir)
            pq.write_table(pa.table({"query_id": qids[take], "rank": ranks, "id": ids, "score": scores,
                                     "payload": pa.array(payloads, pa.string())}), os.path.join(out_dir, "part-0.parquet"))
    t0 = time.perf_counter()
    run()
    print(json.dumps({"seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
"""


def build(store: Path, rows: int, shards: int) -> float:
    import numpy as np

    from shardvec.vector import VectorShardedWriteConfig, write_arrays
    from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
    from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

    vectors = synthetic_data.draw(rows, synthetic_data.CORPUS)
    config = VectorShardedWriteConfig(
        index_config=VectorIndexConfig(dim=synthetic_data.SYNTH_DIM, metric=DistanceMetric.COSINE), s3_prefix=str(store),
        sharding=VectorShardingConfig(num_dbs=shards, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True))
    t0 = time.perf_counter()
    write_arrays(vectors, config, ids=np.arange(rows, dtype=np.int64))
    return time.perf_counter() - t0


def write_queries(folder: Path, count: int, parts: int = 8) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    queries = synthetic_data.draw(count, synthetic_data.QUERIES)
    dim = synthetic_data.SYNTH_DIM
    folder.mkdir(parents=True)
    for p in range(parts):
        start, stop = count * p // parts, count * (p + 1) // parts
        pq.write_table(pa.table({"qid": np.arange(start, stop, dtype=np.int64),
                                 "embedding": pa.FixedSizeListArray.from_arrays(pa.array(queries[start:stop].reshape(-1)),
                                                                                dim)}),
                       folder / f"part-{p:02d}.parquet")


def hits(folder: Path) -> "pd.DataFrame":  # noqa: F821
    import pyarrow.parquet as pq

    return (pq.read_table(folder, columns=["query_id", "rank", "id", "score"]).to_pandas()
            .sort_values(["query_id", "rank"]).reset_index(drop=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--engines", nargs="+", default=["python", "spark", "dask", "ray"])
    parser.add_argument("--work-dir", type=Path, default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shardvec-dsearch-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        store = work / "store"
        seconds = build(store, args.rows, args.shards)
        print(f"snapshot: {args.rows} x {synthetic_data.SYNTH_DIM} cosine, {args.shards} shards, built in {seconds:.1f} s", flush=True)
        write_queries(work / "queries", args.queries)
        # A file with a __main__ guard: Dask and Ray workers re-import the driver's main module.
        child = work / "child.py"
        child.write_text(CHILD)
        baseline = None
        results = {}
        for engine in args.engines:
            out_dir = work / f"hits-{engine}"
            done = subprocess.run([sys.executable, str(child), engine, str(store), str(work / "queries"), str(out_dir),
                                   str(work / f"cache-{engine}")], capture_output=True, text=True, timeout=3600,
                                  env=engine_setup.child_env())
            if done.returncode != 0:
                print(f"{engine:6s}: failed\n{done.stderr[-3000:]}", flush=True)
                continue
            took = json.loads(done.stdout.splitlines()[-1])["seconds"]
            found = hits(out_dir)
            same = ""
            if engine == "python":
                baseline = (found, took)
            elif baseline is not None:
                equal = found.equals(baseline[0])
                same = f", {'equal to' if equal else 'DIFFERENT from'} batch_search; {baseline[1] / took:.2f}x its throughput"
            results[engine] = took
            print(f"{engine:6s}: {args.queries / took:>8.0f} queries/s ({took:.1f} s, {len(found)} hits){same}", flush=True)


if __name__ == "__main__":
    main()
