"""A snapshot's manifest as Python data, and the reference to a published one.

These are the types a :class:`shardvec.manifest_store.ManifestStore` takes and returns, with the
attribute names of shardyfusion's ``shardyfusion.manifest`` (``ParsedManifest.required_build``,
``RequiredShardMeta.db_url``, ``ManifestRef.published_at``, ...), so a manifest store written for
shardyfusion works unchanged. They are plain dataclasses: timestamps are timezone-aware UTC
``datetime`` values, enumerated fields (``sharding.strategy``, ``key_encoding``, ...) are their text
values ("hash", "raw", ...).

The engine hands manifests to Python and back as JSON (:func:`manifest_from_json`,
:func:`manifest_to_json`); the field names there are the same as the attributes here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime, timezone
from typing import Any

from shardvec.errors import ConfigValidationError, ManifestParseError

__all__ = [
    "MANIFEST_TIMESTAMP_FMT",
    "SQLITE_MANIFEST_CONTENT_TYPE",
    "ManifestRef",
    "ManifestShardingSpec",
    "ParsedManifest",
    "RequiredBuildMeta",
    "RequiredShardMeta",
    "WriterInfo",
    "format_timestamp",
    "manifest_from_json",
    "manifest_to_json",
    "parse_timestamp",
]

#: Content type of a manifest in the object-store layout (a serialised SQLite database).
SQLITE_MANIFEST_CONTENT_TYPE = "application/x-sqlite3"

#: How manifest folder names, pointer times and ``created_at`` print a UTC time.
MANIFEST_TIMESTAMP_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_timestamp(value: datetime) -> str:
    """``value`` (naive values count as UTC) as ``2026-03-14T10:30:00.000000Z``."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime(MANIFEST_TIMESTAMP_FMT)


def check_list_limit(limit: Any) -> int:
    """A manifest store's ``list_manifests`` limit: an int >= 0 (not a bool), else
    ``ConfigValidationError`` naming it."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ConfigValidationError(f"limit must be an integer >= 0, got {limit!r}")
    return limit


def check_publish_run_id(run_id: str, required_build: RequiredBuildMeta) -> None:
    """A manifest store's ``publish`` is given the run id twice; they must agree."""
    if run_id != required_build.run_id:
        raise ConfigValidationError(
            f"run_id {run_id!r} differs from required_build.run_id {required_build.run_id!r}")


def parse_timestamp(text: str, *, field_name: str = "timestamp") -> datetime:
    """An ISO-8601 time (``Z`` or an offset; none means UTC) as an aware UTC ``datetime``.

    Raises :class:`ManifestParseError` naming ``field_name`` and the text when it does not parse.
    """
    if not isinstance(text, str):
        raise ManifestParseError(f"{field_name} must be an ISO-8601 string, got {text!r}")
    normalised = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        value = datetime.fromisoformat(normalised)
    except ValueError as exc:
        raise ManifestParseError(f"{field_name} {text!r} is not an ISO-8601 time: {exc}") from exc
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


@dataclass(slots=True, frozen=True)
class ManifestRef:
    """A published manifest: ``ref`` is what ``load_manifest`` and ``set_current`` take (a URL in
    the object-store layout, an opaque string in other stores)."""

    ref: str
    run_id: str
    published_at: datetime


@dataclass(slots=True)
class ManifestShardingSpec:
    """The manifest's ``sharding`` field (vector snapshots keep the reference's KV placeholder:
    strategy "hash", hash_algorithm "xxh3_64", the rest None)."""

    strategy: str = "hash"
    routing_values: list[Any] | None = None
    cel_expr: str | None = None
    cel_columns: dict[str, str] | None = None
    hash_algorithm: str = "xxh3_64"


@dataclass(slots=True)
class RequiredBuildMeta:
    """What every manifest says about its build."""

    run_id: str
    created_at: datetime
    num_dbs: int
    s3_prefix: str
    key_col: str = "_vector_id"
    sharding: ManifestShardingSpec = field(default_factory=ManifestShardingSpec)
    db_path_template: str = "db={db_id:05d}"
    shard_prefix: str = "shards"
    format_version: int = 4
    key_encoding: str = "raw"


@dataclass(slots=True, frozen=True)
class WriterInfo:
    """Which task attempt wrote a shard, and how long it took."""

    stage_id: int | None = None
    task_attempt_id: int | None = None
    attempt: int = 0
    duration_ms: int = 0


@dataclass(slots=True)
class RequiredShardMeta:
    """One non-empty shard of a manifest."""

    db_id: int
    db_url: str | None = None
    attempt: int = 0
    row_count: int = 0
    db_bytes: int = 0
    min_key: int | str | bytes | None = None
    max_key: int | str | bytes | None = None
    checkpoint_id: str | None = None
    writer_info: WriterInfo = field(default_factory=WriterInfo)


@dataclass(slots=True)
class ParsedManifest:
    """A whole manifest: the build metadata, its shards (ascending ``db_id``) and ``custom``
    (vector snapshots keep their routing metadata under ``custom["vector"]``)."""

    required_build: RequiredBuildMeta
    shards: list[RequiredShardMeta]
    custom: dict[str, Any] = field(default_factory=dict)


