"""Manifests and the current pointer in PostgreSQL, through a DB-API 2 connection factory.

``PostgresManifestStore(connection_factory, *, table_name=…, pointer_table_name=…, ensure_table=True)``
is shardyfusion's class under the same name and with the same tables, so either tool reads what the
other published:

* ``<table_name>_builds``: one row per manifest (``run_id`` is its ref),
* ``<table_name>_shards``: one row per non-empty shard,
* ``<pointer_table_name>``: append-only; the newest row (by ``updated_at``) names the current manifest.

The statements are the engine's (``shardvec._engine.postgres_manifest_sql``), the ones the C++ store
behind ``--manifest-store postgresql://…`` runs too. Publish and ``set_current`` are each one
transaction that locks the pointer table (so pointer moves go one at a time; readers are not
blocked), reads the current manifest, and appends a row strictly newer than every other, so the
pointer never moves backwards by accident:

* ``publish(..., run_started=t)`` rejects the move with :class:`PublishConflictError` when the current
  manifest was published after ``t`` (the new manifest stays listed, ``manifest_ref`` names it);
  without ``run_started`` the pointer moves, as in shardyfusion;
* ``set_current(ref, expected_ref=r)`` moves the pointer only while it still names ``r`` ("" for no
  pointer yet), else :class:`PublishCurrentError`.

Unlike shardyfusion's class, publishing a run id that is already stored raises
:class:`PublishManifestError` instead of overwriting that manifest, and ``set_current`` refuses a ref
that names no manifest.

``connection_factory`` returns a new DB-API connection with ``%s`` parameters (psycopg 3 or
psycopg2), for example ``lambda: psycopg.connect(dsn)``; the store closes each one after use.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from shardvec._native import _engine
from shardvec.errors import (
    ConfigValidationError,
    ManifestParseError,
    ManifestStoreError,
    PublishConflictError,
    PublishCurrentError,
    PublishManifestError,
)
from shardvec.manifest import (
    ManifestRef,
    ParsedManifest,
    RequiredBuildMeta,
    RequiredShardMeta,
    check_list_limit,
    check_publish_run_id,
    format_timestamp,
    manifest_from_json,
    manifest_to_json,
    parse_timestamp,
)

__all__ = ["PostgresManifestStore"]

_UNIQUE_VIOLATION = "23505"


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error (psycopg 3: ``sqlstate``, psycopg2: ``pgcode``)."""
    return getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True)


def _ref(row: Any, published_column: int) -> ManifestRef:
    run_id = str(row[0])
    return ManifestRef(ref=run_id, run_id=run_id,
                       published_at=parse_timestamp(str(row[published_column]), field_name="published_at"))


