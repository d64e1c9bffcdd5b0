"""PostgresManifestStore (shardvec.db_manifest_store) with psycopg against the real server that
scripts/pg_test_server.py starts: the reference's table layout, publish/load/list/set_current, the
publish guard and compare-and-swap as transactions, racing publishers, rows as shardyfusion writes
them, hostile run ids and table names."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
import pytest

from shardvec.db_manifest_store import PostgresManifestStore
from shardvec.errors import (
    ConfigValidationError,
    ManifestParseError,
    ManifestStoreError,
    PublishConflictError,
    PublishCurrentError,
    PublishManifestError,
)
from shardvec.manifest import RequiredBuildMeta, RequiredShardMeta, WriterInfo

# The reference's DDL (shardyfusion's db_manifest_store), column by column: name, type, nullable.
REFERENCE_BUILDS = [
    ("run_id", "text", "NO"), ("created_at", "timestamp with time zone", "NO"), ("num_dbs", "integer", "NO"),
    ("s3_prefix", "text", "NO"), ("key_col", "text", "NO"), ("db_path_template", "text", "NO"),
    ("shard_prefix", "text", "NO"), ("key_encoding", "text", "NO"), ("sharding", "jsonb", "NO"),
    ("custom", "jsonb", "NO"),
]
REFERENCE_SHARDS = [
    ("run_id", "text", "NO"), ("db_id", "integer", "NO"), ("db_url", "text", "YES"), ("attempt", "integer", "NO"),
    ("row_count", "integer", "NO"), ("db_bytes", "bigint", "NO"), ("checkpoint_id", "text", "YES"),
    ("min_key", "jsonb", "YES"), ("max_key", "jsonb", "YES"), ("writer_info", "jsonb", "YES"),
]
REFERENCE_POINTER = [("updated_at", "timestamp with time zone", "NO"), ("manifest_ref", "text", "NO")]


def _table() -> str:
    return f"t_py_{uuid.uuid4().hex[:12]}"


def _store(dsn: str, table: str, **kwargs: Any) -> PostgresManifestStore:
    return PostgresManifestStore(lambda: psycopg.connect(dsn), table_name=table,
                                 pointer_table_name=f"{table}_pointer", **kwargs)


def _build(run_id: str, created_at: datetime | None = None, num_dbs: int = 3) -> RequiredBuildMeta:
    return RequiredBuildMeta(run_id=run_id, created_at=created_at or datetime.now(timezone.utc), num_dbs=num_dbs,
                             s3_prefix="s3://bucket/prefix")


def _shards(run_id: str) -> list[RequiredShardMeta]:
    return [
        RequiredShardMeta(db_id=0, db_url=f"s3://bucket/prefix/shards/run_id={run_id}/db=00000/attempt=00",
                          row_count=10, db_bytes=4096, checkpoint_id="ab" * 16,
                          writer_info=WriterInfo(stage_id=1, task_attempt_id=2, attempt=0, duration_ms=5)),
        RequiredShardMeta(db_id=2, row_count=20, db_bytes=8192),
    ]


def _publish(store: PostgresManifestStore, run_id: str, **kwargs: Any) -> str:
    return store.publish(run_id=run_id, required_build=_build(run_id, kwargs.pop("created_at", None)),
                         shards=_shards(run_id), custom={"vector": {"dim": 8, "metric": "cosine"}}, **kwargs)


def _query(dsn: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Runs one statement on a connection of the test's own (committed); its rows, if any."""
    with psycopg.connect(dsn) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def test_tables_have_the_reference_layout(pg_dsn: str) -> None:
    table = _table()
    _store(pg_dsn, table)
    for name, expected in ((f"{table}_builds", REFERENCE_BUILDS), (f"{table}_shards", REFERENCE_SHARDS),
                           (f"{table}_pointer", REFERENCE_POINTER)):
        columns = _query(pg_dsn, "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
                                 "WHERE table_name = %s ORDER BY ordinal_position", (name,))
        assert columns == expected, name
    keys = _query(pg_dsn, "SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc "
                          "JOIN information_schema.key_column_usage kcu USING (constraint_name) "
                          "WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_name LIKE %s "
                          "ORDER BY tc.table_name, kcu.ordinal_position", (f"{table}%",))
    assert keys == [(f"{table}_builds", "run_id"), (f"{table}_shards", "run_id"), (f"{table}_shards", "db_id")]
    index = _query(pg_dsn, "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (f"idx_{table}_pointer_updated_at",))
    assert len(index) == 1 and "updated_at DESC" in index[0][0]
    # A second store on the same tables (ensure_table again, or not at all) works.
    _store(pg_dsn, table)
    _store(pg_dsn, table, ensure_table=False)


def test_publish_load_list_roundtrip(pg_dsn: str) -> None:
    store = _store(pg_dsn, _table())
    assert store.load_current() is None
    assert store.list_manifests() == []
    created = datetime(2026, 3, 14, 10, 30, 0, 123456, tzinfo=timezone.utc)
    assert _publish(store, "run-a", created_at=created) == "run-a"
    current = store.load_current()
    assert current is not None and current.ref == "run-a" and current.run_id == "run-a"
    assert current.published_at.tzinfo is not None
    parsed = store.load_manifest("run-a")
    assert parsed.required_build.run_id == "run-a"
    assert parsed.required_build.created_at == created
    assert parsed.required_build.num_dbs == 3
    assert parsed.required_build.key_col == "_vector_id" and parsed.required_build.key_encoding == "raw"
    assert parsed.custom == {"vector": {"dim": 8, "metric": "cosine"}}
    assert [s.db_id for s in parsed.shards] == [0, 2]
    assert parsed.shards[0].writer_info == WriterInfo(stage_id=1, task_attempt_id=2, attempt=0, duration_ms=5)
    assert parsed.shards[0].checkpoint_id == "ab" * 16
    assert parsed.shards[1].db_url is None and parsed.shards[1].row_count == 20

    _publish(store, "run-b")
    assert [r.ref for r in store.list_manifests()] == ["run-b", "run-a"]  # newest created_at first
    assert [r.ref for r in store.list_manifests(limit=1)] == ["run-b"]
    assert len(store.list_manifests(limit=100)) == 2
    assert store.list_manifests(limit=0) == []  # LIMIT 0, as the reference's and the other stores
    with pytest.raises(ConfigValidationError, match="limit"):
        store.list_manifests(limit=-1)
    with pytest.raises(ManifestParseError, match="no-such"):
        store.load_manifest("no-such")


def test_publish_never_overwrites_and_guard_keeps_the_manifest_listed(pg_dsn: str) -> None:
    store = _store(pg_dsn, _table())
    _publish(store, "newer")
    with pytest.raises(PublishManifestError, match="already"):
        _publish(store, "newer")
    long_ago = datetime.now(timezone.utc) - timedelta(minutes=5)
    with pytest.raises(PublishConflictError) as info:
        _publish(store, "late", run_started=long_ago)
    assert info.value.manifest_ref == "late"
    assert store.load_current().ref == "newer"
    assert {r.ref for r in store.list_manifests()} == {"newer", "late"}
    # Without run_started the pointer moves, as shardyfusion's publish does.
    _publish(store, "reference-style", run_started=None)
    assert store.load_current().ref == "reference-style"


def test_set_current_compare_and_swap(pg_dsn: str) -> None:
    table = _table()
    store = _store(pg_dsn, table)
    _publish(store, "one")
    _publish(store, "two")
    with pytest.raises(ManifestStoreError, match="nope"):
        store.set_current("nope")
    with pytest.raises(PublishCurrentError, match="'two'"):
        store.set_current("one", expected_ref="one")
    assert store.load_current().ref == "two"
    store.set_current("one", expected_ref="two")
    assert store.load_current().ref == "one"
    store.set_current("two")
    assert store.load_current().ref == "two"
    times = [row[0] for row in _query(pg_dsn, f"SELECT updated_at FROM {table}_pointer ORDER BY updated_at")]
    assert len(times) == 4 and len(set(times)) == 4  # append-only, strictly increasing


def test_racing_publishers_exactly_one_wins(pg_dsn: str) -> None:
    table = _table()
    stores = [_store(pg_dsn, table) for _ in range(5)]
    started = datetime.now(timezone.utc)
    barrier = threading.Barrier(len(stores))
    outcomes: dict[int, str] = {}

    def publish(i: int) -> None:
        build = _build(f"race-{i}")
        barrier.wait()
        try:
            stores[i].publish(run_id=f"race-{i}", required_build=build, shards=_shards(f"race-{i}"), custom={},
                              run_started=started)
            outcomes[i] = "won"
        except PublishConflictError:
            outcomes[i] = "conflict"

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, outcome in outcomes.items() if outcome == "won"]
    assert len(winners) == 1 and len(outcomes) == len(stores)
    assert stores[0].load_current().ref == f"race-{winners[0]}"
    assert len(stores[0].list_manifests(limit=1000)) == len(stores)
    assert _query(pg_dsn, f"SELECT count(*) FROM {table}_pointer") == [(1,)]


