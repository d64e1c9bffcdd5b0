"""Distributed writers on this machine: vectors/s of Spark, Dask and Ray against the Python bulk
writer on the same data, and the driver's peak RSS as the input grows.

Run: .venv/bin/python bench/distributed_bench.py [--rows 200000 1000000] [--engines spark dask ray python]

Each (engine, rows) case runs in a fresh child process that reads the same 8 Parquet files (written
beforehand, 128-d float32 vectors as fixed-size lists), so the engines read the data on their workers
and the driver never holds it; the Python bulk writer loads it into NumPy. LSH with 8 shards into a
local folder. Peak RSS is the driver process's own (VmHWM), not its workers'.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_setup  # noqa: E402

CHILD = r"""
import json, os, sys, time
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
from shardvec.config import VectorColumnInput
from shardvec.vector import VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 128


def main():
    engine, rows, data_dir, store = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=8, strategy=VectorShardingStrategy.LSH),
        s3_prefix=store, index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2))
    column_input = VectorColumnInput(vector_col="embedding", id_col="id")
    if engine == "spark":
        import engine_setup
        from shardvec.writer.spark import write_sharded
        spark = engine_setup.start(engine)
        run = lambda: write_sharded(spark.read.parquet(data_dir), config, column_input)
    elif engine == "dask":
        import dask.dataframe as dd
        import engine_setup
        from shardvec.writer.dask import write_sharded
        client = engine_setup.start(engine)
        run = lambda: write_sharded(dd.read_parquet(data_dir, dtype_backend="pyarrow"), config, column_input)
    elif engine == "ray":
        import engine_setup
        import ray.data
        from shardvec.writer.ray import write_sharded
        engine_setup.start(engine)
        run = lambda: write_sharded(ray.data.read_parquet(data_dir), config, column_input)
    else:
        table = pq.read_table(data_dir)
        vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, DIM)
        ids = table.column("id").to_numpy()
        del table
        run = lambda: write_arrays(vectors, config, ids=ids)
    t0 = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - t0
    assert result.stats.rows_written == rows, result.stats
    # VmHWM, not ru_maxrss: ru_maxrss survives execve, so it would include the parent's peak.
    with open("/proc/self/status") as status:
        peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "peak_rss": peak_kb * 1024}))


if __name__ == "__main__":
    main()
"""


def write_parquet(folder: Path, rows: int, parts: int = 8, dim: int = 128) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    for p in range(parts):
        start, stop = rows * p // parts, rows * (p + 1) // parts
        vectors = np.random.default_rng(start).standard_normal((stop - start, dim), dtype=np.float32)
        pq.write_table(pa.table({"id": np.arange(start, stop, dtype=np.int64),
                                 "embedding": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim)}),
                       folder / f"part-{p:02d}.parquet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", default=["python", "spark", "dask", "ray"])
    args = parser.parse_args()
    mb = 1 << 20
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="shardvec-dbench-") as tmp:
            data_dir = Path(tmp) / "data"
            write_parquet(data_dir, rows)
            # A file with a __main__ guard: Dask and Ray workers re-import the driver's main module.
            child = Path(tmp) / "child.py"
            child.write_text(CHILD)
            for engine in args.engines:
                store = Path(tmp) / f"store-{engine}"
                out = subprocess.run([sys.executable, str(child), engine, str(rows), str(data_dir), str(store)],
                                     capture_output=True, text=True, timeout=3600, env=engine_setup.child_env())
                if out.returncode != 0:
                    print(f"{engine:6s} {rows:>9}: failed\n{out.stderr[-2000:]}")
                    continue
                r = json.loads(out.stdout.splitlines()[-1])
                data_mb = rows * 128 * 4 / mb
                print(f"{engine:6s} {rows:>9} x 128 ({data_mb:.0f} MB): {rows / r['seconds']:>8.0f} vectors/s "
                      f"({r['seconds']:.1f} s), driver peak RSS {r['peak_rss'] / mb:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
