"""sqlite-vec shard factories (the names of shardyfusion's ``sqlite_vec_adapter.py``).

In shardyfusion these factories build and read each shard from Python. In shardvec the C++ engine
builds, uploads, downloads and searches the shards itself, so the factories select what the engine
does: ``SqliteVecFactory`` selects the sqlite-vec backend for a write (``VectorShardedWriteConfig``
checks that its ``VectorSpec`` agrees with ``index_config``), and the reader factories select the
reader's tier with its settings: ``SqliteVecReaderFactory`` (download), ``SqliteVecRangeReaderFactory``
(ranged reads, nothing downloaded) and ``AdaptiveSqliteVecReaderFactory`` (``auto``: per snapshot by
shard sizes), plus their async names. Every setting either takes effect or raises
``ConfigValidationError`` naming it. Calling a factory raises ``NotImplementedError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from .config import (
    CredentialProvider,
    S3ConnectionOptions,
    VectorSpec,
    refuse_unsupported,
    validate_s3_connection_options,
)
from .config import _validate_credential_provider as validate_credential_provider
from .errors import ConfigValidationError, SqliteVecAdapterError

__all__ = [
    "DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES",
    "DEFAULT_AUTO_TOTAL_BUDGET_BYTES",
    "DEFAULT_MMAP_SIZE",
    "DEFAULT_PAGE_CACHE_PAGES",
    "SUPPORTED_PAGE_SIZES",
    "AdaptiveSqliteVecReaderFactory",
    "AsyncAdaptiveSqliteVecReaderFactory",
    "AsyncSqliteVecRangeReaderFactory",
    "AsyncSqliteVecReaderFactory",
    "ReaderTier",
    "SqliteAccessPolicy",
    "SqliteVecAdapter",
    "SqliteVecAdapterError",
    "SqliteVecFactory",
    "SqliteVecRangeReaderFactory",
    "SqliteVecReaderFactory",
    "SqliteVecShardReader",
    "ThresholdPolicy",
    "check_reader_factory",
    "decide_access_mode",
    "make_async_sqlite_vec_reader_factory",
    "make_sqlite_vec_reader_factory",
    "make_threshold_policy",
]

#: Page sizes the reference accepts (plus ``"auto"``).
SUPPORTED_PAGE_SIZES = (4096, 8192, 16384, 32768, 65536)

#: The page size the engine builds every shard with.
ENGINE_PAGE_SIZE = 65536

#: Page sizes a ``SqliteVecFactory`` accepts: the engine's, ``"auto"`` (the engine chooses) and the
#: reference's default 4096 (so a program that spells the default keeps working; the engine
#: still builds 65536-byte pages, which only changes the file's layout, not its contents).
ACCEPTED_PAGE_SIZES = (4096, ENGINE_PAGE_SIZE, "auto")

_FACTORY_SETTINGS_HINT = "the engine builds and uploads shards with the write config's own settings"


def _refuse_store_settings(name: str, s3_connection_options: object, credential_provider: object) -> None:
    """A write factory's own store settings: the engine reaches the store with the config's."""
    validate_s3_connection_options(s3_connection_options, field_name=f"{name}.s3_connection_options")
    if s3_connection_options is not None:
        refuse_unsupported(f"{name}.s3_connection_options", s3_connection_options,
                           f"{_FACTORY_SETTINGS_HINT}; pass s3_connection_options there")
    if credential_provider is not None:
        refuse_unsupported(f"{name}.credential_provider", credential_provider,
                           f"{_FACTORY_SETTINGS_HINT}; pass credential_provider there")

#: The reference's download-tier ``mmap_size``.
DEFAULT_MMAP_SIZE = 256 * 1024 * 1024


def check_factory_settings(owner: str, *, page_size: object = 4096, cache_size_pages: object = -2000,
                           mmap_size: object = DEFAULT_MMAP_SIZE, emit_sidecar: object = True) -> None:
    """The settings shardyfusion's sqlite-vec classes share, checked alike wherever they appear:
    ``page_size`` one of the reference's sizes or ``"auto"``; ``cache_size_pages`` and ``mmap_size``
    (an int >= 0) only their defaults, which is what the engine does; ``emit_sidecar`` a bool.
    Errors name ``owner``'s field."""
    if page_size != "auto" and page_size not in SUPPORTED_PAGE_SIZES:
        raise ConfigValidationError(
            f"page_size must be one of {list(SUPPORTED_PAGE_SIZES)} or 'auto', got {page_size!r}"
        )
    if cache_size_pages != -2000:
        refuse_unsupported(f"{owner}.cache_size_pages", cache_size_pages,
                           "the engine sizes its own build cache; leave the default -2000")
    if isinstance(mmap_size, bool) or not isinstance(mmap_size, int):
        raise ConfigValidationError(f"mmap_size must be an int, got {mmap_size!r}")
    if mmap_size < 0:
        raise ConfigValidationError(f"mmap_size must be >= 0, got {mmap_size}")
    if mmap_size != DEFAULT_MMAP_SIZE:
        refuse_unsupported(f"{owner}.mmap_size", mmap_size,
                           f"the engine maps each whole shard; leave the default {DEFAULT_MMAP_SIZE}")
    if not isinstance(emit_sidecar, bool):
        raise ConfigValidationError(f"{owner}.emit_sidecar must be a bool, got {emit_sidecar!r}")


