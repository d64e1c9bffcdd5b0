"""The reader's hits equal sqlite-vec's own ``SELECT … MATCH`` bit for bit: ids, float scores and order.

Each shard file is queried with SQLite and the pinned sqlite-vec wheel's ``vec0`` (``sqlite_vec.loadable_path()``),
independently of shardvec, through the C library by ctypes (a Python built without loadable-extension
support, as pyenv builds it by default, has no ``enable_load_extension``); several shards are merged the way the reference merges per-shard lists
(``heapq.nsmallest`` over their concatenation, by score). Data: random rows, and rows a few float ulps
apart (plus exact copies, also across shards), which the reader's SIMD scan alone puts in another order.
The shards are small, so the writer sizes their pages and vec0 chunks to their rows (compact shards).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import heapq
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import sqlite_vec

from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

NUM_DBS = 3


def near_ties(rows: int, dim: int, seed: int) -> np.ndarray:
    """Rows a few ulps around 3 centres, every 7th an exact copy of an earlier row."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, dim)).astype(np.float32)
    data = centres[np.arange(rows) % 3].copy()
    for r in range(3, rows):
        if r % 7 == 3:
            data[r] = data[r - 3]
            continue
        cols = rng.integers(0, dim, 3)
        data[r, cols] = np.nextafter(data[r, cols], np.where(rng.random(3) < 0.5, np.float32(1e30), np.float32(-1e30)))
    return data


def datasets(dim: int) -> dict[str, np.ndarray]:
    return {"random": np.random.default_rng(dim).standard_normal((900, dim)).astype(np.float32),
            "near-ties": near_ties(900, dim, dim)}


def queries_for(data: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(7)
    q = rng.standard_normal((6, data.shape[1])).astype(np.float32)
    q[:3] = data[:3]
    q[3] = data[0]
    q[3, 0] = np.nextafter(q[3, 0], np.float32(1e30))
    return q


_lib = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
_lib.sqlite3_open_v2.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_char_p]
_lib.sqlite3_enable_load_extension.argtypes = [ctypes.c_void_p, ctypes.c_int]
_lib.sqlite3_load_extension.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.POINTER(ctypes.c_char_p)]
_lib.sqlite3_prepare_v2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                                    ctypes.c_void_p]
_lib.sqlite3_bind_blob.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
_lib.sqlite3_bind_int64.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int64]
_lib.sqlite3_step.argtypes = [ctypes.c_void_p]
_lib.sqlite3_column_int64.argtypes = [ctypes.c_void_p, ctypes.c_int]
_lib.sqlite3_column_int64.restype = ctypes.c_int64
_lib.sqlite3_column_double.argtypes = [ctypes.c_void_p, ctypes.c_int]
_lib.sqlite3_column_double.restype = ctypes.c_double
_lib.sqlite3_finalize.argtypes = [ctypes.c_void_p]
_lib.sqlite3_close.argtypes = [ctypes.c_void_p]
_lib.sqlite3_errmsg.argtypes = [ctypes.c_void_p]
_lib.sqlite3_errmsg.restype = ctypes.c_char_p
SQLITE_OPEN_READONLY, SQLITE_ROW, SQLITE_TRANSIENT = 1, 100, ctypes.c_void_p(-1)


def match(shard: Path, query: np.ndarray, k: int) -> list[tuple[int | str, float]]:
    """sqlite-vec's own KNN on one shard file, ids decoded from vec_id_map."""
    db = ctypes.c_void_p()
    assert _lib.sqlite3_open_v2(str(shard).encode(), ctypes.byref(db), SQLITE_OPEN_READONLY, None) == 0
    try:
        _lib.sqlite3_enable_load_extension(db, 1)
        error = ctypes.c_char_p()
        assert _lib.sqlite3_load_extension(db, sqlite_vec.loadable_path().encode(), b"sqlite3_vec_init",
                                           ctypes.byref(error)) == 0, error.value
        stmt = ctypes.c_void_p()
        sql = b"SELECT rowid, distance FROM vec_index WHERE embedding MATCH ? AND k = ?"
        assert _lib.sqlite3_prepare_v2(db, sql, -1, ctypes.byref(stmt), None) == 0, _lib.sqlite3_errmsg(db)
        blob = query.astype(np.float32).tobytes()
        _lib.sqlite3_bind_blob(stmt, 1, blob, len(blob), SQLITE_TRANSIENT)
        _lib.sqlite3_bind_int64(stmt, 2, k)
        rows = []
        while _lib.sqlite3_step(stmt) == SQLITE_ROW:
            rows.append((_lib.sqlite3_column_int64(stmt, 0), _lib.sqlite3_column_double(stmt, 1)))
        _lib.sqlite3_finalize(stmt)
    finally:
        _lib.sqlite3_close(db)
    with sqlite3.connect(f"file:{shard}?mode=ro", uri=True) as plain:  # the id map needs no vec0
        ids = dict(plain.execute("SELECT internal_id, original_id FROM vec_id_map").fetchall())
    return [(json.loads(ids[rowid])["v"], distance) for rowid, distance in rows]


def build(tmp_path: Path, name: str, data: np.ndarray, metric: DistanceMetric) -> tuple[str, list[Path]]:
    prefix = str(tmp_path / name)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=NUM_DBS, strategy=VectorShardingStrategy.EXPLICIT),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=data.shape[1], metric=metric))
    # Shard i holds rows i, i+3, …, and shard 2 also repeats shard 0's first 20 rows (cross-shard ties).
    rows = np.concatenate([np.arange(len(data)), np.arange(0, 60, 3)])
    shard_ids = np.concatenate([np.arange(len(data)) % NUM_DBS, np.full(20, 2)])
    result = write_arrays(data[rows], config, ids=np.arange(len(rows)), shard_ids=shard_ids)
    shards = {w.db_id: Path(w.db_url.removeprefix("file://")) / "shard.db" for w in result.winners}
    for shard in shards.values():  # small shards sized to their rows: 4 KiB pages (bytes 16-17 of the header)
        assert int.from_bytes(shard.read_bytes()[16:18], "big") == 4096, shard
    return prefix, [shards[i] for i in range(NUM_DBS)]


@pytest.mark.parametrize("metric", [DistanceMetric.L2, DistanceMetric.COSINE])
@pytest.mark.parametrize("dim", [17, 128])
def test_hits_equal_sqlite_vec_match_bit_for_bit(tmp_path: Path, metric: DistanceMetric, dim: int) -> None:
    for name, data in datasets(dim).items():
        prefix, shards = build(tmp_path, name, data, metric)
        queries = queries_for(data)
        with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / f"cache-{name}")) as reader:
            for k in (1, 10, 40):
                batch = reader.batch_search(queries, top_k=k, shard_ids=list(range(NUM_DBS)))
                for q, query in enumerate(queries):
                    where = f"{name} {metric.value} dim {dim} k {k} query {q}"
                    per_shard = [match(shard, query, k) for shard in shards]
                    for db_id, want in enumerate(per_shard):
                        got = reader.search(query, top_k=k, shard_ids=[db_id]).results
                        assert [(h.id, h.score) for h in got] == want, f"{where} shard {db_id}"
                    merged = heapq.nsmallest(k, [hit for hits in per_shard for hit in hits], key=lambda h: h[1])
                    alone = reader.search(query, top_k=k, shard_ids=list(range(NUM_DBS))).results
                    assert [(h.id, h.score) for h in alone] == merged, f"{where} merged"
                    assert [(h.id, h.score) for h in batch[q].results] == merged, f"{where} merged (batch)"
