"""Snapshot administration: list the published snapshots, read which one is current, point
``_CURRENT`` back at an older one, and delete shard data no kept snapshot needs.

The same operations as the ``shardvec history``, ``rollback`` and ``cleanup`` commands, over the same
``s3_prefix`` (``s3://bucket/prefix`` or a local folder) the writer and reader take::

    import shardvec
    for snap in shardvec.history("s3://bucket/vectors", limit=5):
        print(snap.published_at, snap.run_id, snap.current, snap.manifest.total_vectors)
    shardvec.rollback("s3://bucket/vectors", previous=True)
    report = shardvec.cleanup("s3://bucket/vectors", keep_last=3, dry_run=True)
    assert shardvec.verify("s3://bucket/vectors", sample=4).ok

Results are read-only engine objects with typed fields (:class:`HistoryEntry`,
:class:`ManifestSummary`, :class:`CurrentSnapshot`, :class:`RollbackResult`,
:class:`CleanupReport`, :class:`VerifyReport`). Engine errors raise the :mod:`shardvec.errors` classes the writer and
reader raise; a bad argument raises :class:`~shardvec.errors.ConfigValidationError` naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from os import PathLike
from typing import Any

from shardvec._native import _engine
from shardvec.config import engine_store_options, require_utf8
from shardvec.errors import ConfigValidationError
from shardvec.run_registry import live_run_ids

HistoryEntry = _engine.HistoryEntry
ManifestSummary = _engine.ManifestSummary
CurrentSnapshot = _engine.CurrentSnapshot
RollbackResult = _engine.RollbackResult
CleanupReport = _engine.CleanupReport
VerifyProblem = _engine.VerifyProblem
VerifyReport = _engine.VerifyReport

__all__ = [
    "CleanupReport",
    "CurrentSnapshot",
    "HistoryEntry",
    "ManifestSummary",
    "RollbackResult",
    "VerifyProblem",
    "VerifyReport",
    "cleanup",
    "current",
    "history",
    "rollback",
    "verify",
]


def _store(s3_prefix: str | PathLike[str]) -> str:
    if isinstance(s3_prefix, PathLike):
        s3_prefix = str(s3_prefix)
    if not isinstance(s3_prefix, str) or not s3_prefix:
        raise ConfigValidationError(f"s3_prefix must be a non-empty str or path, got {s3_prefix!r}")
    return require_utf8(s3_prefix, "s3_prefix")


def _options(credential_provider: Callable[[], Any] | None,
             s3_connection_options: dict[str, Any] | None) -> _engine.StoreOptions:
    # Imported here: shardvec imports this module, and importing shardvec.config alone must not load
    # shardvec.vector.
    from shardvec.vector._bridge import store_options

    return store_options(engine_store_options(credential_provider, s3_connection_options))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_int(value: object, field_name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or value < minimum:  # type: ignore[operator]
        raise ConfigValidationError(f"{field_name} must be an int >= {minimum} when set, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def _optional_text(value: object, field_name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigValidationError(f"{field_name} must be a str when set, got {value!r}")
    return require_utf8(value, field_name)


def _flag(value: object, field_name: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigValidationError(f"{field_name} must be True or False, got {value!r}")
    return value


def history(
    s3_prefix: str | PathLike[str],
    *,
    limit: int | None = None,
    read_manifests: bool = True,
    credential_provider: Callable[[], Any] | None = None,
    s3_connection_options: dict[str, Any] | None = None,
) -> list[HistoryEntry]:
    """Published snapshots, newest first: at most ``limit`` (None: all). With ``read_manifests``
    each entry's ``manifest`` summarises its manifest (None, with ``manifest_error`` set, when it
    cannot be read); without, only the listing is read. An unreadable ``_CURRENT`` marks no entry
    current, so history still finds a rollback target."""
    store = _store(s3_prefix)
    count = _optional_int(limit, "limit", 1)
    read = _flag(read_manifests, "read_manifests")
    return list(_engine.admin_history(store, _options(credential_provider, s3_connection_options),
                                      count or 0, read))


def current(
    s3_prefix: str | PathLike[str],
    *,
    credential_provider: Callable[[], Any] | None = None,
    s3_connection_options: dict[str, Any] | None = None,
) -> CurrentSnapshot | None:
    """What ``_CURRENT`` names, or None when nothing was published; a pointer that does not parse
    raises a :class:`~shardvec.errors.ShardvecError` naming it."""
    store = _store(s3_prefix)
    return _engine.admin_current(store, _options(credential_provider, s3_connection_options))


def rollback(
    s3_prefix: str | PathLike[str],
    *,
    run_id: str | None = None,
    ref: str | None = None,
    offset: int | None = None,
    previous: bool = False,
    credential_provider: Callable[[], Any] | None = None,
    s3_connection_options: dict[str, Any] | None = None,
) -> RollbackResult:
    """Points ``_CURRENT`` at an earlier manifest, chosen by exactly one of: ``run_id`` (that run's
    newest manifest), ``ref`` (a manifest URL or key), ``offset`` (position in :func:`history`,
    0 = newest) or ``previous=True`` (the manifest published just before the current one).

    Refused, leaving ``_CURRENT`` alone, when the target's manifest or any shard it names is gone
    (e.g. after :func:`cleanup`), or when another publish, rollback or cleanup races it; the
    :class:`~shardvec.errors.ShardvecError` raised names the target."""
    store = _store(s3_prefix)
    chosen = (
        _optional_text(run_id, "run_id"),
        _optional_text(ref, "ref"),
        _optional_int(offset, "offset", 0),
        _flag(previous, "previous"),
    )
    given = sum(1 for value in chosen[:3] if value is not None) + int(chosen[3])
    if given != 1:
        raise ConfigValidationError(
            f"exactly one of run_id, ref, offset or previous=True selects the rollback target (got {given}: "
            f"run_id={run_id!r}, ref={ref!r}, offset={offset!r}, previous={previous!r})"
        )
    return _engine.admin_rollback(store, _options(credential_provider, s3_connection_options), *chosen)


def cleanup(
    s3_prefix: str | PathLike[str],
    *,
    dry_run: bool = False,
    keep_last: int | None = None,
    older_than: timedelta | None = None,
    credential_provider: Callable[[], Any] | None = None,
    s3_connection_options: dict[str, Any] | None = None,
    shard_prefix: str = "shards",
    run_registry_prefix: str = "runs",
    run_registry: Any = None,
) -> CleanupReport:
    """Deletes the shard data of runs no kept manifest needs, stale attempt folders, and leftovers of
    killed processes. Kept: the current snapshot, plus every manifest when neither ``keep_last`` nor
    ``older_than`` is given, else the newest ``keep_last`` and those published within ``older_than``
    (whole seconds). Manifests are never deleted. ``dry_run`` reports and deletes nothing.

    ``shard_prefix`` and ``run_registry_prefix`` are the writers' ``output`` settings: only runs
    under ``<shard_prefix>/`` are considered, and a run whose record under ``<run_registry_prefix>/``
    says it is running within its lease is never touched. ``run_registry`` (the writers'
    ``lifecycle.run_registry``) is consulted too: a run its ``list_records()`` reports running within
    its lease is never touched either."""
    store = _store(s3_prefix)
    dry = _flag(dry_run, "dry_run")
    keep = _optional_int(keep_last, "keep_last", 1)
    seconds: int | None = None
    if older_than is not None:
        if not isinstance(older_than, timedelta) or older_than < timedelta(0) \
                or older_than % timedelta(seconds=1) != timedelta(0):
            raise ConfigValidationError(
                f"older_than must be a datetime.timedelta of whole seconds >= 0 when set, got {older_than!r}"
            )
        seconds = int(older_than.total_seconds())
    for name, value in (("shard_prefix", shard_prefix), ("run_registry_prefix", run_registry_prefix)):
        if not isinstance(value, str):
            raise ConfigValidationError(f"{name} must be a string, got {value!r}")
    _engine.validate_layout(shard_prefix, "db={db_id:05d}", run_registry_prefix, field_prefix="")
    live = [] if run_registry is None else live_run_ids(run_registry)
    return _engine.admin_cleanup(store, _options(credential_provider, s3_connection_options), dry, keep, seconds,
                                 shard_prefix=shard_prefix, run_registry_prefix=run_registry_prefix, live_runs=live)


def verify(
    s3_prefix: str | PathLike[str],
    *,
    run_id: str | None = None,
    ref: str | None = None,
    offset: int | None = None,
    sample: int | None = None,
    seed: int | None = None,
    max_workers: int = 0,
    credential_provider: Callable[[], Any] | None = None,
    s3_connection_options: dict[str, Any] | None = None,
    manifest_store: Any = None,
) -> VerifyReport:
    """Checks a published snapshot against its manifest, as ``shardvec verify`` does: the current one,
    or the one ``run_id``, ``ref`` or ``offset`` selects (at most one). Every shard's presence and size
    are checked; the contents (digest, vec0 schema of the snapshot's dim and metric, row counts) of
    every shard, or of ``sample`` random ones (``seed`` makes the choice repeatable). The routing
    artifacts are read and checked too. Problems are the report's (``report.ok`` is False, each one
    in ``report.problems`` naming its check, shard and object); no snapshot to check raises.
    ``manifest_store`` (a :mod:`shardvec.manifest_store` store or protocol object; None: beside the
    shards) supplies the current pointer and the manifests, as for the reader."""
    from shardvec.manifest_store import engine_manifest_store

    store = _store(s3_prefix)
    chosen = (_optional_text(run_id, "run_id"), _optional_text(ref, "ref"), _optional_int(offset, "offset", 0))
    if sum(1 for value in chosen if value is not None) > 1:
        raise ConfigValidationError(
            f"at most one of run_id, ref or offset selects the snapshot (got run_id={run_id!r}, ref={ref!r}, "
            f"offset={offset!r})"
        )
    count = _optional_int(sample, "sample", 1)
    chosen_seed = _optional_int(seed, "seed", 0)
    if chosen_seed is not None and count is None:
        raise ConfigValidationError(f"seed ({seed!r}) chooses the shards of sample; give sample too")
    workers = _optional_int(max_workers, "max_workers", 0)
    return _engine.admin_verify(store, _options(credential_provider, s3_connection_options), *chosen, count,
                                chosen_seed, workers or 0, engine_manifest_store(manifest_store))
