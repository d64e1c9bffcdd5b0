"""Distributed writers on this machine: vectors/s of Spark, Dask and Ray against the Python bulk
writer on the same data, and the driver's peak RSS as the input grows.

Run: .venv/bin/python bench/distributed_bench.py [--rows 200000 1000000] [--engines spark dask ray python]

Each (engine, rows) case runs in a fresh child process. The data is generated on the workers (never
on the driver) from the row number, so every engine writes the same vectors: 128-d float32, LSH with
8 shards, into a local folder. Peak RSS is the driver process's own (ru_maxrss), not its workers'.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, os, resource, sys, time
import numpy as np, pyarrow as pa
from shardvec.config import VectorColumnInput
from shardvec.vector import VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

engine, rows, store = sys.argv[1], int(sys.argv[2]), sys.argv[3]
DIM, PARTS = 128, 8
config = VectorShardedWriteConfig(
    sharding=VectorShardingConfig(num_dbs=8, strategy=VectorShardingStrategy.LSH),
    s3_prefix=store, index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2))
column_input = VectorColumnInput(vector_col="embedding", id_col="id")

def block(start, stop):
    ids = np.arange(start, stop, dtype=np.int64)
    vectors = np.random.default_rng(start).standard_normal((stop - start, DIM), dtype=np.float32)
    return pa.table({"id": ids, "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), DIM)})

bounds = [(rows * p // PARTS, rows * (p + 1) // PARTS) for p in range(PARTS)]
if engine == "spark":
    from pyspark.sql import SparkSession
    from shardvec.writer.spark import write_sharded
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "8").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    schema = "id long, embedding array<float>"
    def gen(batches):
        for b in batches:
            for start in b.column("id").to_pylist():
                stop = min(start + rows // PARTS, rows)
                yield from block(start, stop).to_batches()
    data = spark.range(0, rows, rows // PARTS, numPartitions=PARTS).mapInArrow(gen, schema)
    run = lambda: write_sharded(data, config, column_input)
elif engine == "dask":
    import dask, dask.dataframe as dd, pandas as pd
    from dask.distributed import Client, LocalCluster
    from shardvec.writer.dask import write_sharded
    dask.config.set({"dataframe.convert-string": False})
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1")
    client = Client(cluster)
    data = dd.from_map(lambda b: block(*b).to_pandas(types_mapper=pd.ArrowDtype), bounds)
    run = lambda: write_sharded(data, config, column_input)
elif engine == "ray":
    import ray, ray.data
    from shardvec.writer.ray import write_sharded
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=1 << 30, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    data = ray.data.from_items([{"start": a, "stop": b} for a, b in bounds], override_num_blocks=PARTS).map_batches(
        lambda t: pa.concat_tables([block(a, b) for a, b in zip(t.column("start").to_pylist(), t.column("stop").to_pylist())]),
        batch_format="pyarrow", batch_size=1)
    run = lambda: write_sharded(data, config, column_input)
else:
    tables = [block(a, b) for a, b in bounds]
    vectors = np.concatenate([t.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, DIM) for t in tables])
    ids = np.arange(rows, dtype=np.int64)
    del tables
    run = lambda: write_arrays(vectors, config, ids=ids)
t0 = time.perf_counter()
result = run()
seconds = time.perf_counter() - t0
assert result.stats.rows_written == rows, result.stats
print(json.dumps({"seconds": seconds, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=["python", "spark", "dask", "ray"])
    args = parser.parse_args()
    mb = 1 << 20
    for engine in args.engines:
        for rows in args.rows:
            with tempfile.TemporaryDirectory(prefix="shardvec-dbench-") as tmp:
                out = subprocess.run([sys.executable, "-c", CHILD, engine, str(rows), str(Path(tmp) / "store")],
                                     capture_output=True, text=True, timeout=3600)
                if out.returncode != 0:
                    print(f"{engine:6s} {rows:>9}: failed\n{out.stderr[-2000:]}")
                    continue
                r = json.loads(out.stdout.splitlines()[-1])
                data_mb = rows * 128 * 4 / mb
                print(f"{engine:6s} {rows:>9} x 128 ({data_mb:.0f} MB): {rows / r['seconds']:>8.0f} vectors/s "
                      f"({r['seconds']:.1f} s), driver peak RSS {r['peak_rss'] / mb:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