_ENGINE_BUILDS = (
    "{name} is a marker in shardvec: the C++ engine builds and reads sqlite-vec shards itself. "
    "Pass it to {where}; do not call it."
)


@dataclass(slots=True)
class SqliteVecFactory:
    """Selects sqlite-vec shards for a write: ``adapter_factory=SqliteVecFactory(vector_spec=...)``.

    Attributes:
        vector_spec: Dimension and metric; must agree with the write's ``index_config``
            (checked by ``VectorShardedWriteConfig``; the reference never compares them).
        page_size: 65536 (the engine's page size), ``"auto"`` or the reference's default 4096
            (accepted so the default keeps working; the engine builds 65536-byte pages). The
            reference's other sizes are refused.
        cache_size_pages: Only the default -2000 (the engine sizes its own build cache).
        s3_connection_options, credential_provider: Only None; the engine reaches the store
            with the write config's settings.
        supports_vector_writes: Only True.
        emit_sidecar: True or False: the reference uploads its page-cache sidecar best-effort
            and no reader uses it; the engine never writes one.

    The reference signature, documented here, is
    ``factory(*, db_url: str, local_dir: Path, index_config=None) -> VectorIndexWriter``.
    """

    vector_spec: VectorSpec
    page_size: int | Literal["auto"] = 4096
    cache_size_pages: int = -2000
    s3_connection_options: S3ConnectionOptions | None = None
    credential_provider: CredentialProvider | None = None
    supports_vector_writes: bool = True
    emit_sidecar: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.vector_spec, VectorSpec):
            raise ConfigValidationError(
                f"vector_spec must be a VectorSpec, got {type(self.vector_spec).__name__}"
            )
        check_factory_settings("SqliteVecFactory", page_size=self.page_size,
                               cache_size_pages=self.cache_size_pages, emit_sidecar=self.emit_sidecar)
        if self.page_size not in ACCEPTED_PAGE_SIZES:
            refuse_unsupported("SqliteVecFactory.page_size", self.page_size,
                               f"the engine builds {ENGINE_PAGE_SIZE}-byte pages; pass {ENGINE_PAGE_SIZE} or 'auto'")
        if self.supports_vector_writes is not True:
            refuse_unsupported("SqliteVecFactory.supports_vector_writes", self.supports_vector_writes,
                               "sqlite-vec shards always hold vectors; leave it True")
        _refuse_store_settings("SqliteVecFactory", self.s3_connection_options, self.credential_provider)

    def __call__(self, *, db_url: str, local_dir: Path, index_config: Any = None) -> Any:
        """Not supported: raises NotImplementedError (the engine builds the shards)."""
        raise NotImplementedError(
            _ENGINE_BUILDS.format(name="SqliteVecFactory", where="VectorShardedWriteConfig")
        )