def test_reads_rows_as_shardyfusion_writes_them(pg_dsn: str) -> None:
    """shardyfusion inserts the build with pydantic's JSON time and its own JSON texts, NULL
    writer_info when it has none, and a pointer row with the server's NOW()."""
    table = _table()
    store = _store(pg_dsn, table)
    _query(pg_dsn, f"INSERT INTO {table}_builds (run_id, created_at, num_dbs, s3_prefix, key_col, db_path_template, "
                   "shard_prefix, key_encoding, sharding, custom) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
           ("sf-run", "2026-03-14T10:30:00.5Z", 2, "s3://b/p", "_vector_id", "db={db_id:05d}", "shards", "raw",
            json.dumps({"strategy": "hash", "routing_values": None, "cel_expr": None, "cel_columns": None,
                        "hash_algorithm": "xxh3_64"}, sort_keys=True),
            json.dumps({"vector": {"dim": 4}}, sort_keys=True)))
    _query(pg_dsn, f"INSERT INTO {table}_shards (run_id, db_id, db_url, attempt, row_count, db_bytes, checkpoint_id, "
                   "min_key, max_key, writer_info) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
           ("sf-run", 1, "s3://b/p/shards/x", 0, 3, 100, None, None, None, None))
    _query(pg_dsn, f"INSERT INTO {table}_pointer (manifest_ref) VALUES (%s)", ("sf-run",))
    current = store.load_current()
    assert current.ref == "sf-run"
    parsed = store.load_manifest("sf-run")
    assert parsed.required_build.created_at == datetime(2026, 3, 14, 10, 30, 0, 500000, tzinfo=timezone.utc)
    assert parsed.shards[0].writer_info == WriterInfo()
    assert parsed.custom == {"vector": {"dim": 4}}
    # Our next publish goes after shardyfusion's pointer row even though both clocks are the server's.
    _publish(store, "ours")
    assert store.load_current().ref == "ours"
    newest = _query(pg_dsn, f"SELECT manifest_ref FROM {table}_pointer ORDER BY updated_at DESC LIMIT 1")
    assert newest == [("ours",)]


