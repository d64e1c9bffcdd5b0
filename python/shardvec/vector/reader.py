"""``ShardedVectorReader``: routed, parallel search over the snapshot ``_CURRENT`` names (C++ engine)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from shardvec._arrays import float32_array
from shardvec._native import _engine
from shardvec.admin import verify
from shardvec.config import engine_store_options, refuse_unsupported, require_utf8
from shardvec.errors import ConfigValidationError, ReaderStateError
from shardvec.rate_limiter import RateLimiter, check_rate_limiter
from shardvec.sqlite_vec_adapter import check_reader_factory
from shardvec.vector._bridge import reader_health, reader_options, shard_detail, snapshot_info
from shardvec.vector.types import (
    SearchResult,
    ShardDetail,
    SnapshotInfo,
    ReaderHealth,
    VectorSearchResponse,
)


#: The key of the dict a hit's ``payload`` is when the shard stores a payload that is not a JSON
#: object nesting at most 512 levels (invalid JSON, another JSON type, invalid UTF-8 or deeper
#: nesting): ``{"__raw_payload__": "<the stored text>"}``, bytes that are not UTF-8 replaced by U+FFFD.
RAW_PAYLOAD_KEY = "__raw_payload__"


def _payload(text: str | None) -> dict[str, Any] | None:
    """A hit's payload. The engine hands back a JSON object of at most 512 levels (or the raw-text
    fallback), so ``json.loads`` succeeds; a caller already deep in recursion still gets the fallback
    rather than a ``RecursionError``."""
    if text is None:
        return None
    try:
        return json.loads(text)  # type: ignore[no-any-return]
    except (RecursionError, ValueError):
        return {RAW_PAYLOAD_KEY: text}


def hit_results(hits: list[tuple[Any, float, str | None]]) -> list[SearchResult]:
    """The engine's (id, score, payload text) hits as ``SearchResult`` objects."""
    return [SearchResult(id=i, score=float(s), payload=_payload(p)) for i, s, p in hits]


def _response(raw: tuple[list[tuple[Any, float, str | None]], int, float]) -> VectorSearchResponse:
    hits, shards, latency = raw
    return VectorSearchResponse(results=hit_results(hits), num_shards_queried=int(shards), latency_ms=float(latency))