# --- reader factories: the tiers ------------------------------------------------------------------

#: The reference's range-tier page cache: pages each open shard keeps.
DEFAULT_PAGE_CACHE_PAGES = 1024
#: ``auto`` picks the range tier when a shard is at least this large...
DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES = 16 * 1024 * 1024
#: ... or when all shards together are.
DEFAULT_AUTO_TOTAL_BUDGET_BYTES = 2 * 1024 * 1024 * 1024


def decide_access_mode(
    *,
    db_bytes_per_shard: Sequence[int],
    per_shard_threshold: int = DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES,
    total_budget: int = DEFAULT_AUTO_TOTAL_BUDGET_BYTES,
) -> Literal["download", "range"]:
    """The rule ``auto`` applies to a snapshot (the engine applies it itself, on every snapshot it
    loads): ``"range"`` when any shard is ``>= per_shard_threshold`` bytes or all of them add up
    to ``>= total_budget``, else ``"download"`` (also for no shards)."""
    sizes = [int(size) for size in db_bytes_per_shard]
    if sizes and (max(sizes) >= per_shard_threshold or sum(sizes) >= total_budget):
        return "range"
    return "download"


@runtime_checkable
class SqliteAccessPolicy(Protocol):
    """The reference's hook for ``auto``: shard sizes in, ``"download"`` or ``"range"`` out. The
    engine decides with the threshold rule only, so an adaptive factory accepts the policy
    :func:`make_threshold_policy` returns and refuses any other."""

    def decide(self, db_bytes_per_shard: Sequence[int]) -> Literal["download", "range"]: ...


@dataclass(frozen=True, slots=True)
class ThresholdPolicy:
    """The threshold rule of :func:`decide_access_mode` as a :class:`SqliteAccessPolicy`."""

    per_shard_threshold: int = DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES
    total_budget: int = DEFAULT_AUTO_TOTAL_BUDGET_BYTES

    def __post_init__(self) -> None:
        _check_int(self.per_shard_threshold, "per_shard_threshold", minimum=1)
        _check_int(self.total_budget, "total_budget", minimum=1)

    def decide(self, db_bytes_per_shard: Sequence[int]) -> Literal["download", "range"]:
        return decide_access_mode(db_bytes_per_shard=db_bytes_per_shard,
                                  per_shard_threshold=self.per_shard_threshold, total_budget=self.total_budget)


def make_threshold_policy(
    *,
    per_shard_threshold: int = DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES,
    total_budget: int = DEFAULT_AUTO_TOTAL_BUDGET_BYTES,
) -> ThresholdPolicy:
    """The threshold rule with these thresholds (bytes, each > 0)."""
    return ThresholdPolicy(per_shard_threshold=per_shard_threshold, total_budget=total_budget)


@dataclass(frozen=True, slots=True)
class ReaderTier:
    """What a reader factory asks of the engine (:func:`check_reader_factory`'s answer).

    ``mmap_size`` None maps each whole shard (a reader without a factory); the store settings, when
    any is set, reach the shards (merged over the reader's own, which still read the manifests)."""

    mode: Literal["download", "range", "auto"] = "download"
    mmap_size: int | None = None
    page_cache_pages: int = DEFAULT_PAGE_CACHE_PAGES
    per_shard_threshold: int = DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES
    total_budget: int = DEFAULT_AUTO_TOTAL_BUDGET_BYTES
    s3_connection_options: S3ConnectionOptions | None = None
    credential_provider: CredentialProvider | None = None

    def has_store_settings(self) -> bool:
        return self.s3_connection_options is not None or self.credential_provider is not None