class PostgresManifestStore:
    """PostgreSQL manifest store with the reference's builds, shards and pointer tables."""

    #: The engine's writer passes ``run_started`` to :meth:`publish`, which checks the publish
    #: policy inside its transaction (no other publisher can move the pointer in between).
    publish_checks_run_started = True

    def __init__(
        self,
        connection_factory: Callable[[], Any],
        *,
        table_name: str = "shardyfusion_manifests",
        pointer_table_name: str = "shardyfusion_pointer",
        ensure_table: bool = True,
    ) -> None:
        if not callable(connection_factory):
            raise ConfigValidationError(
                f"connection_factory must be a callable returning a DB-API connection, got {connection_factory!r}")
        for name, value in (("table_name", table_name), ("pointer_table_name", pointer_table_name)):
            if not isinstance(value, str):
                raise ConfigValidationError(f"{name} must be a string, got {value!r}")
        if not isinstance(ensure_table, bool):
            raise ConfigValidationError(f"ensure_table must be True or False, got {ensure_table!r}")
        self._connection_factory = connection_factory
        self._sql: dict[str, str] = _engine.postgres_manifest_sql(table_name, pointer_table_name)
        self.table_name = table_name
        self.pointer_table_name = pointer_table_name
        if ensure_table:
            self._ensure_tables()
        else:
            self._check_tables()

    def __repr__(self) -> str:
        return (f"PostgresManifestStore(table_name={self.table_name!r}, "
                f"pointer_table_name={self.pointer_table_name!r})")

    # -- connections and transactions ---------------------------------------------------------------

    @contextmanager
    def _transaction(self, isolation: str, what: str) -> Iterator[Any]:
        """A cursor in one transaction (``isolation`` first), committed when the block ends normally
        and rolled back otherwise; driver errors become ``ManifestStoreError`` naming ``what``."""
        try:
            conn = self._connection_factory()
        except Exception as exc:
            raise ManifestStoreError(f"{what}: connection_factory failed: {exc}") from exc
        try:
            if getattr(conn, "autocommit", False):
                conn.autocommit = False  # the statements below must share one transaction
            cursor = conn.cursor()
            cursor.execute(self._sql[isolation])
            try:
                yield cursor
                conn.commit()
            except BaseException:
                try:
                    conn.rollback()
                except Exception:  # the original error is the one to report
                    pass
                raise
        except (ManifestStoreError, ManifestParseError, PublishCurrentError, PublishManifestError,
                ConfigValidationError):
            raise
        except Exception as exc:
            raise ManifestStoreError(f"{what} in PostgreSQL failed: {exc}") from exc
        finally:
            conn.close()

    def _ensure_tables(self) -> None:
        with self._transaction("read_committed", "creating the manifest tables") as cur:
            cur.execute(self._sql["ensure_lock"], (self._sql["builds_table"],))
            for ddl in ("create_builds", "create_shards", "create_pointer", "create_pointer_index"):
                cur.execute(self._sql[ddl])

    def _check_tables(self) -> None:
        names = [self._sql["builds_table"], self._sql["shards_table"], self._sql["pointer_table"]]
        with self._transaction("read_committed", "looking up the manifest tables") as cur:
            cur.execute(self._sql["tables_exist"], tuple(names))
            row = cur.fetchone()
        missing = [name for name, found in zip(names, row) if found is None]
        if missing:
            raise ManifestStoreError(
                f"PostgreSQL has no table {', '.join(missing)} and ensure_table is False: create the tables "
                "(construct the store once with ensure_table=True, or run its CREATE TABLE statements)")

    # -- the ManifestStore protocol -----------------------------------------------------------------

    def publish(
        self,
        *,
        run_id: str,
        required_build: RequiredBuildMeta,
        shards: list[RequiredShardMeta],
        custom: dict[str, Any],
        run_started: datetime | None = None,
    ) -> str:
        """Stores the manifest and makes it current in one transaction; returns its ref (the run id).

        With ``run_started``, a current manifest published after it rejects the move:
        :class:`PublishConflictError`, this manifest staying listed (``manifest_ref``)."""
        check_publish_run_id(run_id, required_build)
        # The engine's JSON form checks every field's type and gives the texts the tables keep.
        data = json.loads(manifest_to_json(required_build, list(shards), dict(custom or {})))
        build = data["required_build"]
        if build["format_version"] != 4:
            raise ConfigValidationError(
                f"format_version {build['format_version']!r} cannot be stored: the PostgreSQL manifest "
                "tables hold format 4 only")
        started = format_timestamp(run_started) if run_started is not None else None
        build_row = (run_id, build["created_at"], build["num_dbs"], build["s3_prefix"], build["key_col"],
                     build["db_path_template"], build["shard_prefix"], build["key_encoding"],
                     _json_text(build["sharding"]), _json_text(data["custom"]))
        shard_rows = [
            (run_id, s["db_id"], s["db_url"], s["attempt"], s["row_count"], s["db_bytes"], s["checkpoint_id"],
             _json_text(_key(shard.min_key)), _json_text(_key(shard.max_key)), _json_text(s["writer_info"]))
            for s, shard in zip(data["shards"], shards)
        ]
        conflict: str | None = None
        with self._transaction("read_committed", f"publishing the manifest of run_id={run_id!r}") as cur:
            cur.execute(self._sql["lock_pointer"])
            cur.execute(self._sql["current"])
            current = cur.fetchone()
            try:
                cur.execute(self._sql["insert_build"], build_row)
            except Exception as exc:
                if _sqlstate(exc) == _UNIQUE_VIOLATION:
                    raise PublishManifestError(
                        f"a manifest with run_id {run_id!r} is already in {self._sql['builds_table']}; "
                        "manifests are never overwritten") from exc
                raise
            if shard_rows:
                cur.executemany(self._sql["insert_shard"], shard_rows)
            if started is not None and current is not None and str(current[2]) > started:
                conflict = (f"PublishConflictError: the current manifest is now run_id {current[0]!r}, published "
                            f"at {current[2]}, after this run started at {started}; this run's manifest "
                            f"{run_id!r} stays in history (use set_current to make it current)")
            else:
                cur.execute(self._sql["insert_pointer"], (run_id,))
        if conflict is not None:
            raise PublishConflictError(conflict, manifest_ref=run_id)
        return run_id

    def load_current(self) -> ManifestRef | None:
        """The manifest the newest pointer row names (with no pointer row, the newest build), or None."""
        with self._transaction("read_committed", "loading the current manifest") as cur:
            cur.execute(self._sql["current"])
            row = cur.fetchone()
        return None if row is None else _ref(row, 1)

    def load_manifest(self, ref: str) -> ParsedManifest:
        """The manifest of run id ``ref``; ``ManifestParseError`` when there is none or it does not
        validate."""
        if not isinstance(ref, str):
            raise ConfigValidationError(f"ref must be a string, got {ref!r}")
        with self._transaction("snapshot_read", f"loading manifest {ref!r}") as cur:
            cur.execute(self._sql["select_build"], (ref,))
            build = cur.fetchone()
            if build is None:
                raise ManifestParseError(f"Manifest not found: ref={ref}")
            cur.execute(self._sql["select_shards"], (ref,))
            shard_rows = cur.fetchall()
        (run_id, created_at, num_dbs, s3_prefix, key_col, db_path_template, shard_prefix, key_encoding,
         sharding, custom) = build
        data = {
            "required_build": {
                "run_id": run_id, "created_at": created_at, "num_dbs": num_dbs, "s3_prefix": s3_prefix,
                "key_col": key_col, "sharding": _json_value(sharding), "db_path_template": db_path_template,
                "shard_prefix": shard_prefix, "format_version": 4, "key_encoding": key_encoding,
            },
            "shards": [
                {"db_id": db_id, "db_url": db_url, "attempt": attempt, "row_count": row_count, "db_bytes": db_bytes,
                 "checkpoint_id": checkpoint_id, "min_key": _json_value(min_key), "max_key": _json_value(max_key),
                 "writer_info": _json_value(writer_info)}
                for (db_id, db_url, attempt, row_count, db_bytes, checkpoint_id, min_key, max_key, writer_info)
                in shard_rows
            ],
            "custom": _json_value(custom) or {},
        }
        parsed = manifest_from_json(data)
        _engine.check_manifest_json(manifest_to_json(parsed.required_build, parsed.shards, parsed.custom))
        return parsed

    def list_manifests(self, *, limit: int = 10) -> list[ManifestRef]:
        """At most ``limit`` manifests, newest ``created_at`` first (0: none, as the reference's
        ``LIMIT 0`` and the other stores)."""
        if check_list_limit(limit) == 0:
            return []
        with self._transaction("read_committed", "listing manifests") as cur:
            cur.execute(self._sql["list_builds"], (limit,))
            rows = cur.fetchall()
        return [_ref(row, 1) for row in rows]

    def set_current(self, ref: str, *, expected_ref: str | None = None) -> None:
        """Points the current pointer at manifest ``ref`` (``ManifestStoreError`` when none has that
        ref). With ``expected_ref``, only while the pointer still names it ("" : no pointer yet),
        else :class:`PublishCurrentError`."""
        if not isinstance(ref, str):
            raise ConfigValidationError(f"ref must be a string, got {ref!r}")
        with self._transaction("read_committed", f"setting the current manifest to {ref!r}") as cur:
            cur.execute(self._sql["lock_pointer"])
            cur.execute(self._sql["build_exists"], (ref,))
            if cur.fetchone() is None:
                raise ManifestStoreError(f"manifest {ref!r} does not exist in {self._sql['builds_table']}")
            if expected_ref is not None:
                cur.execute(self._sql["current"])
                row = cur.fetchone()
                now = "" if row is None else str(row[0])
                if now != expected_ref:
                    raise PublishCurrentError(
                        f"the current manifest is {now!r}, not {expected_ref!r} as expected: another writer "
                        "moved it", manifest_ref=ref)
            cur.execute(self._sql["insert_pointer"], (ref,))


def _key(value: Any) -> Any:
    """A shard's min_key / max_key as JSON (bytes as a list of byte values, as JSON has no bytes)."""
    return list(value) if isinstance(value, (bytes, bytearray)) else value


def _json_value(value: Any) -> Any:
    """A JSON column as a Python value: drivers hand back text (``::text`` columns) or decoded values."""
    if value is None or not isinstance(value, (str, bytes)):
        return value
    return json.loads(value)