def test_a_manifest_that_does_not_validate_is_a_parse_error(pg_dsn: str) -> None:
    table = _table()
    store = _store(pg_dsn, table)
    _publish(store, "bad")
    _query(pg_dsn, f"UPDATE {table}_shards SET db_id = 9 WHERE db_id = 2")
    with pytest.raises(ManifestParseError, match="db_id 9"):
        store.load_manifest("bad")


@pytest.mark.parametrize("run_id", ["x'; DROP TABLE pg_class; --", "%s %(x)s $1", "ünï 漢 🙂", "r" * 5000, "a\nb"])
def test_hostile_run_ids_are_data(pg_dsn: str, run_id: str) -> None:
    store = _store(pg_dsn, _table())
    assert _publish(store, run_id) == run_id
    assert store.load_current().ref == run_id
    assert store.load_manifest(run_id).required_build.run_id == run_id
    store.set_current(run_id, expected_ref=run_id)


@pytest.mark.parametrize(("field", "value"), [("table_name", "a; DROP TABLE x"), ("table_name", "1abc"),
                                              ("table_name", ""), ("pointer_table_name", "p-q"),
                                              ("table_name", "x" * 60), ("pointer_table_name", '"quoted"')])
def test_bad_table_names_are_refused_naming_the_field(field: str, value: str) -> None:
    kwargs = {"table_name": "ok", "pointer_table_name": "ok_pointer", field: value}

    def never() -> Any:
        raise AssertionError("no connection for a bad table name")

    with pytest.raises(ConfigValidationError, match=field):
        PostgresManifestStore(never, **kwargs)