# --- JSON form shared with the engine ------------------------------------------------------------


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise ManifestParseError(f"manifest {where}: field {key!r} is missing")
    return data[key]


def _int_field(data: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = data.get(key, default) if default is not None else _require(data, key, where)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestParseError(f"manifest {where}.{key} must be an integer, got {value!r}")
    return value


def _writer_info_from_json(data: Any) -> WriterInfo:
    if data is None:
        return WriterInfo()
    if isinstance(data, WriterInfo):
        return data
    if not isinstance(data, dict):
        raise ManifestParseError(f"manifest shard writer_info must be an object, got {data!r}")
    return WriterInfo(
        stage_id=data.get("stage_id"),
        task_attempt_id=data.get("task_attempt_id"),
        attempt=int(data.get("attempt", 0) or 0),
        duration_ms=int(data.get("duration_ms", 0) or 0),
    )


def manifest_from_json(data: dict[str, Any] | str) -> ParsedManifest:
    """A :class:`ParsedManifest` from the engine's JSON form (an object or its text).

    Raises :class:`ManifestParseError` naming the field when a required field is missing or has
    the wrong type.
    """
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise ManifestParseError(f"manifest JSON does not parse: {exc}") from exc
    build = _require(data, "required_build", "")
    if not isinstance(build, dict):
        raise ManifestParseError(f"manifest required_build must be an object, got {build!r}")
    sharding = build.get("sharding") or {}
    if not isinstance(sharding, dict):
        raise ManifestParseError(f"manifest required_build.sharding must be an object, got {sharding!r}")
    required = RequiredBuildMeta(
        run_id=str(_require(build, "run_id", "required_build")),
        created_at=parse_timestamp(_require(build, "created_at", "required_build"),
                                   field_name="manifest required_build.created_at"),
        num_dbs=_int_field(build, "num_dbs", "required_build"),
        s3_prefix=str(_require(build, "s3_prefix", "required_build")),
        key_col=str(build.get("key_col", "_vector_id")),
        sharding=ManifestShardingSpec(
            strategy=str(sharding.get("strategy", "hash")),
            routing_values=sharding.get("routing_values"),
            cel_expr=sharding.get("cel_expr"),
            cel_columns=sharding.get("cel_columns"),
            hash_algorithm=str(sharding.get("hash_algorithm", "xxh3_64")),
        ),
        db_path_template=str(build.get("db_path_template", "db={db_id:05d}")),
        shard_prefix=str(build.get("shard_prefix", "shards")),
        format_version=_int_field(build, "format_version", "required_build", 4),
        key_encoding=str(build.get("key_encoding", "raw")),
    )
    shards_data = _require(data, "shards", "")
    if not isinstance(shards_data, list):
        raise ManifestParseError(f"manifest shards must be a list, got {shards_data!r}")
    shards = [
        RequiredShardMeta(
            db_id=_int_field(s, "db_id", "shards[]"),
            db_url=s.get("db_url"),
            attempt=_int_field(s, "attempt", "shards[]", 0),
            row_count=_int_field(s, "row_count", "shards[]", 0),
            db_bytes=_int_field(s, "db_bytes", "shards[]", 0),
            min_key=s.get("min_key"),
            max_key=s.get("max_key"),
            checkpoint_id=s.get("checkpoint_id"),
            writer_info=_writer_info_from_json(s.get("writer_info")),
        )
        for s in shards_data
    ]
    custom = data.get("custom") or {}
    if not isinstance(custom, dict):
        raise ManifestParseError(f"manifest custom must be an object, got {custom!r}")
    return ParsedManifest(required_build=required, shards=shards, custom=custom)


def _plain(value: Any) -> Any:
    """Enum members (the reference's str enums) as their values."""
    return getattr(value, "value", value)


def manifest_to_json(
    required_build: RequiredBuildMeta, shards: list[RequiredShardMeta], custom: dict[str, Any]
) -> str:
    """The engine's JSON form of a manifest (the inverse of :func:`manifest_from_json`)."""
    sharding = required_build.sharding
    build = {
        "run_id": required_build.run_id,
        "created_at": format_timestamp(required_build.created_at)
        if isinstance(required_build.created_at, datetime) else str(required_build.created_at),
        "num_dbs": required_build.num_dbs,
        "s3_prefix": required_build.s3_prefix,
        "key_col": required_build.key_col,
        "sharding": {
            "strategy": _plain(sharding.strategy),
            "routing_values": sharding.routing_values,
            "cel_expr": sharding.cel_expr,
            "cel_columns": sharding.cel_columns,
            "hash_algorithm": _plain(sharding.hash_algorithm),
        },
        "db_path_template": required_build.db_path_template,
        "shard_prefix": required_build.shard_prefix,
        "format_version": required_build.format_version,
        "key_encoding": _plain(required_build.key_encoding),
    }
    shard_list = []
    for shard in shards:
        info = shard.writer_info
        shard_list.append({
            "db_id": shard.db_id,
            "db_url": shard.db_url,
            "attempt": shard.attempt,
            "row_count": shard.row_count,
            "db_bytes": shard.db_bytes,
            "checkpoint_id": shard.checkpoint_id,
            "writer_info": asdict(info) if is_dataclass(info) else dict(info or {}),
        })
    return json.dumps({"required_build": build, "shards": shard_list, "custom": custom or {}})
