"""Python layer benchmarks: peak memory of a 1M x 128 bulk build, and the Python API against the CLI
doing the same work (bulk write; batch search). Run: .venv/bin/python bench/python_bench.py [--quick]

Each measurement runs in a fresh child process so peak RSS (ru_maxrss) belongs to that work alone.
Times are the best of --repeat runs; the CLI is timed as a whole process, the Python side from just
before its call (after imports) to just after, plus the interpreter start measured separately.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "build" / "shardvec"
PY = sys.executable


def child(code: str, *args: str) -> dict:
    out = subprocess.run([PY, "-c", code, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


MEMORY_CHILD = r"""
import json, resource, sys, time
import numpy as np
from shardvec.vector import VectorShardedWriteConfig, write_arrays, write_sharded, VectorRecord
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy
rows, dim, store, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
config = VectorShardedWriteConfig(
    sharding=VectorShardingConfig(num_dbs=16, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
    s3_prefix=store, index_config=VectorIndexConfig(dim=dim, metric=DistanceMetric.L2))
rng = np.random.default_rng(1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter()
if mode == "bulk":
    data = rng.standard_normal((rows, dim), dtype=np.float32)
    input_bytes = data.nbytes
    ids = np.arange(rows, dtype=np.int64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    write_arrays(data, config, ids=ids)
else:
    input_bytes = rows * dim * 4
    before = base
    write_sharded((VectorRecord(id=i, vector=rng.standard_normal(dim, dtype=np.float32)) for i in range(rows)), config)
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"input_bytes": input_bytes, "baseline_rss": base, "rss_with_input": before, "peak_rss": peak,
                  "seconds": seconds}))
"""

WRITE_CHILD = r"""
import json, sys, time
import numpy as np
from shardvec.vector import VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy
npy, store, num_dbs = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
data = np.load(npy, mmap_mode="r")
config = VectorShardedWriteConfig(
    sharding=VectorShardingConfig(num_dbs=num_dbs, strategy=VectorShardingStrategy.LSH),
    s3_prefix=store, index_config=VectorIndexConfig(dim=data.shape[1], metric=DistanceMetric.L2))
write_arrays(np.asarray(data), config)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

SEARCH_CHILD = r"""
import json, sys, time
import numpy as np
from shardvec.vector import ShardedVectorReader
store, queries, cache, probes = sys.argv[1], np.load(sys.argv[2]), sys.argv[3], int(sys.argv[4])
t0 = time.perf_counter()
with ShardedVectorReader(s3_prefix=store, local_root=cache) as reader:
    responses = reader.batch_search(queries, top_k=10, num_probes=probes)
    hits = [[h.id for h in r.results] for r in responses]
print(json.dumps({"seconds": time.perf_counter() - t0, "queries": len(hits)}))
"""

