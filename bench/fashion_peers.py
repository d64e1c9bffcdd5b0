"""A quick same-run comparison on Fashion-MNIST (about 6 minutes): shardvec at 16 and 64 shards (whole
shards, sub-lists, sub-lists + int8 codes) against hnswlib M16/M32 (efConstruction 200) and FAISS IVFFlat
at nlist 1024; recall@10 (a hit counts when its exact distance is within the exact 10th) and
one-thread QPS over the first 1000 test images, one query per call. Needs bench/requirements.txt
(bench/run --install-only). Run: .venv/bin/python bench/fashion_peers.py"""
import gzip
import shutil
import tempfile
import time

import numpy as np
from shardvec.vector import write_arrays, ShardedVectorReader
from shardvec.vector.config import VectorIndexConfig, VectorShardedWriteConfig, VectorShardingConfig

def idx(path, n=None):
    raw = gzip.open(path).read(); cnt = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw[16:], np.uint8).reshape(cnt, 784)[:n].astype(np.float32)
D = "/usr/share/datasets/fashion-mnist/"
X = idx(D + "train-images-idx3-ubyte.gz"); Q = idx(D + "t10k-images-idx3-ubyte.gz", 1000)
d2 = ((Q**2).sum(1)[:, None] - 2 * Q @ X.T + (X**2).sum(1)[None])
kth = np.sort(d2, 1)[:, 9]
def recall(ids):
    hits = 0
    for q, row in enumerate(ids):
        for i in row:
            if i >= 0 and d2[q, i] <= kth[q] * (1 + 1e-6): hits += 1
    return hits / (10 * len(ids))
def timeit(fn):
    t = time.perf_counter(); out = fn(); return out, time.perf_counter() - t
print(f"{'system':38s} {'setting':12s} {'recall':>7s} {'1t QPS':>9s} {'build s':>8s}", flush=True)
import hnswlib
for M in (16, 32):
    idxh = hnswlib.Index(space="l2", dim=784); t = time.perf_counter()
    idxh.init_index(max_elements=len(X), M=M, ef_construction=200); idxh.add_items(X, np.arange(len(X))); bt = time.perf_counter() - t
    idxh.set_num_threads(1)
    for ef in (10, 16, 24, 40, 64):
        idxh.set_ef(ef)
        res, dt = timeit(lambda: [idxh.knn_query(Q[i:i+1], k=10)[0][0] for i in range(len(Q))])
        print(f"{'hnswlib M'+str(M):38s} {'ef='+str(ef):12s} {recall(res):7.4f} {len(Q)/dt:9.0f} {bt:8.1f}", flush=True)
import faiss
faiss.omp_set_num_threads(2)
for nlist in (1024,):
    qz = faiss.IndexFlatL2(784); ivf = faiss.IndexIVFFlat(qz, 784, nlist); t = time.perf_counter()
    ivf.train(X); ivf.add(X); bt = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    for nprobe in (4, 8, 16):
        ivf.nprobe = nprobe
        res, dt = timeit(lambda: [ivf.search(Q[i:i+1], 10)[1][0] for i in range(len(Q))])
        print(f"{'FAISS IVFFlat nlist='+str(nlist):38s} {'nprobe='+str(nprobe):12s} {recall(res):7.4f} {len(Q)/dt:9.0f} {bt:8.1f}", flush=True)
    faiss.omp_set_num_threads(2)
work = tempfile.mkdtemp(dir="/dev/shm")
ids = np.arange(len(X))
for num_dbs in (16, 64):
    for name, sub, quant in (("whole shards", 1, None), ("sub-lists", 0, None), ("sub-lists+int8", 0, "int8")):
        store = f"{work}/s{num_dbs}_{sub}_{quant}"
        cfg = VectorShardedWriteConfig(s3_prefix=store, index_config=VectorIndexConfig(dim=784, metric="l2", quantization=quant),
                                       sharding=VectorShardingConfig(num_dbs=num_dbs, strategy="cluster", train_centroids=True, sublists_per_shard=sub))
        t = time.perf_counter(); write_arrays(X, cfg, ids=ids); bt = time.perf_counter() - t
        r = ShardedVectorReader(s3_prefix=store, max_workers=1)
        r.search(Q[0], top_k=10, num_probes=num_dbs)  # every shard opened before the clock starts
        for p in (1, 2, 4, 8):
            if p > num_dbs: continue
            res, dt = timeit(lambda: [[h.id for h in r.search(Q[i], top_k=10, num_probes=p).results] for i in range(len(Q))])
            print(f"{'shardvec '+str(num_dbs)+' shards, '+name:38s} {'probes='+str(p):12s} {recall(res):7.4f} {len(Q)/dt:9.0f} {bt:8.1f}", flush=True)
        r.close()
shutil.rmtree(work, ignore_errors=True)
