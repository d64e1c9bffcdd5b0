"""CEL sharding from Python: records carry routing_context, queries name theirs, and the snapshot
puts every record in its expression's shard (checked against an independent xxh3 and list index)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

from shardvec.errors import ConfigValidationError, UnknownRoutingTokenError
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_arrays, write_sharded
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 12
REGIONS = ["eu", "us", "apac"]


def cel_config(prefix: Path, **sharding: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(strategy=VectorShardingStrategy.CEL, **sharding),
        s3_prefix=str(prefix),
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        batch_size=64,
    )


def stored_ids(manifest_shards: list[Any]) -> dict[int, set[int]]:
    out = {}
    for shard in manifest_shards:
        path = shard.db_url.removeprefix("file://") + "/shard.db"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            out[shard.db_id] = {json.loads(r[0])["v"] for r in db.execute("SELECT original_id FROM vec_id_map")}
    return out


def exact_top(data: np.ndarray, rows: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    distances = ((data[rows] - query) ** 2).sum(axis=1)
    return [int(rows[i]) for i in np.argsort(distances, kind="stable")[:k]]


def test_categorical_records_stream_in_and_queries_search_their_region(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.standard_normal((900, DIM)).astype(np.float32)
    region = [REGIONS[i * 5 % 7 % 3] for i in range(900)]
    records = (VectorRecord(id=i, vector=data[i], routing_context={"region": region[i]}) for i in range(900))
    result = write_sharded(records, cel_config(tmp_path / "s", cel_expr="region", cel_columns={"region": "string"},
                                               routing_values=REGIONS))
    assert result.num_dbs == 3
    stored = stored_ids(result.winners)
    for db, name in enumerate(REGIONS):
        assert stored[db] == {i for i in range(900) if region[i] == name}

    with ShardedVectorReader(s3_prefix=str(tmp_path / "s"), local_root=str(tmp_path / "cache")) as reader:
        for db, name in enumerate(REGIONS):
            rows = np.flatnonzero([r == name for r in region])
            for query in rng.standard_normal((10, DIM)).astype(np.float32):
                response = reader.search(query, top_k=10, routing_context={"region": name})
                assert response.num_shards_queried == 1
                assert [h.id for h in response.results] == exact_top(data, rows, query, 10)
            assert reader.route_vector(data[0], routing_context={"region": name}) == [db]
        batch = reader.batch_search(data[:3], top_k=5, routing_context={"region": "us"})
        assert all(r.num_shards_queried == 1 for r in batch)

        with pytest.raises(UnknownRoutingTokenError, match="'mars'|\"mars\""):
            reader.search(data[0], routing_context={"region": "mars"})
        with pytest.raises(ConfigValidationError, match="requires routing_context"):
            reader.search(data[0])
        with pytest.raises(ConfigValidationError, match="region"):
            reader.search(data[0], routing_context={"region": 7})
        assert reader.search(data[0], shard_ids=[0, 1, 2]).num_shards_queried == 3


def test_hashed_buckets_from_arrays_match_an_independent_xxh3(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    data = rng.standard_normal((400, DIM)).astype(np.float32)
    tenants = [f"tenant-{i % 53}-é" if i % 3 else int(v) for i, v in enumerate(rng.integers(-2**63, 2**63 - 1, 400))]
    contexts = [{"s": t} if isinstance(t, str) else {"n": t} for t in tenants]
    # One expression over either variable: strings hash their UTF-8, ints their 8 little-endian bytes.
    config = cel_config(tmp_path / "s", cel_expr="int((has_s ? shard_hash(s) : shard_hash(n)) % 8u)",
                        cel_columns={"s": "string", "n": "int", "has_s": "bool"}, num_dbs=8)
    for context in contexts:
        context["has_s"] = "s" in context
    result = write_arrays(data, config, routing_contexts=contexts)

    def canonical(t: int | str) -> bytes:
        return t.encode() if isinstance(t, str) else t.to_bytes(8, "little", signed=True)

    expected: dict[int, set[int]] = {}
    for i, t in enumerate(tenants):
        expected.setdefault(xxhash.xxh3_64_intdigest(canonical(t)) % 8, set()).add(i)
    assert stored_ids(result.winners) == expected


def test_bad_records_and_configs_raise_clear_errors(tmp_path: Path) -> None:
    data = np.ones((4, DIM), dtype=np.float32)
    config = cel_config(tmp_path / "a", cel_expr="region", cel_columns={"region": "string"}, routing_values=REGIONS)
    with pytest.raises(UnknownRoutingTokenError, match="is not in routing_values"):
        write_arrays(data, config, routing_contexts=[{"region": "eu"}, {"region": "mars"}, None, None])
    with pytest.raises(ConfigValidationError, match="requires routing_context"):
        write_arrays(data, config, routing_contexts=[{"region": "eu"}, None, None, None])
    with pytest.raises(ConfigValidationError, match="requires routing_context"):
        write_arrays(data, config)
    assert not (tmp_path / "a" / "_CURRENT").exists()

    cases = {
        "routing_values must not be empty": dict(cel_expr="r", cel_columns={"r": "string"}, routing_values=[]),
        r"routing_values\[1\] is True": dict(cel_expr="r", cel_columns={"r": "string"}, routing_values=["a", True]),
        "repeats the token": dict(cel_expr="r", cel_columns={"r": "string"}, routing_values=["a", "a"]),
        "undeclared reference to 'x'": dict(cel_expr="x", cel_columns={"r": "string"}, routing_values=["a"]),
        "num_dbs must be provided": dict(cel_expr="r", cel_columns={"r": "int"}),
        "requires cel_columns": dict(cel_expr="r", routing_values=["a"]),
    }
    for message, sharding in cases.items():
        with pytest.raises(ConfigValidationError, match=message):
            write_arrays(data, cel_config(tmp_path / "b", **sharding),
                         routing_contexts=[{"r": "a"}] * 4)


def test_bytes_tokens_and_uint_variables(tmp_path: Path) -> None:
    data = np.random.default_rng(3).standard_normal((60, DIM)).astype(np.float32)
    keys = [b"\x00a", b"\xffz", b"plain"]
    config = cel_config(tmp_path / "s", cel_expr="key", cel_columns={"key": "bytes"}, routing_values=keys)
    result = write_arrays(data, config, routing_contexts=[{"key": keys[i % 3]} for i in range(60)])
    assert stored_ids(result.winners) == {db: set(range(db, 60, 3)) for db in range(3)}
    with ShardedVectorReader(s3_prefix=str(tmp_path / "s"), local_root=str(tmp_path / "cache")) as reader:
        assert reader.route_vector(data[0], routing_context={"key": b"\xffz"}) == [1]
        with pytest.raises(UnknownRoutingTokenError):
            reader.route_vector(data[0], routing_context={"key": b"nope"})
        with pytest.raises(ConfigValidationError, match=r"routing_context\['key'\] must be bytes"):
            reader.route_vector(data[0], routing_context={"key": "plain"})  # str is not bytes

    config = cel_config(tmp_path / "u", cel_expr="int(slot % 4u)", cel_columns={"slot": "uint"}, num_dbs=4)
    result = write_arrays(data[:8], config, routing_contexts=[{"slot": 2**64 - 1 - i} for i in range(8)])
    assert stored_ids(result.winners) == {db: {i for i in range(8) if (2**64 - 1 - i) % 4 == db} for db in range(4)}
    with pytest.raises(ConfigValidationError, match="slot"):
        write_arrays(data[:1], config, routing_contexts=[{"slot": -1}])
