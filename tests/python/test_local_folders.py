"""Local folders and threads from Python: the reader's cache and the writer's build folder default to
this user's private folder, folders others could write are refused, and worker counts outside
1..1024 or threads the system refuses raise a shardvec exception instead of crashing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import shards_downloaded
from shardvec.errors import ConfigValidationError
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_sharded
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 4


def publish(store: Path) -> None:
    rng = np.random.default_rng(3)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.EXPLICIT),
        s3_prefix=str(store),
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
    )
    write_sharded([VectorRecord(id=i, vector=rng.standard_normal(DIM).astype(np.float32), shard_id=i % 2)
                   for i in range(20)], config)


def test_default_folders_are_this_users_private_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    store = tmp_path / "store"
    publish(store)
    shards_downloaded(store)  # so the cache receives them
    with ShardedVectorReader(s3_prefix=str(store)) as reader:
        assert len(reader.search(np.zeros(DIM, np.float32), top_k=3, shard_ids=[0, 1]).results) == 3
    root = tmp_path / "xdg" / "shardvec"
    for level in (root, root / "build", root / "shards"):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level
    assert list((root / "build").iterdir()) == []  # the build left nothing behind
    assert any(p.name == "shard.db" for p in (root / "shards").rglob("*"))


def test_a_cache_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish(store)
    cache = tmp_path / "open"
    cache.mkdir()
    cache.chmod(0o777)
    with pytest.raises(ConfigValidationError, match=r"'.*open' is not private: its mode 0777 lets others write it"):
        ShardedVectorReader(s3_prefix=str(store), local_root=str(cache))
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("max_workers", [-1, 1025])
def test_max_workers_outside_the_bound_is_refused(tmp_path: Path, max_workers: int) -> None:
    store = tmp_path / "store"
    publish(store)
    with pytest.raises(ConfigValidationError, match=rf"max_workers must be in 0\.\.1024.*got {max_workers}"):
        ShardedVectorReader(s3_prefix=str(store), local_root=str(tmp_path / "cache"), max_workers=max_workers)


def open_reader_with_refused_threads(store: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    """A reader asking for 1000 workers in a child whose address space is capped a little above its size
    after import: 1000 thread stacks (8 MiB each) no longer fit. RLIMIT_NPROC would be the natural
    limit, but root ignores it. The child prints the error's class, engine_code, engine_kind,
    retryable and message."""
    script = textwrap.dedent("""
        import resource, sys
        from shardvec.errors import ShardvecError
        from shardvec.vector import ShardedVectorReader
        size = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmSize:"))
        cap = size + (256 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            ShardedVectorReader(s3_prefix=sys.argv[1], local_root=sys.argv[2], max_workers=1000)
        except ShardvecError as e:
            print(type(e).__name__, e.engine_code, e.engine_kind, e.retryable, str(e))
        else:
            print("no error")
    """)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", script, str(store), str(cache)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_threads_the_system_refuses_raise_instead_of_crashing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    publish(store)
    child = open_reader_with_refused_threads(store, tmp_path / "cache")
    assert child.returncode == 0, child.stderr
    assert child.stdout.startswith("ShardvecError "), child.stdout + child.stderr
    assert "cannot start a thread for the reader's searches (max_workers)" in child.stdout
    assert "1000 threads asked for" in child.stdout