def _check_int(value: object, field_name: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigValidationError(f"{field_name} must be an int, got {value!r}")
    if value < minimum:
        raise ConfigValidationError(f"{field_name} must be >= {minimum}, got {value}")


def _check_store_settings(name: str, s3_connection_options: object, credential_provider: object) -> None:
    validate_s3_connection_options(s3_connection_options, field_name=f"{name}.s3_connection_options")
    validate_credential_provider(credential_provider, field_name=f"{name}.credential_provider")


def _refuse_unused(name: str, field: str, value: object, default: object, used_by: str) -> None:
    if value != default:
        raise ConfigValidationError(f"{name}: {field}={value!r} applies to {used_by} only; leave the default {default!r}")


_FACTORY_CALLED = (
    "the shardvec engine builds and reads sqlite-vec shards itself; {name} selects its {tier} tier. "
    "Pass it to ShardedVectorReader(reader_factory=...); do not call it."
)


@dataclass(slots=True)
class SqliteVecReaderFactory:
    """The download tier: ``reader_factory=SqliteVecReaderFactory(...)``.

    The engine downloads each probed shard once into the reader's cache folder, checks its size
    and digest, and opens it read-only.

    Attributes:
        mmap_size: SQLite's ``PRAGMA mmap_size`` on each shard's connections (bytes, >= 0; 0 turns
            memory mapping off). A reader without a factory maps each whole shard.
        s3_connection_options, credential_provider: When either is set, shards are downloaded
            with them, merged over the reader's own (the factory's keys win); the reader's
            settings still read ``_CURRENT`` and the manifests. An s3:// store only.
    """

    mmap_size: int = DEFAULT_MMAP_SIZE
    s3_connection_options: S3ConnectionOptions | None = None
    credential_provider: CredentialProvider | None = None

    def __post_init__(self) -> None:
        _check_int(self.mmap_size, "mmap_size", minimum=0)
        _check_store_settings(type(self).__name__, self.s3_connection_options, self.credential_provider)

    def tier(self) -> ReaderTier:
        return ReaderTier("download", mmap_size=self.mmap_size, s3_connection_options=self.s3_connection_options,
                          credential_provider=self.credential_provider)

    def __call__(self, *, db_url: str, local_dir: Path, checkpoint_id: str | None = None,
                 index_config: Any = None, manifest: Any = None) -> Any:
        """Not supported: raises NotImplementedError (the engine opens the shards)."""
        raise NotImplementedError(_FACTORY_CALLED.format(name=type(self).__name__, tier="download"))


@dataclass(slots=True)
class SqliteVecRangeReaderFactory:
    """The range tier: ``reader_factory=SqliteVecRangeReaderFactory(page_cache_pages=...)``.

    The engine queries each shard where it is, through ranged GETs: it reads the pages a search
    needs (on a cold shard: every vector, the id map and the B-tree pages that lead to them;
    afterwards only the payloads of the hits) and writes nothing locally. Adjacent pages are fetched
    in one request, a scan reads ahead in parallel parts. Each shard's size is checked against the
    manifest; its digest is not (that would need every byte).

    Attributes:
        page_cache_pages: Pages each open shard keeps in an LRU cache (>= 0; 0: none, every read
            fetched). With the engine's 64 KiB pages the default 1024 is 64 MiB per open shard;
            ``max_cached_shards`` on the reader bounds the open shards.
        s3_connection_options, credential_provider: As :class:`SqliteVecReaderFactory`'s.
    """

    page_cache_pages: int = DEFAULT_PAGE_CACHE_PAGES
    s3_connection_options: S3ConnectionOptions | None = None
    credential_provider: CredentialProvider | None = None

    def __post_init__(self) -> None:
        _check_int(self.page_cache_pages, "page_cache_pages", minimum=0)
        _check_store_settings(type(self).__name__, self.s3_connection_options, self.credential_provider)

    def tier(self) -> ReaderTier:
        return ReaderTier("range", page_cache_pages=self.page_cache_pages,
                          s3_connection_options=self.s3_connection_options,
                          credential_provider=self.credential_provider)

    def __call__(self, *, db_url: str, local_dir: Path, checkpoint_id: str | None = None,
                 index_config: Any = None, manifest: Any = None) -> Any:
        """Not supported: raises NotImplementedError (the engine opens the shards)."""
        raise NotImplementedError(_FACTORY_CALLED.format(name=type(self).__name__, tier="range"))


class AdaptiveSqliteVecReaderFactory:
    """``auto``: per snapshot (again on every refresh), the range tier when a shard is
    ``>= per_shard_threshold`` bytes or the shards add up to ``>= total_budget``, else the
    download tier (:func:`decide_access_mode`). ``policy`` may be the one
    :func:`make_threshold_policy` returns (its thresholds are used); any other policy is refused,
    since the engine decides with the threshold rule."""

    __slots__ = ("_tier",)

    def __init__(
        self,
        *,
        policy: SqliteAccessPolicy | None = None,
        per_shard_threshold: int = DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES,
        total_budget: int = DEFAULT_AUTO_TOTAL_BUDGET_BYTES,
        mmap_size: int = DEFAULT_MMAP_SIZE,
        page_cache_pages: int = DEFAULT_PAGE_CACHE_PAGES,
        s3_connection_options: S3ConnectionOptions | None = None,
        credential_provider: CredentialProvider | None = None,
    ) -> None:
        name = type(self).__name__
        _check_int(per_shard_threshold, "per_shard_threshold", minimum=1)
        _check_int(total_budget, "total_budget", minimum=1)
        if policy is not None:
            if not isinstance(policy, ThresholdPolicy):
                refuse_unsupported(f"{name}.policy", policy,
                                   "the engine decides with the threshold rule; pass make_threshold_policy(...) "
                                   "or per_shard_threshold / total_budget")
            for field, value, default in (
                    ("per_shard_threshold", per_shard_threshold, DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES),
                    ("total_budget", total_budget, DEFAULT_AUTO_TOTAL_BUDGET_BYTES)):
                if value != default:
                    raise ConfigValidationError(f"{name}: give either policy or {field}, not both")
            per_shard_threshold, total_budget = policy.per_shard_threshold, policy.total_budget
        _check_int(mmap_size, "mmap_size", minimum=0)
        _check_int(page_cache_pages, "page_cache_pages", minimum=0)
        _check_store_settings(name, s3_connection_options, credential_provider)
        self._tier = ReaderTier("auto", mmap_size=mmap_size, page_cache_pages=page_cache_pages,
                                per_shard_threshold=per_shard_threshold, total_budget=total_budget,
                                s3_connection_options=s3_connection_options,
                                credential_provider=credential_provider)

    def tier(self) -> ReaderTier:
        return self._tier

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._tier!r})"

    def __call__(self, *, db_url: str, local_dir: Path, checkpoint_id: str | None = None,
                 manifest: Any = None) -> Any:
        """Not supported: raises NotImplementedError (the engine opens the shards)."""
        raise NotImplementedError(_FACTORY_CALLED.format(name=type(self).__name__, tier="adaptive"))


