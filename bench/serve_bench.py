"""`shardvec serve` under load: QPS and p50/p99 latency of single-query searches at concurrency 1, 8
and 64, driven by `wrk` (Debian) against 127.0.0.1, beside the Python reader searching the same
queries in-process with the same number of threads. Bounded in time (--seconds per point).

Run: .venv/bin/python bench/serve_bench.py [--dataset fashion|synthetic] [--store DIR] [--seconds 10]
     [--num-probes 2] [--top-k 10] [--concurrency 1,8,64] [--rounds 3] [--rows 1000000] [--shards 64]
fashion (default): a store that does not exist yet is built from Fashion-MNIST train (as
scripts/quickstart does; default ./demo/fashion-mnist), and the queries are the first 1000 test images.
synthetic: a store that does not exist yet is built from the first --rows points of the synthetic
clustered cosine set (bench/synthetic_data.py, bench/suite.py's 1M x 384 set) with --shards shards
(default ./demo/synthetic-<rows>), and the queries are 1000 of its query points. Overhead = (server mean latency - reader mean latency) /
reader mean latency, from the same run; the server's latency is the whole HTTP round trip.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic_data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "build" / "shardvec"
FASHION = Path("/usr/share/datasets/fashion-mnist")

HEALTH_LUA = r"""
local request_text
init = function(args)
  request_text = wrk.format("GET", "/v1/health")
end
request = function()
  return request_text