CEL_CHILD = r"""
import json, sys, time
import numpy as np
from shardvec.vector import VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy
npy, store, mode = sys.argv[1], sys.argv[2], sys.argv[3]
data = np.load(npy)
regions = [f"region-{i}" for i in range(8)]
contexts = None
if mode == "lsh":
    sharding = VectorShardingConfig(num_dbs=8, strategy=VectorShardingStrategy.LSH)
elif mode == "categorical":
    sharding = VectorShardingConfig(strategy=VectorShardingStrategy.CEL, cel_expr="region",
                                    cel_columns={"region": "string"}, routing_values=regions)
    contexts = [{"region": regions[i % 8]} for i in range(len(data))]
else:
    sharding = VectorShardingConfig(strategy=VectorShardingStrategy.CEL, num_dbs=8,
                                    cel_expr="int(shard_hash(tenant) % 8u)", cel_columns={"tenant": "string"})
    contexts = [{"tenant": f"tenant-{i % 5000}"} for i in range(len(data))]
config = VectorShardedWriteConfig(sharding=sharding, s3_prefix=store,
                                  index_config=VectorIndexConfig(dim=data.shape[1], metric=DistanceMetric.L2))
t0 = time.perf_counter()
write_arrays(data, config, routing_contexts=contexts)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

EMPTY_CHILD = "import json, shardvec.vector; print(json.dumps({}))"


def timed_process(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def bench_memory(tmp: Path, rows: int, dim: int) -> None:
    for mode in ("bulk", "stream"):
        r = child(MEMORY_CHILD, str(rows), str(dim), str(tmp / f"mem-{mode}"), mode)
        mb = 1 << 20
        print(f"memory  {mode:6s} {rows}x{dim} CLUSTER/16 trained: input {r['input_bytes'] / mb:.0f} MB, "
              f"process peak RSS {r['peak_rss'] / mb:.0f} MB "
              f"({r['peak_rss'] / r['input_bytes']:.2f}x input; interpreter+numpy baseline "
              f"{r['baseline_rss'] / mb:.0f} MB), {r['seconds']:.1f} s")


def bench_write(tmp: Path, rows: int, dim: int, repeat: int) -> None:
    import numpy as np

    npy = tmp / "write.npy"
    np.save(npy, np.random.default_rng(2).standard_normal((rows, dim), dtype=np.float32))
    runs = iter(range(1000))

    def cli() -> float:
        return timed_process([str(CLI), "build", "--quiet", "--store", str(tmp / f"w-cli-{next(runs)}"),
                              "--input", str(npy), "--metric", "l2", "--strategy", "lsh", "--num-dbs", "8"])

    def py() -> float:
        return child(WRITE_CHILD, str(npy), str(tmp / f"w-py-{next(runs)}"), "8")["seconds"]

    interpreter = best(lambda: timed_process([PY, "-c", EMPTY_CHILD]), repeat)
    c, p = best(cli, repeat), best(py, repeat)
    print(f"write   {rows}x{dim} LSH/8: CLI process {c:.2f} s, Python np.load+write_arrays {p:.2f} s "
          f"({(p / c - 1) * 100:+.1f}%), + {interpreter:.2f} s interpreter and import start")


def bench_cel(tmp: Path, rows: int, dim: int, repeat: int) -> None:
    """write_arrays with one routing_context dict per row (categorical and hashed CEL) against LSH."""
    import numpy as np

    npy = tmp / "cel.npy"
    np.save(npy, np.random.default_rng(3).standard_normal((rows, dim), dtype=np.float32))
    runs = iter(range(1000))
    times = {mode: best(lambda m=mode: child(CEL_CHILD, str(npy), str(tmp / f"cel-{next(runs)}"), m)["seconds"], repeat)
             for mode in ("lsh", "categorical", "hashed")}
    base = times["lsh"]
    print(f"cel     {rows}x{dim} write_arrays, 8 shards: LSH {base:.2f} s, CEL 'region' (8 tokens) "
          f"{times['categorical']:.2f} s ({(times['categorical'] / base - 1) * 100:+.1f}%), CEL "
          f"'int(shard_hash(tenant) % 8u)' {times['hashed']:.2f} s ({(times['hashed'] / base - 1) * 100:+.1f}%)")


def bench_search(tmp: Path, rows: int, dim: int, queries: int, repeat: int) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    centers = rng.standard_normal((64, dim), dtype=np.float32) * 3
    data = centers[rng.integers(0, 64, rows)] + rng.standard_normal((rows, dim), dtype=np.float32)
    np.save(tmp / "s.npy", data)
    np.save(tmp / "q.npy", (centers[rng.integers(0, 64, queries)] + rng.standard_normal((queries, dim))).astype(np.float32))
    store = tmp / "search-store"
    subprocess.run([str(CLI), "build", "--quiet", "--store", str(store), "--input", str(tmp / "s.npy"), "--metric", "l2",
                    "--strategy", "cluster", "--train-centroids", "--num-dbs", "16"], check=True,
                   stdout=subprocess.DEVNULL)
    cache = tmp / "cache"
    for probes in (1, 4):
        def cli() -> float:
            return timed_process([str(CLI), "search", "--store", str(store), "--query-file", str(tmp / "q.npy"),
                                  "--top-k", "10", "--num-probes", str(probes), "--json", "--cache-dir", str(cache)])

        def py() -> float:
            return child(SEARCH_CHILD, str(store), str(tmp / "q.npy"), str(cache), str(probes))["seconds"]

        cli(), py()  # warm the shard cache once
        c, p = best(cli, repeat), best(py, repeat)
        print(f"search  {queries} queries on {rows}x{dim} CLUSTER/16, probes {probes}: CLI process {c:.2f} s "
              f"({queries / c:.0f} q/s), Python open+batch_search {p:.2f} s ({queries / p:.0f} q/s, "
              f"{(p / c - 1) * 100:+.1f}%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", choices=["memory", "write", "search", "cel"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    with tempfile.TemporaryDirectory(prefix="shardvec-pybench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.only in (None, "memory"):
            bench_memory(tmp, 1_000_000 // scale, 128)
        if args.only in (None, "write"):
            bench_write(tmp, 300_000 // scale, 128, args.repeat)
        if args.only in (None, "cel"):
            bench_cel(tmp, 300_000 // scale, 128, args.repeat)
        if args.only in (None, "search"):
            bench_search(tmp, 100_000 // scale, 128, 2000 // scale, args.repeat)


if __name__ == "__main__":
    main()