class ShardedVectorReader:
    """Searches the snapshot a store's ``_CURRENT`` names; ``refresh()`` moves to a newer one.

    ``s3_prefix`` is ``s3://bucket/prefix`` or a local folder; shards are downloaded lazily into
    ``local_root`` and checked against the manifest's size and digest. ``local_root`` defaults to
    ``$XDG_CACHE_HOME/shardvec/shards/<hash of the prefix>`` (or ``~/.cache/shardvec/shards/…``),
    created 0700; a folder not owned by this user or writable by group or others is refused.
    ``max_workers`` is the number of search threads, 1..1024 (None or 0: one per usable CPU); a
    thread the system refuses (a process or memory limit) raises instead of crashing.
    ``max_cache_bytes`` (download tier; None: 2 GiB) bounds ``local_root``: after each refresh and
    download, shards no live snapshot uses are removed, least recently used first, until it holds at
    most this many bytes (0: every unused one). A local folder store's shards are read where they lie
    (verified once, never copied), so they do not enter the cache.

    ``rate_limiter`` (a :class:`~shardvec.rate_limiter.RateLimiter`, e.g. ``TokenBucket(100)``):
    ``search`` takes one token (``acquire()``) before it searches, ``batch_search`` one per query,
    as the reference's per-query searches do. The bucket emits its throttled/denied metric events
    to the ``metrics_collector`` it was given.

    ``reader_factory`` picks how shards are read: None or ``SqliteVecReaderFactory(...)`` (the
    download tier above), ``SqliteVecRangeReaderFactory(...)`` (ranged GETs: only the pages a search
    needs, nothing written locally) or ``AdaptiveSqliteVecReaderFactory(...)`` (per snapshot, by
    shard sizes), or their async names; the factory's settings take effect (see
    ``shardvec.sqlite_vec_adapter``), and ``read_stats()`` reports the tier in use and the bytes read.
    ``manifest_store`` (a :mod:`shardvec.manifest_store` store or any object implementing its
    protocol) supplies the current pointer and the manifests at open, refresh and fallback, None
    reading them beside the shards. ``manifest_ref`` (a manifest's ref: in the store's own layout its
    URL or its key under the store) opens that published snapshot instead of the current one, for good: ``refresh()`` then returns
    False without reading the pointer. ``filter_cache_bytes`` (None: 64 MiB; 0 keeps none) bounds the
    bitmaps of passing rows that filtered searches keep per shard and filter, so that a filter asked
    again is not evaluated again (``read_stats()`` counts both). Anything else raises
    ``ConfigValidationError`` naming the parameter.
    """

    def __init__(
        self,
        *,
        s3_prefix: str,
        local_root: str | None = None,
        reader_factory: Any = None,
        manifest_store: Any = None,
        max_workers: int | None = None,
        max_fallback_attempts: int = 3,
        preload_shards: bool = False,
        max_cached_shards: int | None = None,
        max_cache_bytes: int | None = None,
        filter_cache_bytes: int | None = None,
        manifest_ref: str | None = None,
        metrics_collector: Any = None,
        rate_limiter: RateLimiter | None = None,
        credential_provider: Callable[[], Any] | None = None,
        s3_connection_options: dict[str, Any] | None = None,
    ) -> None:
        for name, text in (("s3_prefix", s3_prefix), ("local_root", local_root), ("manifest_ref", manifest_ref)):
            if isinstance(text, str):
                require_utf8(text, name)
        tier = check_reader_factory(reader_factory)
        check_rate_limiter(rate_limiter)
        self._rate_limiter = rate_limiter
        self._s3_prefix = s3_prefix
        self._manifest_store = manifest_store
        self._credential_provider = credential_provider
        self._s3_connection_options = s3_connection_options
        # An empty cache folder is the engine's per-user default (see the class docstring).
        self._engine = _engine.Reader(reader_options(
            s3_prefix,
            engine_store_options(credential_provider, s3_connection_options),
            str(local_root or ""),
            0 if max_workers is None else int(max_workers),
            int(max_fallback_attempts),
            int(max_cached_shards or 0),
            bool(preload_shards),
            metrics_collector,
            manifest_store,
            tier,
            max_cache_bytes=max_cache_bytes,
            filter_cache_bytes=filter_cache_bytes,
            manifest_ref=manifest_ref,
        ))
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise ReaderStateError("Reader is closed")

    def _take_tokens(self, queries: int) -> None:
        """One ``acquire()`` per query (a batch takes its tokens before it runs)."""
        if self._rate_limiter is not None:
            for _ in range(queries):
                self._rate_limiter.acquire()

    def search(self, query: Any, top_k: int = 10, *, shard_ids: Sequence[int] | None = None,
               num_probes: int | None = None, routing_context: dict[str, Any] | None = None,
               sublist_probes: int | None = None, filter: str | None = None,  # noqa: A002
               max_extra_probes: int | None = None) -> VectorSearchResponse:
        """The ``top_k`` nearest vectors to ``query`` (lower score is closer). A CEL snapshot
        needs ``routing_context`` (the expression's variables), which selects the one shard searched;
        ``shard_ids`` bypasses routing for every strategy. On a snapshot built with sub-lists,
        ``sublist_probes`` sets how many are scanned (nearest first across the probed shards; by
        default it follows ``num_probes``); refused on a snapshot without them. ``filter`` is a CEL
        condition over the snapshot's filter columns (e.g. ``"lang == 'en' && year >= 2020"``): only
        passing rows are scored, and when the routed shards hold fewer than ``top_k`` of them further
        shards are searched in routing order (at most ``max_extra_probes`` more; default no bound)."""
        self._check_open()
        vector = float32_array(query, "query").reshape(-1)
        ids = None if shard_ids is None else [int(s) for s in shard_ids]
        self._take_tokens(1)
        return _response(self._engine.search(vector, int(top_k), num_probes, ids, routing_context, sublist_probes,
                                             filter, max_extra_probes))

    def batch_search(self, queries: Any, top_k: int = 10, *, shard_ids: Sequence[int] | None = None,
                     num_probes: int | None = None,
                     routing_context: dict[str, Any] | None = None,
                     sublist_probes: int | None = None, filter: str | None = None,  # noqa: A002
                     max_extra_probes: int | None = None) -> list[VectorSearchResponse]:
        """One response per row of a 2-D ``queries`` array, searched in parallel in C++. On a CEL
        snapshot, ``routing_context`` selects the shard for every query; ``sublist_probes`` as in
        :meth:`search`, and so are ``filter`` and ``max_extra_probes``."""
        self._check_open()
        matrix = float32_array(queries, "queries")
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        ids = None if shard_ids is None else [int(s) for s in shard_ids]
        self._take_tokens(int(matrix.shape[0]))
        return [_response(raw)
                for raw in self._engine.batch_search(matrix, int(top_k), num_probes, ids, routing_context,
                                                     sublist_probes, filter, max_extra_probes)]

    def route_vector(self, query: Any, *, num_probes: int | None = None,
                     routing_context: dict[str, Any] | None = None) -> list[int]:
        """The shards a query would probe (routing only); on a CEL snapshot, the one shard
        ``routing_context`` selects."""
        self._check_open()
        vector = float32_array(query, "query").reshape(-1)
        return list(self._engine.route(vector, num_probes, routing_context))

    def read_stats(self) -> dict[str, Any]:
        """What reading shards has cost so far: ``reader_mode`` (the current snapshot's tier,
        ``"download"`` or ``"range"``; ``auto`` resolved), ``range_bytes_fetched`` and
        ``range_requests`` (ranged GETs), ``shards_downloaded`` and ``bytes_downloaded``; and, for
        filtered searches, ``filter_bitmaps_evaluated`` (a shard's passing rows computed from its filter
        columns) and ``filter_bitmaps_reused`` (taken from the cache ``filter_cache_bytes`` bounds)."""
        self._check_open()
        stats = self._engine.stats()
        return {"reader_mode": stats.reader_mode.name.lower(), "range_bytes_fetched": stats.range_bytes_fetched,
                "range_requests": stats.range_requests, "shards_downloaded": stats.shards_downloaded,
                "bytes_downloaded": stats.bytes_downloaded,
                "filter_bitmaps_evaluated": stats.filter_bitmaps_evaluated,
                "filter_bitmaps_reused": stats.filter_bitmaps_reused}

    def snapshot_info(self) -> SnapshotInfo:
        self._check_open()
        return snapshot_info(self._engine.info())

    def shard_details(self) -> list[ShardDetail]:
        self._check_open()
        return [shard_detail(d) for d in self._engine.shard_details()]

    def shard_for_id(self, shard_id: int) -> ShardDetail:
        """The shard ``shard_id`` of the pinned snapshot (``db_url`` and ``checkpoint_id`` None and
        ``vector_count`` 0 for an empty one). An id outside ``[0, num_dbs)`` raises
        ``ConfigValidationError`` naming it (the reference returns an empty detail for it)."""
        self._check_open()
        if isinstance(shard_id, bool) or not isinstance(shard_id, int):
            raise ConfigValidationError(f"shard_id must be an int, got {shard_id!r}")
        details = self._engine.shard_details()
        if not 0 <= shard_id < len(details):
            raise ConfigValidationError(f"shard_id {shard_id} is outside [0, {len(details)}) (num_dbs)")
        return shard_detail(details[shard_id])

    def health(self, staleness_threshold: timedelta | None = None, *, deep: bool = False,
               sample: int | None = None) -> ReaderHealth:
        """The reader's health. ``deep=True`` also verifies the shards of the snapshot it serves
        against their manifest (``shardvec.verify``: presence, size, digest, schema, row counts;
        ``sample`` reads the contents of that many random shards only): a problem makes the status
        "unhealthy", and the report is ``.deep``. ``sample`` without ``deep`` is refused."""
        if not isinstance(deep, bool):
            raise ConfigValidationError(f"deep must be a bool, got {deep!r}")
        if sample is not None and not deep:
            raise ConfigValidationError(f"sample ({sample!r}) applies to health(deep=True); give deep=True too")
        if self._closed:
            return ReaderHealth(status="unhealthy", manifest_ref=None, manifest_age_seconds=None,
                                      num_shards=0, is_closed=True)
        seconds = None if staleness_threshold is None else staleness_threshold.total_seconds()
        health = reader_health(self._engine.health(seconds))
        if not deep or health.manifest_ref is None:
            return health
        report = verify(self._s3_prefix, ref=health.manifest_ref, sample=sample, manifest_store=self._manifest_store,
                        credential_provider=self._credential_provider,
                        s3_connection_options=self._s3_connection_options)
        return dataclasses.replace(health, status=health.status if report.ok else "unhealthy", deep=report)

    def refresh(self) -> bool:
        """Moves to the snapshot ``_CURRENT`` names now; False when it did not change."""
        self._check_open()
        return bool(self._engine.refresh())

    def close(self) -> None:
        if not self._closed:
            self._engine.close()
            self._closed = True

    def __enter__(self) -> ShardedVectorReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