class _AsyncCall:
    """The async factories' ``__call__``: the reference awaits it; the engine opens the shards."""

    __slots__ = ()

    async def __call__(self, **kwargs: Any) -> Any:
        raise NotImplementedError(_FACTORY_CALLED.format(name=type(self).__name__, tier=self.tier().mode))


@dataclass(slots=True)
class AsyncSqliteVecReaderFactory(_AsyncCall, SqliteVecReaderFactory):
    """:class:`SqliteVecReaderFactory` under the reference's async name (same settings, same tier)."""


@dataclass(slots=True)
class AsyncSqliteVecRangeReaderFactory(_AsyncCall, SqliteVecRangeReaderFactory):
    """:class:`SqliteVecRangeReaderFactory` under the reference's async name."""


class AsyncAdaptiveSqliteVecReaderFactory(_AsyncCall, AdaptiveSqliteVecReaderFactory):
    """:class:`AdaptiveSqliteVecReaderFactory` under the reference's async name."""

    __slots__ = ()


_READER_FACTORIES = (SqliteVecReaderFactory, SqliteVecRangeReaderFactory, AdaptiveSqliteVecReaderFactory)


def _factory_maker(name: str, classes: tuple[type, type, type], doc: str) -> Callable[..., Any]:
    """``make_sqlite_vec_reader_factory`` and its async twin: one body over two class triples."""
    download, ranged, adaptive = classes

    def make(
        *,
        mode: Literal["download", "range", "auto"],
        mmap_size: int = DEFAULT_MMAP_SIZE,
        page_cache_pages: int = DEFAULT_PAGE_CACHE_PAGES,
        s3_connection_options: S3ConnectionOptions | None = None,
        credential_provider: CredentialProvider | None = None,
        per_shard_threshold: int = DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES,
        total_budget: int = DEFAULT_AUTO_TOTAL_BUDGET_BYTES,
    ) -> Any:
        store = {"s3_connection_options": s3_connection_options, "credential_provider": credential_provider}
        if mode == "auto":
            return adaptive(per_shard_threshold=per_shard_threshold, total_budget=total_budget,
                            mmap_size=mmap_size, page_cache_pages=page_cache_pages, **store)
        if mode not in ("download", "range"):
            raise SqliteVecAdapterError(f"{name}: mode must be 'download', 'range' or 'auto', got {mode!r}")
        _refuse_unused(name, "per_shard_threshold", per_shard_threshold, DEFAULT_AUTO_PER_SHARD_THRESHOLD_BYTES,
                       "mode='auto'")
        _refuse_unused(name, "total_budget", total_budget, DEFAULT_AUTO_TOTAL_BUDGET_BYTES, "mode='auto'")
        if mode == "download":
            _refuse_unused(name, "page_cache_pages", page_cache_pages, DEFAULT_PAGE_CACHE_PAGES,
                           "mode='range' or 'auto'")
            return download(mmap_size=mmap_size, **store)
        _refuse_unused(name, "mmap_size", mmap_size, DEFAULT_MMAP_SIZE, "mode='download' or 'auto'")
        return ranged(page_cache_pages=page_cache_pages, **store)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = doc
    return make