def test_ensure_table_false_on_missing_tables_is_a_clear_error(pg_dsn: str) -> None:
    table = _table()
    with pytest.raises(ManifestStoreError, match=f"{table}_builds.*ensure_table"):
        _store(pg_dsn, table, ensure_table=False)
    assert _query(pg_dsn, "SELECT to_regclass(%s)::text", (f"{table}_builds",)) == [(None,)]


def test_an_autocommit_connection_still_publishes_in_one_transaction(pg_dsn: str) -> None:
    store = PostgresManifestStore(lambda: psycopg.connect(pg_dsn, autocommit=True), table_name=_table())
    _publish(store, "auto")
    with pytest.raises(PublishConflictError):
        _publish(store, "auto-late", run_started=datetime.now(timezone.utc) - timedelta(hours=1))
    assert store.load_current().ref == "auto"


def test_driver_errors_become_manifest_store_errors() -> None:
    def refused() -> Any:
        return psycopg.connect("postgresql://nobody@127.0.0.1:1/none", connect_timeout=2)

    with pytest.raises(ManifestStoreError, match="connection_factory"):
        PostgresManifestStore(refused, table_name="t_unreachable")


def test_the_cpp_store_and_the_python_class_read_each_other(pg_dsn: str) -> None:
    """The libpq store (the CLI's and C++ API's) and the DB-API class share tables and SQL: each
    reads what the other published, and both move the same pointer."""
    from shardvec._native import _engine
    from shardvec.manifest import manifest_from_json, manifest_to_json

    table = _table()
    py_store = _store(pg_dsn, table)
    cpp_store = _engine.postgres_manifest_store(pg_dsn, table, f"{table}_pointer", True)
    _publish(py_store, "from-python")
    assert cpp_store.load_current()[0] == "from-python"
    from_cpp = manifest_from_json(cpp_store.load_manifest_json("from-python"))
    assert from_cpp == py_store.load_manifest("from-python")

    parsed = py_store.load_manifest("from-python")
    parsed.required_build.run_id = "from-cpp"
    parsed.required_build.created_at = datetime.now(timezone.utc)
    ref, run_id, _ = cpp_store.publish(manifest_to_json(parsed.required_build, parsed.shards, parsed.custom))
    assert (ref, run_id) == ("from-cpp", "from-cpp")
    assert py_store.load_current().ref == "from-cpp"
    assert py_store.load_manifest("from-cpp").shards == parsed.shards
    assert [r.ref for r in py_store.list_manifests()] == [r[0] for r in cpp_store.list_manifests(0)]
    py_store.set_current("from-python", expected_ref="from-cpp")
    assert cpp_store.load_current()[0] == "from-python"
    assert "127.0.0.1" in cpp_store.describe() and pg_dsn.split(":")[2].split("@")[0] not in cpp_store.describe()


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_writer_and_reader_with_shards_in_the_store_and_manifests_in_postgres(
        pg_dsn: str, tmp_path: Any, request: pytest.FixtureRequest, where: str) -> None:
    """A mixed deployment: write_arrays publishes through PostgresManifestStore (its guard checked
    inside the publish transaction), the shards go to a folder or the S3 test server, and the reader
    finds the snapshot through the same store; a run that started before the current one loses."""
    import numpy as np

    from shardvec.config import WriterManifestConfig, WriterOutputConfig
    from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
    from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
    from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

    if where == "s3":
        server = request.getfixturevalue("s3_server")
        prefix = server["prefix"]
        creds = server["credentials"]
        storage = {"s3_connection_options": server["s3_connection_options"], "credential_provider": lambda: creds}
    else:
        prefix, storage = str(tmp_path / "store"), {}
    store = _store(pg_dsn, _table())
    vectors = np.random.default_rng(3).standard_normal((40, 8)).astype(np.float32)

    def config(run_id: str) -> VectorShardedWriteConfig:
        return VectorShardedWriteConfig(
            sharding=VectorShardingConfig(num_dbs=3, strategy=VectorShardingStrategy.LSH), s3_prefix=prefix,
            index_config=VectorIndexConfig(dim=8, metric=DistanceMetric.L2),
            output=WriterOutputConfig(run_id=run_id, local_root=str(tmp_path / f"build-{run_id}")),
            manifest=WriterManifestConfig(store=store), **storage)

    result = write_arrays(vectors, config("pg-run"), ids=np.arange(40, dtype=np.int64))
    assert result.manifest_ref == "pg-run"
    assert store.load_current().ref == "pg-run"
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cache"), manifest_store=store,
                             **storage) as reader:
        assert reader.search(vectors[5], top_k=1, shard_ids=[0, 1, 2]).results[0].id == 5


