"""The benchmark suite behind ``bench/run``: recall@10 against queries per second, build cost and scan
bandwidth for shardvec, FAISS ``IndexIVFFlat`` (nlist = num_dbs, nprobe = num_probes), FAISS
``IndexFlat`` (exact) and raw sqlite-vec (one un-sharded vec0 table, default settings), all measured in
one run on this machine, beside a memory-bandwidth floor measured the same way.

Data sets: Fashion-MNIST 60k x 784 (l2, raw 0..255 pixel values as the CLI loads them, the 10k test
images as queries) and a synthetic clustered 1M x 384 cosine set (fixed seed). Ground truth is an exact
top-10 computed here with NumPy. Writes results.md, results.json and recall_qps.png to --out.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
K = 10
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
RECALL_TARGET = 0.95
# Pass marks of the Targets section: each ratio must reach its threshold.
TARGETS: dict[str, float] = {
    # The targets. Same partitioning: FAISS IVFFlat over shardvec's own centroids, so both scan
    # the same lists; shardvec 1-thread QPS / FAISS's, cheapest setting with recall >= 0.95.
    "qps_vs_ivf": 1.0,
    "batch_vs_ivf": 1.0,  # the same for batch throughput (all cores)
    "scan_pct_of_floor": 70.0,  # shardvec scan GB/s per core at full probe, % of the SIMD read floor
    "build_per_core_vs_raw": 0.9,  # shardvec vectors/s per core / raw vec0 insert loop with the same pragmas
    "build_speedup_2_vs_1": 1.7,  # shardvec build on all cores vs pinned to one core
    # Shown beside them: FAISS IVFFlat with its own k-means (different lists, so this also compares
    # the two k-means' partitions).
    "qps_vs_ivf_own_kmeans": 1.0,
    "batch_vs_ivf_own_kmeans": 1.0,
}
# Above this share of the machine's CPU taken by other processes during a data set, its numbers are
# flagged as disturbed.
OTHER_CPU_WARN_PCT = 5.0
SHARDVEC_64_PROBES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)
START = time.perf_counter()


class CpuWatch:
    """CPU time the rest of the machine used while the suite ran (/proc/stat busy time minus this
    process's and its children's), so a run disturbed by other work says so."""

    def __init__(self) -> None:
        self.busy0, self.own0, self.wall0 = self._busy(), self._own(), time.perf_counter()

    @staticmethod
    def _busy() -> float:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def others_pct(self) -> float:
        """Other processes' CPU time as % of the machine's capacity since the start."""
        other = (self._busy() - self.busy0) - (self._own() - self.own0)
        capacity = (time.perf_counter() - self.wall0) * (os.cpu_count() or 1)
        return max(0.0, 100 * other / capacity)


def log(message: str) -> None:
    elapsed = int(time.perf_counter() - START)
    print(f"[bench {elapsed // 60:02d}:{elapsed % 60:02d}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# Plan: data sizes and per-setting time budgets.


@dataclass(frozen=True)
class Budget:
    """How long one setting may be timed. The 1-thread loop runs up to ``latency_max`` queries and
    stops early after ``latency_s`` once it has ``latency_min``; the batch gets as many queries as
    fit in ``batch_s`` on all cores at the measured 1-thread cost (at least ``batch_min``, at most
    all). Recall comes from the batch's answers."""

    latency_max: int
    latency_min: int
    latency_s: float
    batch_min: int
    batch_s: float


@dataclass(frozen=True)
class DatasetPlan:
    name: str
    title: str
    metric: str  # "l2" or "cosine"
    train_rows: int
    query_rows: int
    raw_vec0_queries: int
    budget: Budget
    sweeps: dict[int, tuple[int, ...]]  # num_dbs -> num_probes / nprobe values
    note: str


def make_plans(quick: bool) -> dict[str, DatasetPlan]:
    if quick:
        budget = Budget(latency_max=50, latency_min=10, latency_s=0.5, batch_min=50, batch_s=1.0)
        sweeps = {16: tuple(range(1, 17))}
        return {
            "fashion": DatasetPlan("fashion", "Fashion-MNIST (quick: 10k train x 200 test)", "l2", 10_000, 200, 50,
                                   budget, sweeps, "quick smoke run: the first 10k train and 200 test images"),
            "synthetic": DatasetPlan("synthetic", "Synthetic clustered 384-d cosine (quick: 50k x 200)", "cosine",
                                     50_000, 200, 50, budget, sweeps, "quick smoke run"),
        }
    full_sweeps = {16: tuple(range(1, 17)), 64: SHARDVEC_64_PROBES}
    return {
        "fashion": DatasetPlan(
            "fashion", "Fashion-MNIST 60k x 784, l2", "l2", 60_000, 10_000, 200,
            Budget(latency_max=1000, latency_min=50, latency_s=3.0, batch_min=500, batch_s=4.0), full_sweeps,
            "1-thread latency on up to 1000 of the queries"),
        "synthetic": DatasetPlan(
            "synthetic", "Synthetic clustered 1M x 384, cosine", "cosine", 1_000_000, 1_000, 50,
            Budget(latency_max=300, latency_min=15, latency_s=4.0, batch_min=40, batch_s=5.0), full_sweeps,
            "1-thread latency on up to 300 of the queries"),
    }


# ---------------------------------------------------------------------------------------------------
# Data and exact ground truth.


@dataclass
class Dataset:
    plan: DatasetPlan
    train: np.ndarray  # (n, d) float32, C-contiguous
    queries: np.ndarray  # (nq, d) float32
    description: str
    gt_ids: np.ndarray = field(default_factory=lambda: np.empty((0, K), np.int64))
    gt_kth: np.ndarray = field(default_factory=lambda: np.empty(0))  # exact distance of the K-th neighbour
    _unit_train: np.ndarray | None = None

    @property
    def dim(self) -> int:
        return int(self.train.shape[1])

    @property
    def vector_bytes(self) -> int:
        return int(self.train.nbytes)

    def unit_train(self) -> np.ndarray:
        """The train rows scaled to unit length (cosine); computed once, shared with FAISS."""
        if self._unit_train is None:
            self._unit_train = normalised(self.train)
        return self._unit_train

    def faiss_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        if self.plan.metric == "cosine":
            return self.unit_train(), normalised(self.queries)
        return self.train, self.queries


