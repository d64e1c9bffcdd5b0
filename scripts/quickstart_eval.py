"""Recall@10 / single-query latency / batch QPS table for the quick start.

The ground truth is an exact brute force computed here with NumPy, independently of shardvec and
sqlite-vec. For each num_probes: single-query latency is the wall time of one ``search`` call through
the Python reader (``ShardedVectorReader``), one query at a time over the first ``--single`` test
images (mean, p50, p99); batch QPS is all test images in one ``reader.batch_search`` call over that
call's wall time, and recall@10 is measured on that batch's answers.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np

from shardvec.vector import ShardedVectorReader

ROOT = Path(__file__).resolve().parent.parent
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


# The table's header and row format; README.md shows this script's output, and its test compares
# the header and each row's shape with these.
DEFAULT_PROBES = "1,2,4,8,16"
HEADER = (f"{'num_probes':>10} {'recall@10':>10} {'mean_ms':>9} {'p50_ms':>9} {'p99_ms':>9} "
          f"{'batch_QPS':>10}")


def table_row(probes: int, recall: float, latencies_ms: np.ndarray, batch_qps: float) -> str:
    return (f"{probes:>10} {recall:>10.4f} {latencies_ms.mean():>9.2f} "
            f"{np.percentile(latencies_ms, 50):>9.2f} {np.percentile(latencies_ms, 99):>9.2f} "
            f"{batch_qps:>10.0f}")


def run_batch(reader: ShardedVectorReader, queries: np.ndarray, probes: int) -> tuple[list[list[float]], float]:
    """Every row of ``queries`` in one ``reader.batch_search`` call (searched in parallel in C++):
    each query's scores and the call's wall time."""
    start = time.perf_counter()
    responses = reader.batch_search(queries, top_k=K, num_probes=probes)
    elapsed = time.perf_counter() - start
    return [[hit.score for hit in response.results] for response in responses], elapsed


def single_query_latencies(reader: ShardedVectorReader, queries: np.ndarray, probes: int) -> np.ndarray:
    """Milliseconds of each ``reader.search`` call, one query at a time (nothing else running)."""
    out = np.empty(len(queries))
    for i, query in enumerate(queries):
        start = time.perf_counter()
        reader.search(query, top_k=K, num_probes=probes)
        out[i] = (time.perf_counter() - start) * 1000.0
    return out


def recall_at_k(scores: list[list[float]], kth: np.ndarray) -> float:
    # A hit counts when it is as close as the true k-th neighbour (ties count as found).
    hits = sum(sum(1 for score in row if score <= kth[i] * (1 + 1e-5) + 1e-3) for i, row in enumerate(scores))
    return hits / (K * len(scores))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--train", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--probes", default=DEFAULT_PROBES)
    parser.add_argument("--single", type=int, default=1000,
                        help="test images searched one at a time for the latency columns")
    args = parser.parse_args()

    train = read_idx_images(args.train)
    test = read_idx_images(args.test)
    print(f"computing exact neighbours for {len(test)} queries over {len(train)} vectors (NumPy)…",
          flush=True)
    kth = exact_kth_distances(train, test, K)

    cache = str(ROOT / "demo" / ".cache" / Path(args.store).name)
    singles = test[:args.single]
    with ShardedVectorReader(s3_prefix=args.store, local_root=cache) as reader:
        run_batch(reader, test[:64], 16)  # open every shard once
        print(f"\n{HEADER}")
        for probes in (int(p) for p in args.probes.split(",")):
            latencies = single_query_latencies(reader, singles, probes)
            scores, elapsed = run_batch(reader, test, probes)
            print(table_row(probes, recall_at_k(scores, kth), latencies, len(scores) / elapsed), flush=True)
    print(f"\nmean/p50/p99_ms = one query at a time through the reader ({len(singles)} queries); "
          f"batch_QPS = all {len(test)} queries in one reader.batch_search call / its wall time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
