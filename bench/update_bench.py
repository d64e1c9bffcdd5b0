"""Incremental updates against a full build: the time to publish and the bytes uploaded of a 1 % upsert
(random existing ids, new vectors), a 1 % append (new ids) and a 1 % append concentrated in one
region of the space (new ids near one of the set's cluster centres, so they route to a shard or two)
on a CLUSTER snapshot, each against a full build of the same records in the same script, and the search speed and recall after the updates
against a full rebuild of the final records.

Run: .venv/bin/python bench/update_bench.py [--rows 1000000] [--shards 64] [--share 0.01] [--queries 1000]
     [--work-dir /tmp] [--compact] [--quantization none|int8] [--out FILE.json]

The synthetic clustered cosine set (bench/synthetic_data.py, bench/suite.py's 1M x 384 set) is built
into a local-folder store (trained centroids, sub-lists, as the suite builds it; build folder and
store on one file system). The upserted vectors are fresh points of the same distribution (a
third stream). Bytes uploaded are the bytes of the objects the update's run wrote (its shards, id
index and manifest). Reads: ``batch_search`` of the query stream at the snapshot's default probing
(top 10; one warm-up pass, then the best of 3) and recall@10 against exact NumPy search over the final
records. Beside each update: the time to copy its shard files and fsync them (2 threads, same file
system), the least an update that rewrites those shards whole can take on this machine; and the time
the disk alone takes to write as many bytes (O_DIRECT, the page cache bypassed, 4 streams, fsynced).
``--compact`` also times the same two updates with ``compact=True`` (every touched shard
rebuilt whole) on a second copy of the built store. ``--quantization int8`` builds the snapshots with
int8 codes (each update then edits the codes in place too).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic_data  # noqa: E402

UPSERTS = 3  # the stream of the upserted and appended vectors
TOP_K = 10


QUANTIZATION = "none"  # --quantization


def config_for(store: Path, build_root: Path, shards: int) -> Any:
    from shardvec.config import WriterOutputConfig
    from shardvec.vector import VectorShardedWriteConfig
    from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
    from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

    return VectorShardedWriteConfig(
        s3_prefix=str(store),
        index_config=VectorIndexConfig(dim=synthetic_data.SYNTH_DIM, metric=DistanceMetric("cosine"),
                                       quantization=QUANTIZATION),
        sharding=VectorShardingConfig(num_dbs=shards, strategy=VectorShardingStrategy.CLUSTER, num_probes=1,
                                      train_centroids=True),
        output=WriterOutputConfig(local_root=str(build_root)),
    )


def run_bytes(store: Path, run_id: str) -> int:
    """Bytes of every object under the store whose key names the run."""
    return sum(p.stat().st_size for p in store.rglob("*") if p.is_file() and f"run_id={run_id}" in str(p))


def durable_copy_seconds(store: Path, run_id: str, scratch: Path) -> float:
    """The least time any update that writes the run's shards can take here: the shard files the run
    uploaded, copied (on 2 threads, as the update's pool) into `scratch` on the store's file system and
    fsynced, from a page cache that already holds them. An update that rewrites a shard whole writes at
    least these bytes durably."""
    from concurrent.futures import ThreadPoolExecutor

    files = [p for p in store.rglob("shard.db") if f"run_id={run_id}" in str(p)]
    scratch.mkdir(parents=True)

    def copy(i: int) -> None:
        dest = scratch / f"{i}.db"
        shutil.copyfile(files[i], dest)
        with open(dest, "rb+") as f:
            os.fsync(f.fileno())

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(copy, range(len(files))))
    seconds = time.perf_counter() - t0
    shutil.rmtree(scratch)
    return seconds


def direct_write_seconds(nbytes: int, scratch: Path) -> float:
    """The disk's own floor for `nbytes`: the time to write that many bytes (each stream's share rounded
    up to 8 MiB) with O_DIRECT (the page cache bypassed) on 4 threads into `scratch` on the store's file system, each file fsynced. Any
    update that must make those bytes durable waits at least this long for the disk."""
    import mmap
    from concurrent.futures import ThreadPoolExecutor

    block = 8 << 20
    streams = 4
    scratch.mkdir(parents=True)
    per_stream = -(-nbytes // streams)

    def write(i: int) -> None:
        buf = mmap.mmap(-1, block)  # page-aligned, as O_DIRECT needs
        buf.write(np.random.default_rng(i).integers(0, 255, block, dtype=np.uint8).tobytes())
        fd = os.open(scratch / f"{i}.bin", os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
        try:
            left = per_stream
            while left > 0:
                left -= os.write(fd, buf)
            os.fsync(fd)
        finally:
            os.close(fd)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        list(pool.map(write, range(streams)))
    seconds = time.perf_counter() - t0
    shutil.rmtree(scratch)
    return seconds


def build(vectors: np.ndarray, ids: np.ndarray, store: Path, build_root: Path, shards: int) -> dict[str, Any]:
    from shardvec.vector import write_arrays

    t0 = time.perf_counter()
    result = write_arrays(vectors, config_for(store, build_root, shards), ids=ids)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "bytes": run_bytes(store, result.run_id), "run_id": result.run_id}


def update(store: Path, build_root: Path, shards: int, vectors: np.ndarray, ids: np.ndarray,
           compact: bool) -> dict[str, Any]:
    from shardvec.vector import update_sharded

    t0 = time.perf_counter()
    result = update_sharded({"vectors": vectors, "ids": ids}, None, config_for(store, build_root, shards),
                            compact=compact)
    seconds = time.perf_counter() - t0
    r = result.report
    return {"seconds": seconds, "bytes": run_bytes(store, result.build.run_id), "run_id": result.build.run_id,
            "rebuilt": len(r.rebuilt), "edited_in_place": len(r.edited_in_place), "shared": r.shared_shards,
            "replaced": r.replaced, "upserted": r.upserted}


def reads(store: Path, cache: Path, queries: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    from shardvec.vector import ShardedVectorReader

    with ShardedVectorReader(s3_prefix=str(store), local_root=str(cache)) as reader:
        reader.batch_search(queries, TOP_K)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            responses = reader.batch_search(queries, TOP_K)
            best = min(best, time.perf_counter() - t0)
    hits = sum(len(set(int(h.id) for h in resp.results) & set(truth[q].tolist())) for q, resp in enumerate(responses))
    return {"qps": len(queries) / best, "recall": hits / (len(queries) * TOP_K)}


def exact_top(corpus: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Ids of the TOP_K nearest rows by cosine distance, per query."""
    unit = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    out = np.empty((len(queries), TOP_K), dtype=np.int64)
    for start in range(0, len(q), 100):
        sims = q[start:start + 100] @ unit.T
        top = np.argpartition(-sims, TOP_K, axis=1)[:, :TOP_K]
        out[start:start + 100] = ids[top]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--share", type=float, default=0.01, help="rows upserted, and rows appended, as a share")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--work-dir", default="/tmp")
    parser.add_argument("--compact", action="store_true", help="also time the updates with compact=True")
    parser.add_argument("--quantization", choices=("none", "int8"), default="none",
                        help="the snapshots' index_config.quantization")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    global QUANTIZATION
    QUANTIZATION = args.quantization

    work = Path(tempfile.mkdtemp(prefix="shardvec-update-bench-", dir=args.work_dir))
    try:
        corpus = synthetic_data.draw(args.rows, synthetic_data.CORPUS)
        ids = np.arange(args.rows, dtype=np.int64)
        queries = synthetic_data.draw(args.queries, synthetic_data.QUERIES)
        changed = max(1, int(args.rows * args.share))
        fresh = synthetic_data.draw(2 * changed, UPSERTS)
        centres = np.random.default_rng(synthetic_data.SYNTH_SEED).standard_normal(
            (synthetic_data.SYNTH_CENTRES, synthetic_data.SYNTH_DIM), dtype=np.float32)
        noise = np.random.default_rng(11).standard_normal((changed, synthetic_data.SYNTH_DIM), dtype=np.float32)
        local = centres[0] + np.float32(synthetic_data.SYNTH_SIGMA) * noise
        rng = np.random.default_rng(7)
        upsert_ids = np.sort(rng.choice(args.rows, changed, replace=False)).astype(np.int64)
        append_ids = np.arange(args.rows, args.rows + changed, dtype=np.int64)
        local_ids = np.arange(args.rows + changed, args.rows + 2 * changed, dtype=np.int64)

        result: dict[str, Any] = {"rows": args.rows, "shards": args.shards, "dim": synthetic_data.SYNTH_DIM,
                                  "changed_rows": changed, "quantization": args.quantization}
        store = work / "store"
        print(f"building {args.rows} x {synthetic_data.SYNTH_DIM} into {args.shards} shards", file=sys.stderr)
        result["build"] = build(corpus, ids, store, work / "build", args.shards)
        print(f"  build: {result['build']['seconds']:.2f} s", file=sys.stderr)
        if args.compact:
            shutil.copytree(store, work / "store-compact")
        for name, vecs, vec_ids in (("upsert", fresh[:changed], upsert_ids), ("append", fresh[changed:], append_ids),
                                    ("append_local", local, local_ids)):
            result[name] = update(store, work / "build", args.shards, vecs, vec_ids, compact=False)
            result[name]["durable_copy_seconds"] = durable_copy_seconds(store, result[name]["run_id"], work / "floor")
            try:
                result[name]["disk_write_seconds"] = direct_write_seconds(result[name]["bytes"], work / "floor")
            except OSError as e:  # a file system without O_DIRECT (tmpfs)
                print(f"  no O_DIRECT floor in {work}: {e}", file=sys.stderr)
                shutil.rmtree(work / "floor", ignore_errors=True)
                result[name]["disk_write_seconds"] = float("nan")
            ratio = result[name]["seconds"] / result["build"]["seconds"]
            print(f"  {name} {changed} rows: {result[name]['seconds']:.2f} s = {ratio:.3f}x the build; "
                  f"{result[name]['edited_in_place']} of {result[name]['rebuilt']} touched shards edited in place; "
                  f"{result[name]['bytes'] / 1e6:.1f} MB uploaded; a durable copy of its shard files alone: "
                  f"{result[name]['durable_copy_seconds']:.2f} s; the disk writing as many bytes (O_DIRECT): "
                  f"{result[name]['disk_write_seconds']:.2f} s", file=sys.stderr)
            if args.compact:
                result[name + "_compact"] = update(work / "store-compact", work / "build", args.shards, vecs, vec_ids,
                                                   compact=True)
                print(f"  {name} with compact=True: {result[name + '_compact']['seconds']:.2f} s", file=sys.stderr)
        # The final records, built in full.
        final = corpus.copy()
        final[upsert_ids] = fresh[:changed]
        final = np.concatenate([final, fresh[changed:], local])
        final_ids = np.concatenate([ids, append_ids, local_ids])
        rebuilt_store = work / "rebuilt"
        result["rebuild"] = build(final, final_ids, rebuilt_store, work / "build", args.shards)
        print(f"  full rebuild of the final records: {result['rebuild']['seconds']:.2f} s", file=sys.stderr)
        truth = exact_top(final, final_ids, queries)
        result["reads_updated"] = reads(store, work / "cache-u", queries, truth)
        result["reads_rebuilt"] = reads(rebuilt_store, work / "cache-r", queries, truth)
        for name in ("upsert", "append", "append_local"):
            result[name]["time_vs_build"] = result[name]["seconds"] / result["build"]["seconds"]
            result[name]["bytes_vs_build"] = result[name]["bytes"] / result["build"]["bytes"]
            result[name]["durable_copy_vs_build"] = result[name]["durable_copy_seconds"] / result["build"]["seconds"]
            result[name]["disk_write_vs_build"] = result[name]["disk_write_seconds"] / result["build"]["seconds"]
        result["read_qps_vs_rebuilt"] = result["reads_updated"]["qps"] / result["reads_rebuilt"]["qps"]
        print(json.dumps(result, indent=2))
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