end
"""

LUA = r"""
-- Each thread formats every request once, so that wrk spends as little of the shared CPUs as it can.
local requests = {}
init = function(args)
  for line in io.lines("%s") do
    requests[#requests + 1] = wrk.format("POST", "/v1/search", {["Content-Type"] = "application/json"}, line)
  end
end
local n = 0
request = function()
  n = n %% #requests + 1
  return requests[n]
end
"""


def queries(dataset: str, count: int) -> np.ndarray:
    if dataset == "synthetic":
        return synthetic_data.draw(count, synthetic_data.QUERIES)
    raw = gzip.open(FASHION / "t10k-images-idx3-ubyte.gz").read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784)[:count].astype(np.float32)


def ensure_store(store: Path, dataset: str, rows: int, shards: int) -> None:
    if (store / "_CURRENT").exists():
        return
    if dataset == "synthetic":
        from shardvec.vector import VectorShardedWriteConfig, write_arrays
        from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
        from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

        config = VectorShardedWriteConfig(
            index_config=VectorIndexConfig(dim=synthetic_data.SYNTH_DIM, metric=DistanceMetric.COSINE),
            s3_prefix=str(store),
            sharding=VectorShardingConfig(num_dbs=shards, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True))
        write_arrays(synthetic_data.draw(rows, synthetic_data.CORPUS), config, ids=np.arange(rows, dtype=np.int64))
        return
    subprocess.run([str(CLI), "build", "--store", str(store), "--input", str(FASHION / "train-images-idx3-ubyte.gz"),
                    "--metric", "l2", "--strategy", "cluster", "--num-dbs", "16", "--train-centroids", "--quiet"],
                   check=True)


# The server point's numbers reported as medians over the rounds (failures are summed instead).
MEDIAN_SERVER_KEYS = ("qps", "p50", "p99", "cpu_us", "wrk_cpu_us")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wrk_point(url: str, lua: Path, connections: int, seconds: int, server_pid: int) -> dict[str, float]:
    threads = min(connections, 2)
    server0, wrk0 = cpu_seconds(server_pid), children_cpu()
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
                          "-s", str(lua), url], capture_output=True, text=True, check=True).stdout
    server_cpu, wrk_cpu = cpu_seconds(server_pid) - server0, children_cpu() - wrk0

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]

    qps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    return {"qps": qps, "p50": ms("50"), "p99": ms("99"), "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": errors.group(0) if errors else "", "cpu_us": server_cpu / requests * 1e6,
            "wrk_cpu_us": wrk_cpu / requests * 1e6}


def reader_point(store: Path, q: np.ndarray, threads: int, seconds: int, top_k: int, num_probes: int,
                 cache: Path) -> dict[str, float]:
    from shardvec.vector import ShardedVectorReader

    reader = ShardedVectorReader(s3_prefix=str(store), local_root=tempfile.mkdtemp(prefix="reader-cache-", dir=cache))
    for row in q[:50]:  # warm: shards opened and mapped, as the server preloads them
        reader.search(row, top_k, num_probes=num_probes)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    stop = time.perf_counter() + seconds

    def work(t: int) -> None:
        i = t
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            reader.search(q[i % len(q)], top_k, num_probes=num_probes)
            latencies[t].append((time.perf_counter() - t0) * 1e3)
            i += threads

    start, cpu0 = time.perf_counter(), time.process_time()
    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for p in pool:
        p.start()
    for p in pool:
        p.join()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    reader.close()
    flat = np.array([x for lat in latencies for x in lat])
    return {"qps": len(flat) / wall, "p50": float(np.percentile(flat, 50)), "p99": float(np.percentile(flat, 99)),
            "mean": float(flat.mean()), "cpu_us": cpu / len(flat) * 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=("fashion", "synthetic"), default="fashion")
    ap.add_argument("--store", help="default ./demo/fashion-mnist or ./demo/synthetic-<rows>")
    ap.add_argument("--rows", type=int, help="synthetic: corpus rows (default 1000000)")
    ap.add_argument("--shards", type=int, help="synthetic: shards of a new store (default 64)")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--num-probes", type=int, default=2)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--rounds", type=int, default=3, help="server/reader pairs per concurrency (medians reported)")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk; scripts/setup installs it)")
    if args.rounds < 1:
        ap.error(f"--rounds must be >= 1, got {args.rounds}")
    if args.dataset == "fashion" and (args.rows is not None or args.shards is not None):
        ap.error("--rows and --shards are for --dataset synthetic")
    args.rows = 1_000_000 if args.rows is None else args.rows
    args.shards = 64 if args.shards is None else args.shards
    if args.dataset == "fashion" and not FASHION.is_dir():
        sys.exit(f"{FASHION} is missing (apt-get install dataset-fashion-mnist; scripts/setup installs it)")
    default = "fashion-mnist" if args.dataset == "fashion" else f"synthetic-{args.rows}"
    store = Path(args.store) if args.store else ROOT / "demo" / default
    ensure_store(store, args.dataset, args.rows, args.shards)
    levels = [int(c) for c in args.concurrency.split(",")]
    q = queries(args.dataset, 1000)
    work = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    bodies = work / "bodies.jsonl"
    bodies.write_text("".join(json.dumps({"vector": row.tolist(), "top_k": args.top_k, "num_probes": args.num_probes})
                              + "\n" for row in q))
    lua = work / "search.lua"
    lua.write_text(LUA % bodies)
    health_lua = work / "health.lua"
    health_lua.write_text(HEALTH_LUA)
    server = subprocess.Popen([str(CLI), "serve", "--store", str(store), "--port", "0", "--refresh-interval", "0",
                               "--max-concurrency", str(max(levels) + 8)], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        url = re.search(r"(http://127\.0\.0\.1:\d+)", line).group(1)
        subprocess.run(["curl", "-sS", "-f", "--retry", "60", "--retry-delay", "1", "--retry-connrefused", "-o",
                        "/dev/null", f"{url}/v1/ready"], check=True)
        subprocess.run(["wrk", "-t", "1", "-c", "1", "-d", "2s", "-s", str(lua), url], capture_output=True, check=True)
        rows = []
        for c in levels:
            # Server and reader points alternate, --rounds of each, and each column is the median over
            # the rounds: this VM's speed drifts within a run, and a pair taken apart would show it.
            points = []
            for _ in range(args.rounds):
                points.append((wrk_point(url, lua, c, args.seconds, server.pid),
                               reader_point(store, q, c, args.seconds, args.top_k, args.num_probes, work)))
            # An exchange that searches nothing (GET /v1/health) at the same concurrency: what HTTP alone costs.
            empty = wrk_point(url, health_lua, c, min(args.seconds, 3), server.pid)
            servers, readers = [p[0] for p in points], [p[1] for p in points]
            s: dict[str, Any] = {k: float(np.median([x[k] for x in servers])) for k in MEDIAN_SERVER_KEYS}
            s["non2xx"] = sum(x["non2xx"] for x in servers)
            s["socket_errors"] = " ".join(x["socket_errors"] for x in servers if x["socket_errors"])
            r = {k: float(np.median([x[k] for x in readers])) for k in readers[0]}
            # Closed loop: mean latency = concurrency / QPS for the server (wrk keeps c requests out).
            server_mean = c / s["qps"] * 1e3
            # The least overhead an HTTP service can have here once the CPUs are saturated: the server's CPU
            # for an empty exchange plus wrk's for these requests, over the reader's CPU per search.
            floor = (empty["cpu_us"] + s["wrk_cpu_us"]) / r["cpu_us"]
            rows.append((c, s, r, (server_mean - r["mean"]) / r["mean"], empty, floor))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    print(f"store {store}, {len(q)} queries round robin, top_k {args.top_k}, num_probes {args.num_probes}, "
          f"{args.seconds} s per point, medians of {args.rounds} alternating server/reader rounds\n")
    print(f"{'conc':>4} {'serve_QPS':>10} {'p50_ms':>7} {'p99_ms':>7} {'non2xx':>6} | {'reader_QPS':>10} {'p50_ms':>7} "
          f"{'p99_ms':>7} | {'overhead':>8} | {'serve_cpu':>9} {'reader_cpu':>10} {'cpu_overhead':>12} {'wrk_cpu':>7} | "
          f"{'empty_cpu':>9} {'floor':>6}")
    for c, s, r, overhead, empty, floor in rows:
        print(f"{c:>4} {s['qps']:>10.0f} {s['p50']:>7.2f} {s['p99']:>7.2f} {s['non2xx']:>6} | {r['qps']:>10.0f} "
              f"{r['p50']:>7.2f} {r['p99']:>7.2f} | {overhead * 100:>7.1f}% | {s['cpu_us']:>7.0f}us {r['cpu_us']:>8.0f}us "
              f"{(s['cpu_us'] / r['cpu_us'] - 1) * 100:>11.1f}% {s['wrk_cpu_us']:>5.0f}us | {empty['cpu_us']:>7.0f}us "
              f"{floor * 100:>5.1f}%  {s['socket_errors']}")
    print("\nserve = wrk over HTTP/1.1 keep-alive on 127.0.0.1 (latency = the whole round trip); reader = "
          "ShardedVectorReader.search in this process, one thread per concurrent client; overhead = the server's "
          "mean latency (concurrency / QPS) over the reader's mean, minus 1. serve_cpu = the server process's CPU "
          "time per answered request, reader_cpu = this process's CPU time per search, cpu_overhead = their ratio "
          "minus 1; wrk_cpu = the load generator's CPU time per request (it shares the CPUs with the server). empty_cpu = the "
          "server's CPU time per GET /v1/health at the same concurrency (an HTTP exchange that searches nothing); "
          "floor = (empty_cpu + wrk_cpu) / reader_cpu, the least overhead any HTTP service could show here once "
          "the shared CPUs are saturated (concurrency 8 and 64), before parsing a body or writing an answer.")

if __name__ == "__main__":
    main()