def normalised(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x, dtype=np.float32)
    for start in range(0, len(x), 65536):
        block = x[start:start + 65536].astype(np.float32)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + 65536] = block / np.maximum(norms, np.float32(1e-30))
    return out


def read_idx_images(path: Path, limit: int) -> np.ndarray:
    """IDX3 uint8 images as float32 rows of raw 0..255 values (what `shardvec build` loads)."""
    raw = gzip.open(path, "rb").read()
    magic, n, rows, cols = (int(v) for v in np.frombuffer(raw[:16], dtype=">u4"))
    if magic != 0x803:
        raise SystemExit(f"{path}: not an IDX3 uint8 image file (magic {magic:#x})")
    pixels = np.frombuffer(raw[16:16 + n * rows * cols], dtype=np.uint8).reshape(n, rows * cols)
    return np.ascontiguousarray(pixels[:limit], dtype=np.float32)


def load_fashion(plan: DatasetPlan) -> Dataset:
    train_path, test_path = FASHION_DIR / "train-images-idx3-ubyte.gz", FASHION_DIR / "t10k-images-idx3-ubyte.gz"
    if not train_path.exists():
        raise SystemExit(f"{train_path} is missing: install the Debian package dataset-fashion-mnist "
                         "(scripts/setup does)")
    train = read_idx_images(train_path, plan.train_rows)
    queries = read_idx_images(test_path, plan.query_rows)
    return Dataset(plan, train, queries,
                   f"{len(train)} x {train.shape[1]} train images, {len(queries)} test images as queries "
                   "(raw 0..255 pixel values as float32, l2)")


SYNTH_SEED = 20240611
SYNTH_CENTRES = 1000
SYNTH_SIGMA = 0.3
SYNTH_DIM = 384


def synthetic(plan: DatasetPlan) -> Dataset:
    """SYNTH_CENTRES Gaussian centres ~N(0, 1) in SYNTH_DIM dimensions; each point is a uniformly
    chosen centre plus SYNTH_SIGMA * N(0, 1) noise. Queries are drawn the same way from another
    stream of the same seed."""
    rng = np.random.default_rng(SYNTH_SEED)
    centres = rng.standard_normal((SYNTH_CENTRES, SYNTH_DIM), dtype=np.float32)

    def draw(stream: np.random.Generator, n: int) -> np.ndarray:
        labels = stream.integers(0, SYNTH_CENTRES, n)
        out = np.empty((n, SYNTH_DIM), dtype=np.float32)
        for start in range(0, n, 65536):
            stop = min(n, start + 65536)
            noise = stream.standard_normal((stop - start, SYNTH_DIM), dtype=np.float32)
            out[start:stop] = centres[labels[start:stop]] + np.float32(SYNTH_SIGMA) * noise
        return out

    train = draw(np.random.default_rng([SYNTH_SEED, 1]), plan.train_rows)
    queries = draw(np.random.default_rng([SYNTH_SEED, 2]), plan.query_rows)
    return Dataset(plan, train, queries,
                   f"{plan.train_rows} x {SYNTH_DIM}: {SYNTH_CENTRES} centres ~N(0,1), point = centre + "
                   f"{SYNTH_SIGMA}*N(0,1), seed {SYNTH_SEED}; {plan.query_rows} queries drawn the same way (cosine)")


