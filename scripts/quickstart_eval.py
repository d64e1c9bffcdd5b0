"""Recall@10 / latency / QPS table for the quick start.

The ground truth is an exact brute force computed here with NumPy, independently of shardvec and
sqlite-vec; shardvec is driven through its CLI (`shardvec search --query-file … --json`).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "bin" / "shardvec"
K = 10


def read_idx_images(path: str) -> np.ndarray:
    """IDX3 uint8 images (big-endian header: magic 0x803, n, rows, cols) as float32 rows."""
    raw = gzip.open(path, "rb").read() if path.endswith(".gz") else Path(path).read_bytes()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 0x803:
        raise SystemExit(f"{path}: not an IDX3 image file (magic {magic:#x})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, rows * cols).astype(np.float32)


def exact_kth_distances(train: np.ndarray, test: np.ndarray, k: int) -> np.ndarray:
    """Euclidean distance of each test row's k-th exact neighbour (float32 search, float64 re-rank)."""
    train_norms = (train.astype(np.float64) ** 2).sum(axis=1)
    out = np.empty(len(test))
    for start in range(0, len(test), 500):
        block = test[start:start + 500]
        approx = train_norms[None, :] - 2.0 * (block @ train.T).astype(np.float64)
        candidates = np.argpartition(approx, 3 * k, axis=1)[:, :3 * k]
        for i, row in enumerate(block):
            diffs = train[candidates[i]].astype(np.float64) - row.astype(np.float64)
            dists = np.sort(np.sqrt((diffs * diffs).sum(axis=1)))
            out[start + i] = dists[k - 1]
    return out


def run_search(store: str, queries: Path, probes: int, cache: str) -> tuple[list[dict], float]:
    cmd = [str(CLI), "search", "--store", store, "--query-file", str(queries), "--top-k", str(K),
           "--num-probes", str(probes), "--cache-dir", cache, "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"shardvec search failed: {proc.stderr.strip()}")
    return [json.loads(line) for line in proc.stdout.splitlines()], elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--probes", default="1,2,4,8,16")
    args = parser.parse_args()

    train = read_idx_images(args.train)
    test = read_idx_images(args.test)
    print(f"computing exact neighbours for {len(test)} queries over {len(train)} vectors (NumPy)…",
          flush=True)
    kth = exact_kth_distances(train, test, K)

    cache = str(ROOT / "demo" / ".cache" / Path(args.store).name)
    with tempfile.TemporaryDirectory() as tmp:
        queries = Path(tmp) / "queries.npy"
        np.save(queries, test)
        np.save(Path(tmp) / "warm.npy", test[:64])
        run_search(args.store, Path(tmp) / "warm.npy", 16, cache)  # download and open every shard once
        print(f"\n{'num_probes':>10} {'recall@10':>10} {'mean_ms':>9} {'p99_ms':>9} {'QPS':>9}")
        for probes in (int(p) for p in args.probes.split(",")):
            responses, elapsed = run_search(args.store, queries, probes, cache)
            hits = 0
            latencies = []
            for i, response in enumerate(responses):
                # A hit counts when it is as close as the true k-th neighbour (ties count as found).
                hits += sum(1 for r in response["results"] if r["score"] <= kth[i] * (1 + 1e-5) + 1e-3)
                latencies.append(response["latency_ms"])
            recall = hits / (K * len(responses))
            lat = np.array(latencies)
            print(f"{probes:>10} {recall:>10.4f} {lat.mean():>9.2f} {np.percentile(lat, 99):>9.2f} "
                  f"{len(responses) / elapsed:>9.0f}", flush=True)
    print("\nlatency = per query inside the reader while the batch runs on all cores; "
          "QPS = queries / wall time of the whole `shardvec search` call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