make_sqlite_vec_reader_factory = _factory_maker(
    "make_sqlite_vec_reader_factory",
    (SqliteVecReaderFactory, SqliteVecRangeReaderFactory, AdaptiveSqliteVecReaderFactory),
    """The factory of a mode: ``"download"``, ``"range"`` or ``"auto"`` (adaptive; the reference
    resolves ``auto`` elsewhere and refuses it here), with the keyword settings ``mmap_size``,
    ``page_cache_pages``, ``s3_connection_options``, ``credential_provider``, ``per_shard_threshold``
    and ``total_budget``. A setting the mode does not use, given at other than its default, is
    refused (ConfigValidationError naming it); another mode is a SqliteVecAdapterError, as in the
    reference.""")

make_async_sqlite_vec_reader_factory = _factory_maker(
    "make_async_sqlite_vec_reader_factory",
    (AsyncSqliteVecReaderFactory, AsyncSqliteVecRangeReaderFactory, AsyncAdaptiveSqliteVecReaderFactory),
    """:func:`make_sqlite_vec_reader_factory` with the async factory classes.""")


def check_reader_factory(factory: object, *, field_name: str = "reader_factory") -> ReaderTier:
    """The tier a ``reader_factory`` asks for: None (the download tier, each whole shard mapped) or
    any factory of this module, sync or async (both readers accept both: the engine does the same
    work either way). Any other factory is refused, naming ``field_name``."""
    if factory is None:
        return ReaderTier()
    if isinstance(factory, _READER_FACTORIES):
        return factory.tier()
    refuse_unsupported(field_name, factory,
                       "the engine reads sqlite-vec shards itself; pass None, SqliteVecReaderFactory(...), "
                       "SqliteVecRangeReaderFactory(...) or AdaptiveSqliteVecReaderFactory(...)")


# One shard file read or built on its own (defined over the engine in shardvec._shard_files, which
# uses the settings checks above; imported last for that reason).
from shardvec._shard_files import SqliteVecAdapter, SqliteVecShardReader  # noqa: E402