def exact_distances(data: Dataset, query_rows: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Exact float64 distances (squared l2, or 1 - cosine) of each query to its ``ids`` (-1: inf)."""
    out = np.full(ids.shape, np.inf)
    valid = ids >= 0
    for start in range(0, len(ids), 1024):
        rows = slice(start, start + 1024)
        block_ids = np.where(valid[rows], ids[rows], 0)
        q = data.queries[query_rows[rows]].astype(np.float64)[:, None, :]
        if data.plan.metric == "l2":
            x = data.train[block_ids].astype(np.float64)
            d = ((x - q) ** 2).sum(axis=2)
        else:
            x = data.unit_train()[block_ids].astype(np.float64)
            x /= np.linalg.norm(x, axis=2, keepdims=True)
            qn = q / np.linalg.norm(q, axis=2, keepdims=True)
            d = 1.0 - (x * qn).sum(axis=2)
        out[rows] = np.where(valid[rows], d, np.inf)
    return out


def compute_ground_truth(data: Dataset) -> None:
    """Exact top-K by a float32 BLAS scan for 3K candidates, re-ranked in float64."""
    train, queries = data.train, data.queries
    cosine = data.plan.metric == "cosine"
    base = data.unit_train() if cosine else train
    norms = None if cosine else (train.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    cand = 3 * K
    ids = np.empty((len(queries), K), dtype=np.int64)
    kth = np.empty(len(queries))
    block = max(16, min(512, int(4e8 // (len(train) * 4))))
    for start in range(0, len(queries), block):
        q = queries[start:start + block]
        if cosine:
            scores = -(normalised(q) @ base.T)
        else:
            scores = norms[None, :] - 2.0 * (q @ base.T)
        top = np.argpartition(scores, cand, axis=1)[:, :cand]
        rows = np.arange(start, start + len(q))
        dist = exact_distances(data, rows, top)
        order = np.argsort(dist, axis=1, kind="stable")[:, :K]
        ids[start:start + len(q)] = np.take_along_axis(top, order, axis=1)
        kth[start:start + len(q)] = np.take_along_axis(dist, order, axis=1)[:, K - 1]
    data.gt_ids, data.gt_kth = ids, kth


def recall_at_k(data: Dataset, ids: np.ndarray) -> tuple[float, float]:
    """(recall, id recall) of answers for the first len(ids) queries. recall counts a returned id when
    its exact distance is within the exact K-th nearest distance (ties at the K-th place count); id
    recall is |returned ids ∩ exact top-K| / K. They agree when there are no ties."""
    n = len(ids)
    rows = np.arange(n)
    dist = exact_distances(data, rows, ids)
    limit = data.gt_kth[:n, None] * (1 + 1e-9) + 1e-12
    hits = np.minimum((dist <= limit).sum(axis=1), K)
    gt = data.gt_ids[:n]
    id_hits = np.array([len(set(ids[i][ids[i] >= 0].tolist()) & set(gt[i].tolist())) for i in range(n)])
    return float(hits.mean() / K), float(id_hits.mean() / K)


# ---------------------------------------------------------------------------------------------------
# Timing.


@dataclass
class Latency:
    n: int
    mean_ms: float
    p50_ms: float
    p99_ms: float
    qps: float

    @staticmethod
    def of(ns: Sequence[int]) -> Latency:
        ms = np.sort(np.asarray(ns, dtype=np.float64) / 1e6)

        def rank(p: float) -> float:  # nearest-rank percentile, as raw_vec0 reports it
            return float(ms[min(len(ms) - 1, max(0, int(np.ceil(p / 100 * len(ms))) - 1))])

        return Latency(len(ms), float(ms.mean()), rank(50), rank(99), float(1e3 / ms.mean()))


def time_single(search_one: Callable[[np.ndarray], Any], queries: np.ndarray, budget: Budget) -> Latency:
    search_one(queries[0])  # warm-up, untimed
    ns: list[int] = []
    started = time.perf_counter()
    for q in queries[:budget.latency_max]:
        t0 = time.perf_counter_ns()
        search_one(q)
        ns.append(time.perf_counter_ns() - t0)
        if len(ns) >= budget.latency_min and time.perf_counter() - started > budget.latency_s:
            break
    return Latency.of(ns)


def batch_size_for(latency: Latency, total: int, budget: Budget, cores: int) -> int:
    fits = int(budget.batch_s * cores / max(latency.mean_ms / 1e3, 1e-9))
    return max(min(total, budget.batch_min), min(total, fits))


@dataclass
class Row:
    system: str  # shardvec | faiss-ivf | faiss-ivf-same | faiss-flat | sqlite-vec
    num_dbs: int | None
    probes: int | None
    setting: str
    recall: float
    id_recall: float
    recall_queries: int
    latency: Latency
    batch_qps: float | None
    scanned_bytes_per_query: float
    scan_gbps_per_core: float
    pct_of_floor: float

    @property
    def label(self) -> str:
        return {"shardvec": f"shardvec {self.num_dbs} shards", "faiss-ivf": f"FAISS IVFFlat nlist={self.num_dbs}",
                "faiss-ivf-same": f"FAISS IVFFlat nlist={self.num_dbs}, shardvec's centroids",
                "faiss-flat": "FAISS IndexFlat (exact)", "sqlite-vec": "raw sqlite-vec (1 vec0 table)"}[self.system]


@dataclass
class Build:
    system: str
    setting: str
    seconds: float
    vectors_per_s: float
    cores: int
    bytes: int
    note: str = ""
    rounds: tuple[float, ...] = ()  # seconds of every round when timed more than once (seconds = the best)

    @property
    def per_core(self) -> float:
        return self.vectors_per_s / self.cores


def measure(system: str, num_dbs: int | None, probes: int | None, setting: str, data: Dataset,
            search_one: Callable[[np.ndarray], Any], search_many: Callable[[np.ndarray], np.ndarray],
            bytes_scanned: Callable[[np.ndarray], float], queries: np.ndarray, floor: dict[str, Any],
            cores: int) -> Row:
    """One setting: the 1-thread loop, then the batch (whose answers give recall)."""
    budget = data.plan.budget
    latency = time_single(search_one, queries, budget)
    scanned = bytes_scanned(queries[:latency.n])  # total over the timed queries
    n_batch = batch_size_for(latency, len(queries), budget, cores)
    t0 = time.perf_counter()
    ids = search_many(queries[:n_batch])
    batch_s = time.perf_counter() - t0
    recall, id_recall = recall_at_k(data, ids)
    gbps = scanned / (latency.mean_ms / 1e3 * latency.n) / 1e9
    row = Row(system, num_dbs, probes, setting, recall, id_recall, n_batch, latency, n_batch / batch_s,
              scanned / latency.n, gbps, 100 * gbps / floor["gbps_per_core"])
    log(f"  {row.label:32s} {setting:10s} recall {recall:.4f}  1t {latency.mean_ms:8.2f} ms ({latency.n} q)  "
        f"batch {row.batch_qps:9.1f} q/s ({n_batch} q)  scan {gbps:5.2f} GB/s/core")
    return row


# ---------------------------------------------------------------------------------------------------
# Systems.


def run_faiss(data: Dataset, cores: int, floor: dict[str, Any], work: Path,
              shardvec_centroids: dict[int, np.ndarray]) -> tuple[list[Row], list[Build]]:
    """FAISS IndexFlat, and per list count IndexIVFFlat twice: with its own k-means, and over the
    centroids shardvec's writer trained (the same partitioning: both then scan the same lists)."""
    import faiss

    rows: list[Row] = []
    builds: list[Build] = []
    x, q = data.faiss_vectors()
    d = data.dim
    metric = faiss.METRIC_L2 if data.plan.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    n = len(x)

    def index_bytes(index: Any) -> int:
        path = work / "faiss.index"
        faiss.write_index(index, str(path))
        size = path.stat().st_size
        path.unlink()
        return size

    def searchers(index: Any) -> tuple[Callable[[np.ndarray], Any], Callable[[np.ndarray], np.ndarray]]:
        def one(v: np.ndarray) -> Any:
            return index.search(v.reshape(1, -1), K)

        def many(m: np.ndarray) -> np.ndarray:
            faiss.omp_set_num_threads(cores)
            try:
                return index.search(m, K)[1].astype(np.int64)
            finally:
                faiss.omp_set_num_threads(1)

        return one, many

    # Exact.
    faiss.omp_set_num_threads(cores)
    t0 = time.perf_counter()
    flat = faiss.IndexFlat(d, metric)
    flat.add(x)
    seconds = time.perf_counter() - t0
    builds.append(Build("faiss-flat", "IndexFlat", seconds, n / seconds, cores, index_bytes(flat)))
    faiss.omp_set_num_threads(1)
    one, many = searchers(flat)
    rows.append(measure("faiss-flat", None, None, "exact", data, one, many,
                        lambda qs: float(len(qs) * data.vector_bytes), q, floor, cores))
    del flat

    for nlist, probes in data.plan.sweeps.items():
        for system in ("faiss-ivf", "faiss-ivf-same"):
            given = shardvec_centroids.get(nlist) if system == "faiss-ivf-same" else None
            if system == "faiss-ivf-same" and given is None:
                continue
            faiss.omp_set_num_threads(cores)
            t0 = time.perf_counter()
            quantizer = faiss.IndexFlat(d, metric)
            ivf = faiss.IndexIVFFlat(quantizer, d, nlist, metric)
            if given is None:
                ivf.train(x)
                how = "train + add, all cores"
            else:
                # Cosine routes by the angle to each centroid: the same argmax as inner product
                # with unit centroids over the unit vectors FAISS holds.
                quantizer.add(normalised(given) if data.plan.metric == "cosine" else given)
                ivf.is_trained = True
                how = "add over shardvec's centroids, all cores"
            ivf.add(x)
            seconds = time.perf_counter() - t0
            setting = f"IVFFlat nlist={nlist}" + (", shardvec's centroids" if given is not None else "")
            builds.append(Build(system, setting, seconds, n / seconds, cores, index_bytes(ivf), how))
            sizes = np.array([ivf.invlists.list_size(i) for i in range(nlist)], dtype=np.float64)
            faiss.omp_set_num_threads(1)
            one, many = searchers(ivf)
            for p in probes:
                ivf.nprobe = p

                def scanned(qs: np.ndarray, p: int = p, quantizer: Any = quantizer, sizes: np.ndarray = sizes) -> float:
                    lists = quantizer.search(qs, p)[1]
                    return float(sizes[lists].sum() * d * 4)

                rows.append(measure(system, nlist, p, f"nprobe={p}", data, one, many, scanned, q, floor, cores))
            del ivf, quantizer
    faiss.omp_set_num_threads(cores)
    return rows, builds


def shardvec_write(vectors: np.ndarray, metric: str, num_dbs: int, store: Path, build_root: Path,
                   centroids: np.ndarray | None = None) -> tuple[float, int]:
    """One ``write_arrays`` into a local-folder store: CLUSTER routing, with k-means trained by the
    writer unless ``centroids`` are given. Returns (seconds, bytes of all shards)."""
    from shardvec.config import WriterOutputConfig
    from shardvec.vector import VectorShardedWriteConfig, write_arrays
    from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
    from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

    config = VectorShardedWriteConfig(
        s3_prefix=str(store),
        index_config=VectorIndexConfig(dim=int(vectors.shape[1]), metric=DistanceMetric(metric)),
        sharding=VectorShardingConfig(num_dbs=num_dbs, strategy=VectorShardingStrategy.CLUSTER, num_probes=1,
                                      train_centroids=centroids is None, centroids=centroids),
        output=WriterOutputConfig(local_root=str(build_root)),
    )
    t0 = time.perf_counter()
    result = write_arrays(vectors, config, ids=np.arange(len(vectors), dtype=np.int64))
    seconds = time.perf_counter() - t0
    return seconds, sum(int(w.db_bytes) for w in result.winners)


def sample_centroids(data: Dataset, k: int) -> np.ndarray:
    """k-means centroids from FAISS on a sample (spherical for cosine), for the builds that time the
    writer without its own training."""
    import faiss

    rng = np.random.default_rng(SYNTH_SEED)
    rows = np.sort(rng.choice(len(data.train), min(len(data.train), 50_000), replace=False))
    cosine = data.plan.metric == "cosine"
    sample = np.ascontiguousarray((data.unit_train() if cosine else data.train)[rows])
    kmeans = faiss.Kmeans(data.dim, k, niter=20, seed=1, spherical=cosine)
    kmeans.train(sample)
    return np.ascontiguousarray(kmeans.centroids, dtype=np.float32)


def run_shardvec(data: Dataset, cores: int, floor: dict[str, Any],
                 work: Path) -> tuple[list[Row], list[Build], dict[int, np.ndarray]]:
    from shardvec.vector import ShardedVectorReader

    rows: list[Row] = []
    builds: list[Build] = []
    trained: dict[int, np.ndarray] = {}  # the writer's centroids per shard count, for FAISS
    n, d = data.train.shape
    for num_dbs, probes in data.plan.sweeps.items():
        store, build_root = work / f"store-{num_dbs}", work / f"build-{num_dbs}"
        log(f"  shardvec write, {num_dbs} shards (CLUSTER, centroids trained by the writer), all cores")
        seconds, size = shardvec_write(data.train, data.plan.metric, num_dbs, store, build_root)
        builds.append(Build("shardvec", f"{num_dbs} shards, trained", seconds, n / seconds, cores, size,
                            "write_arrays: k-means + route + build + publish to a local folder"))
        log(f"    {seconds:.2f} s, {n / seconds:,.0f} vectors/s, {size / 2**20:.1f} MiB")
        trained[num_dbs] = np.load(next(store.glob("vector_meta/run_id=*/centroids.npy")))
        single = ShardedVectorReader(s3_prefix=str(store), local_root=str(work / f"cache-{num_dbs}-1"),
                                     max_workers=1, preload_shards=True)
        batch = ShardedVectorReader(s3_prefix=str(store), local_root=str(work / f"cache-{num_dbs}-n"),
                                    preload_shards=True)
        counts = {s.db_id: s.vector_count for s in single.shard_details()}
        try:
            for p in probes:
                def one(v: np.ndarray, p: int = p) -> Any:
                    return single.search(v, K, num_probes=p)

                def many(m: np.ndarray, p: int = p) -> np.ndarray:
                    out = np.full((len(m), K), -1, dtype=np.int64)
                    for i, response in enumerate(batch.batch_search(m, K, num_probes=p)):
                        got = [int(r.id) for r in response.results[:K]]
                        out[i, :len(got)] = got
                    return out

                def scanned(qs: np.ndarray, p: int = p) -> float:
                    rows_scanned = sum(counts[s] for v in qs for s in single.route_vector(v, num_probes=p))
                    return float(rows_scanned * d * 4)

                rows.append(measure("shardvec", num_dbs, p, f"probes={p}", data, one, many, scanned,
                                    data.queries, floor, cores))
        finally:
            single.close()
            batch.close()
            for path in (store, build_root, work / f"cache-{num_dbs}-1", work / f"cache-{num_dbs}-n"):
                shutil.rmtree(path, ignore_errors=True)
    return rows, builds, trained


def raw_vec0(binary: Path, *args: str) -> dict[str, Any]:
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"raw_vec0 {args[0]} failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_raw_vec0(data: Dataset, cores: int, floor: dict[str, Any], work: Path, npy: Path,
                 binary: Path) -> tuple[list[Row], list[Build], dict[str, Any]]:
    n = len(data.train)
    db = work / "raw.db"
    log(f"  raw sqlite-vec build, default pragmas ({n} rows, one transaction)")
    built = raw_vec0(binary, "build", "--npy", str(npy), "--db", str(db), "--metric", data.plan.metric,
                     "--pragmas", "default")
    builds = [Build("sqlite-vec", "1 vec0 table, SQLite defaults", built["seconds"], built["vectors_per_s"], 1,
                    built["bytes"], "raw_vec0 build --pragmas default")]
    nq = min(data.plan.raw_vec0_queries, len(data.queries))
    queries_npy, ids_npy = work / "raw-queries.npy", work / "raw-ids.npy"
    np.save(queries_npy, data.queries[:nq])
    log(f"  raw sqlite-vec search, {nq} queries, one at a time")
    found = raw_vec0(binary, "search", "--db", str(db), "--npy", str(queries_npy), "--k", str(K),
                     "--out", str(ids_npy))
    ids = np.load(ids_npy)
    recall, id_recall = recall_at_k(data, ids)
    latency = Latency(int(found["queries"]), found["mean_ms"], found["p50_ms"], found["p99_ms"], 1e3 / found["mean_ms"])
    gbps = data.vector_bytes / (latency.mean_ms / 1e3) / 1e9
    row = Row("sqlite-vec", None, None, "defaults", recall, id_recall, nq, latency, None,
              float(data.vector_bytes), gbps, 100 * gbps / floor["gbps_per_core"])
    log(f"  {row.label:32s} recall {recall:.4f}  1t {latency.mean_ms:8.2f} ms ({nq} q)  scan {gbps:5.2f} GB/s/core")
    db.unlink()
    return [row], builds, {"sqlite": built.get("sqlite")}


