"""Sizes no memory holds, from Python: a sparse 100 GiB ``_CURRENT`` or manifest, a manifest whose
num_dbs is 2**40 and ``num_dbs=10**9`` raise the reference's error classes naming the limit, never
``MemoryError``; a shard that is a symlink is refused without copying what it points to."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from shardvec.errors import ConfigValidationError, ManifestParseError, ShardvecError
from shardvec.vector import write_sharded

from test_hostile_inputs import config, manifest_file, open_strict, published, records, run_sql

GIB_100 = 100 << 30


def make_sparse(path: Path, size: int) -> None:
    with open(path, "r+b" if path.exists() else "wb") as f:
        f.truncate(size)  # no disk used


def test_sparse_huge_current_raises_manifest_parse_error_naming_the_limit(tmp_path: Path) -> None:
    store = published(tmp_path)
    (store / "_CURRENT").unlink()
    make_sparse(store / "_CURRENT", GIB_100)
    with pytest.raises(ManifestParseError, match=rf"_CURRENT' is {GIB_100} bytes, more than the 65536 bytes"):
        open_strict(store, tmp_path)


def test_sparse_huge_manifest_raises_manifest_parse_error_naming_the_limit(tmp_path: Path) -> None:
    store = published(tmp_path)
    make_sparse(manifest_file(store), GIB_100)
    with pytest.raises(ManifestParseError, match=rf"is {GIB_100} bytes, more than the {256 << 20} bytes"):
        open_strict(store, tmp_path)


def test_manifest_num_dbs_2_pow_40_raises_manifest_parse_error(tmp_path: Path) -> None:
    store = published(tmp_path)
    run_sql(manifest_file(store), f"UPDATE build_meta SET num_dbs = {2 ** 40}")
    with pytest.raises(ManifestParseError, match=rf"num_dbs must be <= 1000000 \(got {2 ** 40}\)"):
        open_strict(store, tmp_path)


def test_num_dbs_above_the_limit_raises_config_validation_error(tmp_path: Path) -> None:
    cfg = config(tmp_path / "store")
    cfg.sharding.num_dbs = 10**9
    with pytest.raises(ConfigValidationError, match=r"num_dbs must be <= 1000000, got 1000000000"):
        write_sharded(records(), cfg)
    assert not (tmp_path / "store" / "_CURRENT").exists()


def test_shard_symlinked_outside_is_refused_and_never_copied(tmp_path: Path) -> None:
    store = published(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("secret line from outside the store\n")
    for shard in (store / "shards").rglob("shard.db"):
        shard.unlink()
        os.symlink(outside, shard)
    with open_strict(store, tmp_path) as reader:
        with pytest.raises(ShardvecError, match="symbolic link") as raised:
            reader.search(np.ones(4, np.float32), top_k=3, shard_ids=[0, 1])
    assert "secret line" not in str(raised.value)
    for cached in (tmp_path / "cache").rglob("*"):
        assert not cached.is_file() or b"secret line" not in cached.read_bytes()
