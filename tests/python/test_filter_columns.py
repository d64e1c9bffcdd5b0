"""Filter columns at write time: each declared payload key stored typed and columnar in every shard
(table shardvec_filter_columns, rowid-aligned with vec0), per-shard statistics in the manifest, bad
values refused naming record, column and value, and the shard still a plain sqlite-vec shard."""

from __future__ import annotations

import json
import sqlite3
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from conftest import CLI
from shardvec.config import VectorColumnInput
from shardvec.errors import ConfigValidationError
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import BuildResult, DistanceMetric, VectorShardingStrategy
from test_score_parity import match

DIM = 12
ROWS = 1500
COLUMNS = {"lang": "string", "year": "int", "price": "double", "in_stock": "bool", "tags": "list<string>"}
LANGS = ["en", "de", "日本語", "ελληνικά"]


def payload(i: int) -> dict[str, Any]:
    """Row i's payload: every type, with missing keys and explicit nulls, unicode and a long list."""
    p: dict[str, Any] = {"title": f"t{i}"}
    if i % 5:
        p["lang"] = LANGS[i % 4]
    if i % 9 == 3:
        p["lang"] = None
    if i % 4 != 1:
        p["year"] = 1950 + i % 80 if i % 13 else -(2**62) - i
    if i % 6 != 2:
        p["price"] = i if i % 2 else i * 0.5 - 100.25
    if i % 3 != 2:
        p["in_stock"] = i % 2 == 0
    if i % 8 != 4:
        p["tags"] = [f"t{(i + j) % 17}" for j in range(500 if i == 77 else i % 4)] + (["🏷️ sale"] if i % 10 == 1 else [])
    return p


def data(rows: int = ROWS, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10, DIM)).astype(np.float32) * 4
    return (centres[rng.integers(0, 10, rows)] + rng.standard_normal((rows, DIM))).astype(np.float32)


def config(prefix: str, columns: Any = COLUMNS, **storage: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=3, strategy=VectorShardingStrategy.CLUSTER, train_centroids=True),
        s3_prefix=prefix, index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2), filter_columns=columns,
        **storage)


# --- an independent decoder of the table's blobs (format 1, little-endian) -------------------------


class Blob:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str, count: int) -> list[Any]:
        size = struct.calcsize(fmt) * count
        values = list(struct.unpack_from(f"<{count}{fmt}", self.data, self.pos))
        self.pos += size
        return values

    def dictionary(self) -> list[str]:
        (count,) = self.take("Q", 1)
        ends = self.take("Q", count)
        text = self.data[self.pos:self.pos + (ends[-1] if ends else 0)]
        self.pos += len(text)
        return [text[a:b].decode() for a, b in zip([0, *ends], ends)]