BUILD_ROUNDS = 3


def write_file(path: Path, nbytes: int) -> float:
    """Seconds to write ``nbytes`` to a new file in 1 MiB writes and fsync it: the file system's own
    cost for as many bytes as a build leaves, which no build of them can beat."""
    block = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8).tobytes()
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        left = nbytes
        while left > 0:
            left -= os.write(fd, block[:min(left, len(block))])
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - t0
    path.unlink()
    return seconds


@contextmanager
def pinned_to_one_cpu() -> Iterator[None]:
    """Confines the calling thread, and so every thread the engine starts from it, to one CPU; the
    engine sizes its pools by the CPUs it may use, as it would under taskset or a container limit."""
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(mask)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, mask)


def warm_memory(nbytes: int) -> None:
    """Writes and frees ``nbytes`` of memory, so that the build timed next gets pages the VM holds.
    A VM that reports freed memory to its host (free page reporting; the committed results' machine
    does) pays a host fault the first time each such page is touched again: dd of 1.6 GB into tmpfs
    took 0.5 to 6.5 s there. Freed pages are reported only after about 2 s, and the allocator hands
    out the most recently freed first, so every timed build starts equally warm."""
    np.ones(nbytes // 8, dtype=np.float64)


def run_target_builds(data: Dataset, cores: int, work: Path, npy: Path, binary: Path) -> list[Build]:
    """The builds the targets compare, in BUILD_ROUNDS interleaved rounds, each keeping its best:
    shardvec with given centroids on all cores, the same write pinned to one core, the raw vec0 insert
    loop with shardvec's pragmas (a process of its own, which reads the .npy twice over: 2x its bytes),
    and a plain write of the shard bytes. Each starts after warm_memory of what it will allocate: the
    files it writes (about 1.1x the vectors' bytes, taken as 1.25x), and for the raw loop its two
    copies of the vectors as well."""
    n = len(data.train)
    first = min(data.plan.sweeps)
    centroids = sample_centroids(data, first)
    metric = data.plan.metric
    warm = int(1.25 * data.vector_bytes)
    times: dict[str, list[float]] = {"all": [], "one": [], "raw": [], "write": []}
    size = 0
    raw_bytes = 0

    def shardvec_build() -> float:
        nonlocal size
        seconds, size = shardvec_write(data.train, metric, first, work / "store-given", work / "build-given", centroids)
        shutil.rmtree(work / "store-given", ignore_errors=True)
        shutil.rmtree(work / "build-given", ignore_errors=True)
        return seconds

    for round_no in range(1, BUILD_ROUNDS + 1):
        log(f"  build round {round_no}/{BUILD_ROUNDS}: shardvec {first} shards (given centroids) on all cores, "
            "pinned to one core, raw vec0 with shardvec pragmas, plain file write")
        warm_memory(warm)
        times["all"].append(shardvec_build())
        warm_memory(warm)
        with pinned_to_one_cpu():
            times["one"].append(shardvec_build())
        warm_memory(warm + 2 * data.vector_bytes)
        yard = raw_vec0(binary, "build", "--npy", str(npy), "--db", str(work / "raw-yard.db"), "--metric", metric,
                        "--pragmas", "shardvec")
        (work / "raw-yard.db").unlink()
        times["raw"].append(float(yard["seconds"]))
        raw_bytes = int(yard["bytes"])
        warm_memory(warm)
        times["write"].append(write_file(work / "plain-write.bin", size))
        log("    " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))

    def best(key: str, system: str, setting: str, cores_used: int, nbytes: int, how: str) -> Build:
        rounds = tuple(times[key])
        return Build(system, setting, min(rounds), n / min(rounds), cores_used, nbytes,
                     f"{how}; best of {len(rounds)} rounds", rounds)

    return [
        best("all", "shardvec", f"{first} shards, given centroids", cores, size,
             "write_arrays with FAISS k-means centroids: route + build + publish"),
        best("one", "shardvec", f"{first} shards, given centroids, 1 core", 1, size,
             "the same write with its threads pinned to one CPU"),
        best("raw", "sqlite-vec", "1 vec0 table, shardvec pragmas", 1, raw_bytes,
             "raw_vec0 build --pragmas shardvec (64 KiB pages, journal off, ...)"),
        best("write", "file write", "the shard bytes, 1 core", 1, size,
             "one new file in the work folder, 1 MiB writes + fsync: the file system's floor for any build"),
    ]


