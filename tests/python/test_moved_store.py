"""A store moved as a tree (``shutil.copytree``, ``cp -r``) reads from Python with the same answers;
and one copied with ``shardvec copy`` names only its own place."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from conftest import CLI
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy


def _answers(store: Path, cache: Path, queries: np.ndarray) -> list[list[tuple[int, float]]]:
    with ShardedVectorReader(s3_prefix=str(store), local_root=str(cache)) as reader:
        return [[(hit.id, hit.score) for hit in reader.search(q, top_k=5, num_probes=4).results] for q in queries]


def test_a_moved_store_and_a_copied_store_answer_as_the_original(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    data = rng.standard_normal((400, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=4, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=str(tmp_path / "original"), index_config=VectorIndexConfig(dim=8, metric=DistanceMetric.L2))
    write_arrays(data, config)
    before = _answers(tmp_path / "original", tmp_path / "cache-original", queries)

    shutil.copytree(tmp_path / "original", tmp_path / "moved")
    shutil.rmtree(tmp_path / "original")
    assert _answers(tmp_path / "moved", tmp_path / "cache-moved", queries) == before

    copied = subprocess.run([str(CLI), "copy", "--quiet", str(tmp_path / "moved"), str(tmp_path / "copied"),
                             "--staging-dir", str(tmp_path / "staging")], capture_output=True, text=True)
    assert copied.returncode == 0, copied.stderr
    assert _answers(tmp_path / "copied", tmp_path / "cache-copied", queries) == before
    pointer = (tmp_path / "copied" / "_CURRENT").read_text()
    assert f"file://{tmp_path / 'copied'}/manifests/" in pointer
    assert str(tmp_path / "moved") not in pointer and str(tmp_path / "original") not in pointer