def test_the_privileges_the_readme_lists_are_enough(pg_dsn: str) -> None:
    """A publishing role with SELECT and INSERT on the tables and UPDATE on the pointer table
    (for its lock) publishes and rolls back; a reading role with SELECT alone reads, and its publish
    is refused without writing anything."""
    table = _table()
    _store(pg_dsn, table)  # the owner creates the tables
    names = {"b": f"{table}_builds", "s": f"{table}_shards", "p": f"{table}_pointer"}
    dsns = {}
    for role in ("pub", "rdr"):
        name, password = f"{table}_{role}", uuid.uuid4().hex
        _query(pg_dsn, f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        _query(pg_dsn, f"GRANT SELECT ON {names['b']}, {names['s']}, {names['p']} TO {name}")
        dsns[role] = pg_dsn.replace("//shardvec:" + pg_dsn.split(":")[2].split("@")[0] + "@",
                                    f"//{name}:{password}@")
    _query(pg_dsn, f"GRANT INSERT ON {names['b']}, {names['s']}, {names['p']} TO {table}_pub")
    publisher = _store(dsns["pub"], table, ensure_table=False)
    with pytest.raises(ManifestStoreError, match="permission denied"):  # the pointer lock needs UPDATE
        _publish(publisher, "before-update")
    _query(pg_dsn, f"GRANT UPDATE ON {names['p']} TO {table}_pub")
    _publish(publisher, "by-publisher")
    _publish(publisher, "second")
    publisher.set_current("by-publisher", expected_ref="second")
    reader = _store(dsns["rdr"], table, ensure_table=False)
    assert reader.load_current().ref == "by-publisher"
    assert reader.load_manifest("second").required_build.run_id == "second"
    with pytest.raises(ManifestStoreError, match="permission denied"):
        _publish(reader, "by-reader")
    assert [r.ref for r in reader.list_manifests()] == ["second", "by-publisher"]