# ---------------------------------------------------------------------------------------------------
# Ratios and targets.


def cheapest(rows: list[Row], system: str, num_dbs: int | None, key: Callable[[Row], float | None]) -> Row | None:
    """The setting with the highest ``key`` among ``system``'s rows reaching RECALL_TARGET."""
    ok = [r for r in rows if r.system == system and r.num_dbs == num_dbs and r.recall >= RECALL_TARGET
          and key(r) is not None]
    return max(ok, key=lambda r: key(r) or 0.0) if ok else None


@dataclass
class Target:
    dataset: str
    name: str
    detail: str
    ratio: float | None
    threshold: float
    unit: str = "x"

    @property
    def passed(self) -> bool | None:
        return None if self.ratio is None else self.ratio >= self.threshold


def targets_for(data: Dataset, rows: list[Row], builds: list[Build], cores: int) -> list[Target]:
    out: list[Target] = []
    name = data.plan.name
    for num_dbs in data.plan.sweeps:
        for key, what, field_name, rival in (
                (lambda r: r.latency.qps, "1-thread QPS", "qps_vs_ivf", "faiss-ivf-same"),
                (lambda r: r.batch_qps, "batch QPS", "batch_vs_ivf", "faiss-ivf-same"),
                (lambda r: r.latency.qps, "1-thread QPS", "qps_vs_ivf_own_kmeans", "faiss-ivf"),
                (lambda r: r.batch_qps, "batch QPS", "batch_vs_ivf_own_kmeans", "faiss-ivf")):
            ours = cheapest(rows, "shardvec", num_dbs, key)
            theirs = cheapest(rows, rival, num_dbs, key)
            rival_label = f"FAISS IVFFlat nlist={num_dbs}" + (", shardvec's centroids" if rival == "faiss-ivf-same" else "")
            if ours and theirs:
                detail = (f"{what} at recall@10 >= {RECALL_TARGET}, shardvec {num_dbs} shards ({ours.setting}: "
                          f"{key(ours):,.1f}) / {rival_label} ({theirs.setting}: {key(theirs):,.1f})")
                ratio: float | None = (key(ours) or 0.0) / (key(theirs) or 1.0)
            else:
                missing = " and ".join(s for s, r in (("shardvec", ours), (rival_label, theirs)) if r is None)
                detail = f"{what} at recall@10 >= {RECALL_TARGET}, {num_dbs} lists: {missing} never reached it"
                ratio = None
            out.append(Target(name, field_name, detail, ratio, TARGETS[field_name]))
        full = [r for r in rows if r.system == "shardvec" and r.num_dbs == num_dbs and r.probes == num_dbs]
        if full:
            r = full[0]
            out.append(Target(name, "scan_pct_of_floor",
                              f"shardvec {num_dbs} shards, all {num_dbs} probed, 1 thread: {r.scan_gbps_per_core:.2f} "
                              f"GB/s per core of vectors scanned", r.pct_of_floor, TARGETS["scan_pct_of_floor"], "%"))
    first = min(data.plan.sweeps)
    ours = next((b for b in builds if b.setting == f"{first} shards, given centroids"), None)
    one = next((b for b in builds if b.setting == f"{first} shards, given centroids, 1 core"), None)
    yard = next((b for b in builds if b.setting == "1 vec0 table, shardvec pragmas"), None)
    if ours and yard:
        out.append(Target(name, "build_per_core_vs_raw",
                          f"shardvec {first} shards, given centroids: {ours.per_core:,.0f} vectors/s per core ({cores} cores) / raw vec0 "
                          f"insert loop, same pragmas, 1 core {yard.vectors_per_s:,.0f}"
                          + (f" (pinned to 1 core: {one.vectors_per_s:,.0f} vectors/s, "
                             f"{one.vectors_per_s / yard.vectors_per_s:.2f}x)" if one else ""),
                          ours.per_core / yard.vectors_per_s, TARGETS["build_per_core_vs_raw"]))
    if ours and one:
        out.append(Target(name, "build_speedup_2_vs_1",
                          f"shardvec {first} shards, given centroids: {one.seconds:.2f} s on 1 core / {ours.seconds:.2f} s on {cores} cores",
                          one.seconds / ours.seconds, TARGETS["build_speedup_2_vs_1"]))
    return out


