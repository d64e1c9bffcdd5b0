"""quantization="int8": shards carry int8 codes our reader pre-scans; answers keep the float32
scores (the same bits as a snapshot without codes), on a folder and on S3; "none" writes no codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec.errors import ConfigValidationError
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 48


def clustered(rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((24, DIM)).astype(np.float32) * 4
    return (centers[rng.integers(0, 24, rows)] + rng.standard_normal((rows, DIM))).astype(np.float32)


def config(prefix: str, quantization: str | None, storage: dict[str, Any]) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH), s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2, quantization=quantization), **storage)


def code_tables(store: Path) -> list[int]:
    counts = []
    for shard in sorted(store.glob("shards/run_id=*/db=*/attempt=*/shard.db")):
        with sqlite3.connect(f"file:{shard}?mode=ro", uri=True) as db:
            counts.append(db.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'shardvec_sq8%'").fetchone()[0])
    return counts


def test_int8_answers_keep_the_float_scores_and_find_nearly_every_neighbour(
        prefix_and_storage: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    prefix, storage = prefix_and_storage
    data = clustered(8000, 7)
    queries = data[::400] + np.float32(0.01)
    answers = {}
    for quantization in ("int8", "none"):
        store = f"{prefix}-{quantization}"
        write_arrays(data, config(store, quantization, storage))
        if not store.startswith("s3://"):
            assert code_tables(Path(store)) == ([2, 2] if quantization == "int8" else [0, 0])
        with ShardedVectorReader(s3_prefix=store, local_root=str(tmp_path / f"cache-{quantization}"), **storage) as reader:
            batch = [[(h.id, h.score) for h in r.results] for r in reader.batch_search(queries, top_k=10, num_probes=2)]
            alone = [[(h.id, h.score) for h in reader.search(q, top_k=10, num_probes=2).results] for q in queries]
            assert batch == alone
            answers[quantization] = batch
    found = 0
    for got, want in zip(answers["int8"], answers["none"]):
        exact = dict(want)
        assert len(got) == 10
        for ident, score in got:
            if ident in exact:
                assert score == exact[ident]  # the same float32 arithmetic, bit for bit
                found += 1
    assert found >= 0.95 * 10 * len(queries)


@pytest.mark.parametrize("bad", ["fp16", "INT8", "pq"])
def test_an_unknown_quantization_is_refused_naming_it(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigValidationError, match=f"index_config.quantization '{bad}' is not supported"):
        write_arrays(clustered(50, 1), config(str(tmp_path / "s"), bad, {}))
    assert not (tmp_path / "s" / "_CURRENT").exists()
