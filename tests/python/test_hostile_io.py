"""Text someone else wrote, from Python: a shard's hostile payloads come back as the documented
``{"__raw_payload__": "<text>"}`` fallback (never ``JSONDecodeError``, ``RecursionError`` or
``UnicodeDecodeError``), and text that cannot be UTF-8 is a ``ConfigValidationError`` naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash

from shardvec.errors import ConfigValidationError
from shardvec.vector import ShardedVectorReader, VectorRecord, VectorShardedWriteConfig, write_sharded
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.reader import RAW_PAYLOAD_KEY
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy
from shardvec.vector.writer import write_arrays

DIM = 4
DEEP = 300_000  # nesting of the deepest hostile payload


def config(store: Path | str) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=1, strategy=VectorShardingStrategy.EXPLICIT),
        s3_prefix=str(store),
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
    )


def run_sql(path: Path, sql: str) -> None:
    # In a child process (importing sqlite3 here would initialise SQLite before the engine does); the
    # script goes through stdin, as it can be larger than one command-line argument may be.
    subprocess.run([sys.executable, "-c", "import sqlite3, sys; db = sqlite3.connect(sys.argv[1]); "
                    "db.executescript(sys.stdin.read()); db.commit()", str(path)], input=sql, text=True, check=True)


def published_with_payloads(tmp_path: Path, stored: list[bytes]) -> Path:
    """One shard whose payload rows (in rowid order) hold the raw bytes ``stored``, its size and
    digest resealed in the manifest as a writer would have written them."""
    store = tmp_path / "store"
    write_sharded([VectorRecord(id=f"doc-{i}", vector=[i, 1, 0, 0], payload={"n": i}, shard_id=0)
                   for i in range(len(stored))], config(store))
    shard = next((store / "shards").rglob("shard.db"))
    run_sql(shard, "".join(f"UPDATE vec_payloads SET payload = CAST(X'{text.hex()}' AS TEXT) WHERE rowid = "
                           f"(SELECT rowid FROM vec_payloads ORDER BY rowid LIMIT 1 OFFSET {offset});\n"
                           for offset, text in enumerate(stored)))
    data = shard.read_bytes()
    digest = "xxh3:" + xxhash.xxh3_64(data).hexdigest()
    manifest = Path(json.loads((store / "_CURRENT").read_text())["manifest_ref"].removeprefix("file://"))
    run_sql(manifest, f"UPDATE shards SET db_bytes = {len(data)} WHERE db_id = 0; UPDATE build_meta SET custom = "
                      f"json_set(custom, '$.shardvec.shard_digests.\"0\"', '{digest}');")
    return store


def test_hostile_payloads_come_back_as_the_raw_payload_fallback(tmp_path: Path) -> None:
    deep = b'{"a": ' + b"[" * DEEP + b"]" * DEEP + b"}"  # valid JSON, nested far deeper than 512
    stored = [b"not json", deep, b'{"a": "\xff"}', b'{"a": "\x1b[2J"}', b"[1, 2]", b'{"ok": {"x": [1]}}']
    store = published_with_payloads(tmp_path, stored)
    with ShardedVectorReader(s3_prefix=str(store), local_root=str(tmp_path / "cache")) as reader:
        hits = reader.search(np.asarray([0, 1, 0, 0], np.float32), top_k=10, shard_ids=[0]).results
    payloads = {h.id: h.payload for h in hits}
    assert payloads == {
        "doc-0": {RAW_PAYLOAD_KEY: "not json"},
        "doc-1": {RAW_PAYLOAD_KEY: deep.decode()},
        "doc-2": {RAW_PAYLOAD_KEY: '{"a": "\ufffd"}'},
        "doc-3": {RAW_PAYLOAD_KEY: '{"a": "\x1b[2J"}'},
        "doc-4": {RAW_PAYLOAD_KEY: "[1, 2]"},
        "doc-5": {"ok": {"x": [1]}},
    }


@pytest.mark.parametrize("where", ["id", "payload", "store"])
def test_text_that_cannot_be_utf8_raises_config_validation_error(tmp_path: Path, where: str) -> None:
    bad = "doc-\udcff"  # what os.fsdecode makes of a name holding the byte 0xFF
    store = tmp_path / ("st\udcffore" if where == "store" else "store")
    ids = [bad if where == "id" else "doc-0", "doc-1"]
    payloads: list[Any] = [bad if where == "payload" else None, None]
    with pytest.raises(ConfigValidationError, match=r"not valid UTF-8 text.*surrogates not allowed"):
        write_arrays(np.eye(2, DIM, dtype=np.float32), config(store), ids=ids, payloads=payloads,
                     shard_ids=[0, 0])
    assert not (tmp_path / "store").exists(), "write_arrays refuses before the engine starts"
    with pytest.raises(ConfigValidationError, match="not valid UTF-8"):
        write_sharded([VectorRecord(id=ids[0], vector=[1, 0, 0, 0], payload=payloads[0], shard_id=0)], config(store))
    # The streaming writer had started: nothing is published and its run record ends failed.
    assert not (tmp_path / "store" / "_CURRENT").exists()
    for record in (tmp_path / "store").rglob("run.yaml"):
        assert "status: failed" in record.read_text()


def test_reader_store_path_that_cannot_be_utf8_raises_config_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigValidationError, match=r"s3_prefix is not valid UTF-8 text"):
        ShardedVectorReader(s3_prefix=str(tmp_path / "st\udcffore"), local_root=str(tmp_path / "cache"))


def test_cel_text_that_cannot_be_utf8_raises_config_validation_error(tmp_path: Path) -> None:
    def cel_config(routing_values: list[str]) -> VectorShardedWriteConfig:
        return VectorShardedWriteConfig(
            sharding=VectorShardingConfig(strategy=VectorShardingStrategy.CEL, cel_expr="region",
                                          cel_columns={"region": "string"}, routing_values=routing_values),
            s3_prefix=str(tmp_path / "store"),
            index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        )
    vectors = np.eye(2, DIM, dtype=np.float32)
    with pytest.raises(ConfigValidationError, match=r"routing_context.*not valid UTF-8"):
        write_arrays(vectors, cel_config(["eu", "us"]), routing_contexts=[{"region": "eu"}, {"region": "e\udcffu"}])
    with pytest.raises(ConfigValidationError, match=r"routing_values\[1\].*not valid UTF-8"):
        write_arrays(vectors, cel_config(["eu", "u\udcffs"]), routing_contexts=[{"region": "eu"}, {"region": "eu"}])
    write_arrays(vectors, cel_config(["eu", "us"]), routing_contexts=[{"region": "eu"}, {"region": "us"}])
    with ShardedVectorReader(s3_prefix=str(tmp_path / "store"), local_root=str(tmp_path / "cache")) as reader:
        with pytest.raises(ConfigValidationError, match=r"routing_context.*not valid UTF-8"):
            reader.search(np.ones(DIM, np.float32), routing_context={"region": "\udcff"})