# ---------------------------------------------------------------------------------------------------
# Output.


def filesystem_of(path: Path) -> str:
    """The type of the file system ``path`` is on (the longest mount point above it in /proc/mounts)."""
    resolved, best, kind = str(path.resolve()), "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and (resolved == fields[1] or resolved.startswith(fields[1].rstrip("/") + "/")) \
                and len(fields[1]) > len(best):
            best, kind = fields[1], fields[2]
    return kind


def machine_info(binary: Path, work_dir: Path) -> dict[str, Any]:
    import faiss
    import shardvec

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    l3 = Path("/sys/devices/system/cpu/cpu0/cache/index3/size")
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "0")

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return proc.stdout.strip()

    engine = Path(shardvec.__file__).parent
    so = next(engine.glob("_engine*.so"), None)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "l3_cache": l3.read_text().strip() if l3.exists() else "?",
        "memory_gib": round(int(mem) / 2**20, 1),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": git("rev-parse", "--short=12", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "shardvec_package": shardvec.__version__,
        "shardvec_engine_built": (datetime.fromtimestamp(so.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
                                  if so else "?"),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "raw_vec0": str(binary),
        "work_dir": f"{work_dir} ({filesystem_of(work_dir)})",
    }


def fmt_bytes(b: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{b:.0f} B"


def fmt_num(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def markdown(info: dict[str, Any], datasets: list[dict[str, Any]], quick: bool) -> str:
    lines = ["# shardvec benchmark" + (" (quick smoke run: small subsets, not for comparison)" if quick else ""), ""]
    lines += [
        f"Machine: {info['cpu']}, {info['cores']} cores, L3 {info['l3_cache']}, {info['memory_gib']} GiB; "
        f"{info['date']}; git {info['git_commit']}{' (dirty)' if info['git_dirty'] else ''}; shardvec "
        f"{info['shardvec_package']} (engine built {info['shardvec_engine_built']}), FAISS {info['faiss']}, "
        f"sqlite {info.get('sqlite', '?')}, sqlite-vec 0.1.9. Snapshots, shard builds and databases in "
        f"{info.get('work_dir', '?')}.",
        "",
        "Every number comes from this one run. recall@10 counts a returned id when its exact distance is "
        "within the exact 10th-nearest distance (exact top-10 by NumPy; equals |ids ∩ true top-10|/10 when "
        "there are no ties; results.json has both). *1 thread*: one query at a time (shardvec reader "
        "`max_workers=1`, FAISS `omp_set_num_threads(1)`, sqlite-vec one connection); *batch*: all queries "
        "of the batch at once on all cores (`batch_search`, FAISS `search` on the matrix). Each setting's "
        "1-thread loop and batch are sized by a time budget; *n* gives the query counts used "
        "(1-thread / batch = recall). *scan*: bytes of float32 vectors in the probed shards / lists "
        "(whole table for exact scans) per 1-thread second; *% floor*: of a plain SIMD read (the widest "
        "the CPU has, see the floor line) of as many bytes on one core. Ratios at recall ≥ 0.95 take, for each system, the cheapest setting (highest QPS) whose "
        "recall@10 ≥ 0.95; no interpolation.",
        "",
    ]
    for ds in datasets:
        floor = ds["floor"]
        lines += [f"## {ds['title']}", "", ds["description"] + ".", "",
                  f"Memory-bandwidth floor ({fmt_bytes(floor['bytes'])}, {floor['simd']}, best of 5): "
                  f"{floor['gbps_per_core']:.2f} GB/s on 1 core, {floor['gbps_total']:.2f} GB/s on {floor['threads']}. "
                  f"Other processes used {ds['other_cpu_pct']:.1f} % of the machine's CPU meanwhile"
                  + (" — **disturbed run, rerun on a quiet machine**." if ds["other_cpu_pct"] > OTHER_CPU_WARN_PCT
                     else "."),
                  "",
                  "| system | setting | recall@10 | 1t mean ms | 1t p50 ms | 1t p99 ms | 1t QPS | batch QPS | "
                  "scanned / query | scan GB/s/core | % floor | n (1t / batch) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in ds["rows"]:
            lat = r.latency
            lines.append(
                f"| {r.label} | {r.setting} | {r.recall:.4f} | {lat.mean_ms:.2f} | {lat.p50_ms:.2f} | {lat.p99_ms:.2f} | "
                f"{lat.qps:,.1f} | {fmt_num(r.batch_qps)} | {fmt_bytes(r.scanned_bytes_per_query)} | "
                f"{r.scan_gbps_per_core:.2f} | {r.pct_of_floor:.0f} % | {lat.n} / {r.recall_queries} |")
        lines += ["", "| build | setting | seconds | rounds (s) | vectors/s | vectors/s per core | bytes on disk | how |",
                  "|---|---|---|---|---|---|---|---|"]
        for b in ds["builds"]:
            rounds = " / ".join(f"{r:.2f}" for r in b.rounds) or "–"
            lines.append(f"| {b.system} | {b.setting} | {b.seconds:.2f} | {rounds} | {b.vectors_per_s:,.0f} | "
                         f"{b.per_core:,.0f} | {fmt_bytes(b.bytes)} | {b.note} |")
        lines.append("")
    lines += ["## Targets", "",
              "| data | target | measured | threshold | pass | how |", "|---|---|---|---|---|---|"]
    for ds in datasets:
        for t in ds["targets"]:
            measured = "–" if t.ratio is None else (f"{t.ratio:.0f} %" if t.unit == "%" else f"{t.ratio:.2f}x")
            threshold = f"≥ {t.threshold:.0f} %" if t.unit == "%" else f"≥ {t.threshold:.2f}x"
            mark = {True: "✅", False: "❌", None: "–"}[t.passed]
            lines.append(f"| {ds['name']} | {t.name} | {measured} | {threshold} | {mark} | {t.detail} |")
    lines.append("")
    return "\n".join(lines)


def plot(path: Path, datasets: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(datasets), figsize=(7 * len(datasets), 5.5), squeeze=False)
    styles = {"shardvec": ("tab:blue", "o"), "faiss-ivf": ("tab:orange", "s"), "faiss-ivf-same": ("tab:purple", "^")}
    for ax, ds in zip(axes[0], datasets):
        rows: list[Row] = ds["rows"]
        for system in ("shardvec", "faiss-ivf", "faiss-ivf-same"):
            for i, num_dbs in enumerate(sorted({r.num_dbs for r in rows if r.system == system})):
                curve = sorted((r for r in rows if r.system == system and r.num_dbs == num_dbs),
                               key=lambda r: r.probes or 0)
                color, marker = styles[system]
                label = curve[0].label
                ax.plot([r.recall for r in curve], [r.latency.qps for r in curve], marker=marker, color=color,
                        linestyle="-" if i == 0 else "--", markersize=4, label=label)
        for system, color, marker in (("faiss-flat", "tab:green", "*"), ("sqlite-vec", "tab:red", "X")):
            for r in (r for r in rows if r.system == system):
                ax.plot([r.recall], [r.latency.qps], marker=marker, color=color, markersize=12, linestyle="none",
                        label=r.label)
        ax.axvline(RECALL_TARGET, color="grey", linewidth=0.8, linestyle=":")
        ax.set_yscale("log")
        ax.set_xlabel("recall@10")
        ax.set_ylabel("queries per second, 1 thread (log)")
        ax.set_title(ds["title"])
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------------


def run_dataset(plan: DatasetPlan, binary: Path, cores: int, work_parent: Path, info: dict[str, Any]) -> dict[str, Any]:
    log(f"== {plan.title}")
    watch = CpuWatch()
    data = load_fashion(plan) if plan.name == "fashion" else synthetic(plan)
    log(f"  data: {data.description}")
    t0 = time.perf_counter()
    compute_ground_truth(data)
    log(f"  exact top-{K} of {len(data.queries)} queries in {time.perf_counter() - t0:.1f} s")
    floor = raw_vec0(binary, "floor", "--bytes", str(data.vector_bytes), "--threads", str(cores))
    log(f"  floor: {floor['gbps_per_core']:.2f} GB/s on 1 core, {floor['gbps_total']:.2f} GB/s on {cores} "
        f"({floor['simd']}, {fmt_bytes(floor['bytes'])})")
    work = Path(tempfile.mkdtemp(prefix=f"shardvec-bench-{plan.name}-", dir=work_parent))
    try:
        npy = work / "train.npy"
        np.save(npy, data.train)
        log("-- builds the targets compare")
        target_builds = run_target_builds(data, cores, work, npy, binary)
        log("-- shardvec")
        sv_rows, sv_builds, trained = run_shardvec(data, cores, floor, work)
        log("-- FAISS")
        faiss_rows, faiss_builds = run_faiss(data, cores, floor, work, trained)
        # The exact index's recall checks the ground truth (and vice versa).
        flat = next(r for r in faiss_rows if r.system == "faiss-flat")
        if flat.recall < 0.999:
            log(f"  WARNING: FAISS IndexFlat recall@10 is {flat.recall:.4f}, not ~1.0: check the ground truth")
        log("-- raw sqlite-vec")
        raw_rows, raw_builds, extra = run_raw_vec0(data, cores, floor, work, npy, binary)
        info.update(extra)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = sv_rows + faiss_rows + raw_rows
    builds = target_builds + sv_builds + faiss_builds + raw_builds
    others = watch.others_pct()
    if others > OTHER_CPU_WARN_PCT:
        log(f"  WARNING: other processes used {others:.0f} % of the CPU while {plan.name} ran: numbers are disturbed")
    return {"name": plan.name, "title": plan.title, "description": f"{data.description}; {plan.note}",
            "metric": plan.metric, "train_rows": len(data.train), "dim": data.dim, "queries": len(data.queries),
            "floor": floor, "other_cpu_pct": others, "rows": rows, "builds": builds,
            "targets": targets_for(data, rows, builds, cores)}


def to_json(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        out = asdict(value)
        for prop in ("label", "per_core", "passed"):
            if hasattr(value, prop):
                out[prop] = getattr(value, prop)
        return out
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small subsets and num_dbs 16 only (CI smoke run)")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results, or bench/results/quick)")
    parser.add_argument("--only", choices=("fashion", "synthetic"), help="run one data set")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where snapshots and databases are built (removed afterwards)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the work folders are removed

    build_dir = Path(os.environ.get("SHARDVEC_BUILD_DIR", ROOT / "build"))
    binary = (build_dir if build_dir.is_absolute() else ROOT / build_dir) / "raw_vec0"
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: run bench/run (it builds the raw_vec0 target)")
    out = args.out or (ROOT / "bench" / "results" / ("quick" if args.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count() or 1
    before = CpuWatch()
    time.sleep(1.0)
    if before.others_pct() > OTHER_CPU_WARN_PCT:
        log(f"WARNING: other processes use {before.others_pct():.0f} % of the CPU: the numbers will be disturbed")
    plans = make_plans(args.quick)
    info = machine_info(binary, args.work_dir)
    for plan in plans.values():
        if args.only in (None, plan.name):
            sweeps = "; ".join(f"num_dbs {n}: probes {','.join(map(str, p))}" for n, p in plan.sweeps.items())
            log(f"plan {plan.name}: {plan.train_rows} x queries {plan.query_rows}; {sweeps}; 1-thread <= "
                f"{plan.budget.latency_max} queries / {plan.budget.latency_s} s per setting; raw sqlite-vec "
                f"{plan.raw_vec0_queries} queries")
    datasets = [run_dataset(plan, binary, cores, args.work_dir, info) for plan in plans.values()
                if args.only in (None, plan.name)]
    (out / "results.md").write_text(markdown(info, datasets, args.quick))
    (out / "results.json").write_text(json.dumps(
        {"machine": info, "quick": args.quick, "k": K, "recall_target": RECALL_TARGET, "targets": TARGETS,
         "seconds": time.perf_counter() - START, "datasets": to_json(datasets)}, indent=1))
    plot(out / "recall_qps.png", datasets)
    log(f"wrote {out / 'results.md'}, results.json and recall_qps.png in {time.perf_counter() - START:.0f} s")
    return 1 if sanity_failures(datasets) else 0


def sanity_failures(datasets: list[dict[str, Any]]) -> list[str]:
    """Answers that must be exact whatever the speed: shardvec probing every shard, and FAISS's flat
    index, both reach recall@10 = 1 (ties aside). Logged; a non-empty list fails the run (CI smoke)."""
    failures = []
    for ds in datasets:
        for r in ds["rows"]:
            exact = r.system == "faiss-flat" or (r.system == "shardvec" and r.probes == r.num_dbs)
            if exact and r.recall < 0.999:
                failures.append(f"{ds['name']}: {r.label} {r.setting} recall@10 {r.recall:.4f} < 0.999")
    for failure in failures:
        log(f"FAILED: {failure}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