def decode(kind: str, rows: int, data: bytes) -> list[Any]:
    """The column's value per rowid (None where null)."""
    blob = Blob(data)
    words = (rows + 63) // 64
    valid = blob.take("Q", words)
    is_valid = [bool(valid[r // 64] >> (r % 64) & 1) for r in range(rows)]
    if kind == "int":
        values: list[Any] = blob.take("q", rows)
    elif kind == "double":
        values = blob.take("d", rows)
    elif kind == "bool":
        bits = blob.take("Q", words)
        values = [bool(bits[r // 64] >> (r % 64) & 1) for r in range(rows)]
    elif kind == "string":
        strings = blob.dictionary()
        assert strings == sorted(strings, key=str.encode) and len(set(strings)) == len(strings)
        values = [strings[c] for c in blob.take("I", rows)] if strings else [None] * rows
    else:
        strings = blob.dictionary()
        offsets = blob.take("Q", rows + 1)
        codes = blob.take("I", offsets[-1])
        values = [[strings[c] for c in codes[offsets[r]:offsets[r + 1]]] for r in range(rows)]
    assert blob.pos == len(data), "bytes after the encoding"
    return [v if ok else None for v, ok in zip(values, is_valid)]


def shard_paths(result: BuildResult) -> dict[int, Path]:
    return {w.db_id: Path(w.db_url.removeprefix("file://")) / "shard.db" for w in result.winners}


def read_shard(path: Path) -> tuple[list[int], dict[str, list[Any]]]:
    """Row ids by rowid and each filter column decoded, read with plain sqlite3."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        ids = [json.loads(v)["v"] for (v,) in db.execute("SELECT original_id FROM vec_id_map ORDER BY internal_id")]
        table = db.execute("SELECT name, type, format, rows, data FROM shardvec_filter_columns ORDER BY name").fetchall()
    assert [(name, kind) for name, kind, *_ in table] == sorted(COLUMNS.items())
    assert all(fmt == 1 and rows == len(ids) for _, _, fmt, rows, _ in table)
    return ids, {name: decode(kind, rows, data) for name, kind, _, rows, data in table}


def manifest_custom(result: BuildResult) -> dict[str, Any]:
    with sqlite3.connect(result.manifest_ref.removeprefix("file://")) as manifest:
        return json.loads(manifest.execute("SELECT custom FROM build_meta").fetchone()[0])


def expected_stats(values: list[Any], kind: str) -> dict[str, Any]:
    """What the manifest records for one shard's column, computed here with NumPy."""
    present = [v for v in values if v is not None]
    stats: dict[str, Any] = {"nulls": len(values) - len(present)}
    if kind in ("int", "double") and present:
        array = np.array(present, dtype=np.int64 if kind == "int" else np.float64)
        stats.update(min=array.min().item(), max=array.max().item())
    if kind == "bool":
        array = np.array(present, dtype=bool)
        stats.update({"true": int(array.sum()), "false": int((~array).sum())})
    if kind in ("string", "list<string>"):
        flat = present if kind == "string" else [s for v in present for s in v]
        distinct = sorted(set(flat), key=str.encode)
        stats["distinct"] = len(distinct)
        stats.update(values=distinct) if len(distinct) <= 64 else stats.update(many=True)
        if kind == "list<string>":
            stats["empty"] = int(np.sum(np.array([len(v) for v in present]) == 0))
    return stats


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[BuildResult, np.ndarray]:
    prefix = str(tmp_path_factory.mktemp("filters") / "store")
    vectors = data()
    result = write_arrays(vectors, config(prefix), ids=np.arange(ROWS) * 3,
                          payloads=[payload(i) for i in range(ROWS)])
    return result, vectors


def test_every_type_is_stored_typed_by_rowid_in_every_shard(written: tuple[BuildResult, np.ndarray]) -> None:
    result, _ = written
    seen = 0
    for path in shard_paths(result).values():
        ids, columns = read_shard(path)
        assert ids != sorted(ids)  # sub-lists reordered the rows: the columns follow the final rowids
        for name in COLUMNS:
            want = [payload(i // 3).get(name) for i in ids]
            got = columns[name]
            if name == "price":
                want = [None if v is None else float(v) for v in want]
            assert got == want, name
        seen += len(ids)
    assert seen == ROWS


def test_manifest_records_the_types_and_each_shards_statistics(written: tuple[BuildResult, np.ndarray]) -> None:
    result, _ = written
    custom = manifest_custom(result)
    assert custom["shardvec"]["filter_columns"] == COLUMNS
    stats = custom["shardvec"]["filter_stats"]
    assert sorted(stats) == sorted(str(w.db_id) for w in result.winners)
    for db_id, path in shard_paths(result).items():
        ids, _ = read_shard(path)
        for name, kind in COLUMNS.items():
            values = [payload(i // 3).get(name) for i in ids]
            assert stats[str(db_id)][name] == expected_stats(values, kind), (db_id, name)
    for winner in result.winners:  # the build result carries them too
        assert json.loads(winner.filter_stats) == stats[str(winner.db_id)]


def test_plain_sqlite_vec_knn_still_answers_on_a_shard_with_filter_columns(
        written: tuple[BuildResult, np.ndarray]) -> None:
    result, vectors = written
    queries = data(4, seed=9)
    for path in shard_paths(result).values():
        ids, _ = read_shard(path)
        rows = np.array(ids) // 3
        for query in queries:
            got = [hit_id for hit_id, _ in match(path, query, 10)]
            d = ((vectors[rows].astype(np.float64) - query) ** 2).sum(axis=1)
            assert got == [int(ids[i]) for i in np.argsort(d, kind="stable")[:10]]


def test_a_snapshot_with_filter_columns_is_searched_as_before(prefix_and_storage: tuple[str, dict[str, Any]],
                                                             tmp_path: Path) -> None:
    prefix, storage = prefix_and_storage
    vectors = data(400, seed=3)
    write_arrays(vectors, config(prefix, **storage), ids=np.arange(400), payloads=[payload(i) for i in range(400)])
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache"), **storage) as reader:
        for i in range(0, 400, 37):
            hits = reader.search(vectors[i], top_k=1, num_probes=3).results
            assert hits[0].id == i and hits[0].payload == payload(i)


@pytest.mark.parametrize("bad, fragments", [
    ({"year": "abc"}, ["filter column 'year' (int)", '"abc"', "not an integer"]),
    ({"year": 1.5}, ["filter column 'year' (int)", "1.5"]),
    ({"price": "cheap"}, ["filter column 'price' (double)", '"cheap"']),
    ({"in_stock": 1}, ["filter column 'in_stock' (bool)", "value 1"]),
    ({"lang": ["en"]}, ["filter column 'lang' (string)", '["en"]']),
    ({"tags": ["a", 2]}, ["filter column 'tags' (list<string>)", '["a",2]', "element 1"]),
])
def test_a_value_of_another_type_fails_the_write_naming_record_column_and_value(
        tmp_path: Path, bad: dict[str, Any], fragments: list[str]) -> None:
    payloads = [payload(i) for i in range(300)]
    payloads[123] = {**payloads[123], **bad}
    prefix = str(tmp_path / "store")
    with pytest.raises(Exception) as info:
        write_arrays(data(300), config(prefix), ids=[f"doc-{i}" for i in range(300)], payloads=payloads)
    for fragment in ["record id=doc-123", *fragments]:
        assert fragment in str(info.value), (fragment, str(info.value))
    assert not (Path(prefix) / "_CURRENT").exists()  # nothing published


@pytest.mark.parametrize("columns, fragments", [
    ({"1year": "int"}, ["filter_columns name '1year'"]),
    ({"in": "int"}, ["filter_columns name 'in'"]),
    ({"a-b": "string"}, ["filter_columns name 'a-b'"]),
    ({"year": "integer"}, ["filter_columns['year'] has type 'integer'"]),
    ({"tags": "list<int>"}, ["filter_columns['tags'] has type 'list<int>'"]),
    ({"year": 5}, ["filter_columns must be a dict"]),
    (["year"], ["filter_columns must be a dict"]),
])
def test_bad_declarations_are_refused_naming_the_field_and_value(tmp_path: Path, columns: Any,
                                                                 fragments: list[str]) -> None:
    with pytest.raises(ConfigValidationError) as info:
        config(str(tmp_path / "store"), columns)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_cli_filter_column_flags(tmp_path: Path) -> None:
    vectors = data(300, seed=5)
    lines = [json.dumps({"id": i, "vector": vectors[i].tolist(), "payload": payload(i)}) for i in range(300)]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    store = tmp_path / "store"
    base = [str(CLI), "build", "--store", str(store), "--input", str(tmp_path / "in.jsonl"), "--metric", "l2",
            "--strategy", "lsh", "--num-dbs", "2", "--quiet"]
    flags = [f for name, kind in COLUMNS.items() for f in ("--filter-column", f"{name}={kind}")]
    done = subprocess.run([*base, *flags, "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)["manifest_ref"].removeprefix("file://")
    with sqlite3.connect(manifest) as db:
        custom = json.loads(db.execute("SELECT custom FROM build_meta").fetchone()[0])
    assert custom["shardvec"]["filter_columns"] == COLUMNS
    total = 0
    for shard in store.glob("shards/*/*/*/shard.db"):
        ids, columns = read_shard(shard)
        assert columns["year"] == [payload(i).get("year") for i in ids]
        assert columns["tags"] == [payload(i).get("tags") for i in ids]
        total += len(ids)
    assert total == 300
    for bad, fragment in [(["--filter-column", "year"], "--filter-column 'year' must look like NAME=TYPE"),
                          (["--filter-column", "year=float"], "--filter-column['year'] has type 'float'"),
                          (["--filter-column", "9x=int"], "--filter-column name '9x'"),
                          (["--filter-column", "y=int", "--filter-column", "y=string"], "declares 'y' again")]:
        done = subprocess.run([*base, *bad], capture_output=True, text=True)
        assert done.returncode == 2 and fragment in done.stderr, (bad, done.stderr)
    done = subprocess.run([*base, "--filter-column", "year=bool"], capture_output=True, text=True)
    assert done.returncode != 0 and "filter column 'year' (bool)" in done.stderr, done.stderr


def test_dask_tasks_store_the_columns_and_the_driver_publishes_their_statistics(
        request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from test_distributed import INPUT, config_for, ids_per_shard, make_table, make_writer

    write = make_writer(request, "dask")
    table = make_table()
    rows = table.num_rows
    years = [None if i % 7 == 0 else 2000 + i % 30 for i in range(rows)]
    table = table.append_column("year", pa.array(years, type=pa.int64()))
    table = table.append_column("region_list", pa.array([[f"r{i % 3}"] for i in range(rows)]))
    cfg = config_for(str(tmp_path / "store"), VectorShardingStrategy.LSH)
    cfg.filter_columns = {"year": "int", "title": "string", "region_list": "list<string>"}
    given = VectorColumnInput(vector_col=INPUT.vector_col, id_col=INPUT.id_col,
                              payload_cols=["title", "year", "region_list"])
    result = write(table, cfg, given, None)
    stats = manifest_custom(result)["shardvec"]["filter_stats"]
    assert sorted(stats) == sorted(str(w.db_id) for w in result.winners)
    for db_id, ids in ids_per_shard(result).items():
        shard_years = [years[i // 3] for i in ids]
        assert stats[str(db_id)]["year"] == expected_stats(shard_years, "int")
        assert stats[str(db_id)]["title"]["distinct"] == len(ids)
        assert stats[str(db_id)]["region_list"]["values"] == sorted({f"r{(i // 3) % 3}" for i in ids})
