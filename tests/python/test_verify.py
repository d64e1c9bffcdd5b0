"""shardvec.verify (shardvec.admin) on a folder and on the S3 test server: a good snapshot is ok; a
truncated shard and a missing one are each named; bad arguments are refused naming them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shardvec
from shardvec import admin
from shardvec.config import WriterOutputConfig
from shardvec.errors import ConfigValidationError
from shardvec.vector import VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 8
VECTORS = np.random.default_rng(9).standard_normal((300, DIM)).astype(np.float32)


@pytest.fixture(params=["local", "s3"])
def published(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        creds = server["credentials"]
        prefix = server["prefix"]
        storage: dict[str, Any] = {"s3_connection_options": server["s3_connection_options"],
                                   "credential_provider": lambda: creds}
    else:
        prefix, storage = str(tmp_path / "store"), {}
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=3, strategy=VectorShardingStrategy.LSH),
        s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(run_id="r1", local_root=str(tmp_path / "build")),
        **storage,
    )
    write_arrays(VECTORS, config, ids=np.arange(len(VECTORS), dtype=np.int64))
    return prefix, storage


def test_the_package_exports_verify() -> None:
    assert shardvec.verify is admin.verify


def test_a_good_snapshot_is_ok_and_damage_is_named(published: tuple[str, dict[str, Any]]) -> None:
    prefix, storage = published
    report = shardvec.verify(prefix, **storage)
    assert report.ok, report.problems
    assert report.run_id == "r1"
    assert report.shards_read == report.shards_checked > 0
    assert report.problems == []

    keys = sorted(k for k in admin._engine.store_list_keys(prefix, admin._options(
        storage.get("credential_provider"), storage.get("s3_connection_options")), "shards/")
        if k.endswith("/shard.db"))
    options = admin._options(storage.get("credential_provider"), storage.get("s3_connection_options"))
    admin._engine.store_put(prefix, options, keys[0], b"truncated")
    bad = shardvec.verify(prefix, sample=1, seed=2, **storage)
    assert not bad.ok
    assert bad.seed == 2 and len(bad.sampled) == 1
    assert [(p.check, p.object) for p in bad.problems] == [
        ("size", admin._engine.store_url(prefix, options, keys[0]))]
    assert "the manifest records" in bad.problems[0].message


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sample": 0}, "sample must be an int >= 1"),
    ({"seed": 3}, "give sample too"),
    ({"run_id": "a", "offset": 0}, "at most one of run_id, ref or offset"),
    ({"max_workers": -1}, "max_workers must be an int >= 0"),
])
def test_bad_arguments_are_refused_naming_them(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigValidationError, match=message):
        shardvec.verify(str(tmp_path / "store"), **kwargs)


def test_reader_health_deep_verifies_the_shards_it_serves(published: tuple[str, dict[str, Any]],
                                                           tmp_path: Path) -> None:
    from shardvec.manifest_store import S3ManifestStore
    from shardvec.vector import ShardedVectorReader

    prefix, storage = published
    options = admin._options(storage.get("credential_provider"), storage.get("s3_connection_options"))
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache"), **storage) as reader:
        shallow = reader.health()
        assert shallow.status == "healthy" and shallow.deep is None
        good = reader.health(deep=True)
        assert good.status == "healthy" and good.deep.ok and good.deep.shards_read == 3
        assert good.deep.manifest_ref == good.manifest_ref
        with pytest.raises(ConfigValidationError, match="give deep=True too"):
            reader.health(sample=1)

        key = sorted(k for k in admin._engine.store_list_keys(prefix, options, "shards/") if k.endswith("/shard.db"))[0]
        data = bytearray(admin._engine.store_get(prefix, options, key))
        data[len(data) // 2] ^= 0xFF  # same size, other bytes
        admin._engine.store_put(prefix, options, key, bytes(data))
        bad = reader.health(deep=True)
        assert bad.status == "unhealthy"
        assert [(p.check, p.object) for p in bad.deep.problems] == [
            ("digest", admin._engine.store_url(prefix, options, key))]
        # The check reads what the store holds, through the manifest store the reader was given too.
        assert not shardvec.verify(prefix, manifest_store=S3ManifestStore(prefix, **storage), **storage).ok
