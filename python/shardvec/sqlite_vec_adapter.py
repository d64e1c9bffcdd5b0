"""sqlite-vec shard factories (the names of shardyfusion's ``sqlite_vec_adapter.py``).

In shardyfusion these factories build and read each shard from Python. In shardvec the C++ engine
builds, uploads, downloads and searches the shards itself, so the factories are *markers*: they
select the sqlite-vec backend, and ``VectorShardedWriteConfig`` checks that the factory's
``VectorSpec`` agrees with ``index_config``. A setting the engine does not honour is accepted only
at the value that describes what the engine does (its default, mostly); any other value raises
``ConfigValidationError`` naming it. Calling a factory raises ``NotImplementedError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import (
    CredentialProvider,
    S3ConnectionOptions,
    VectorSpec,
    refuse_unsupported,
    validate_s3_connection_options,
)
from .errors import ConfigValidationError, SqliteVecAdapterError

__all__ = [
    "SUPPORTED_PAGE_SIZES",
    "SqliteVecAdapter",
    "SqliteVecAdapterError",
    "SqliteVecFactory",
    "SqliteVecReaderFactory",
    "SqliteVecShardReader",
    "check_reader_factory",
]

#: Page sizes the reference accepts (plus ``"auto"``).
SUPPORTED_PAGE_SIZES = (4096, 8192, 16384, 32768, 65536)

#: The page size the engine builds every shard with.
ENGINE_PAGE_SIZE = 65536

#: Page sizes a ``SqliteVecFactory`` accepts: the engine's, ``"auto"`` (the engine chooses) and the
#: reference's default 4096 (so a program that spells the default keeps working; the engine
#: still builds 65536-byte pages, which only changes the file's layout, not its contents).
ACCEPTED_PAGE_SIZES = (4096, ENGINE_PAGE_SIZE, "auto")

_FACTORY_SETTINGS_HINT = "the engine builds and reads shards with the write or read config's own settings"


def _refuse_store_settings(name: str, s3_connection_options: object, credential_provider: object) -> None:
    """A factory's own store settings: the engine reaches the store with the config's or reader's."""
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


def check_reader_factory(factory: object, *, field_name: str = "reader_factory") -> None:
    """``reader_factory`` must be None or a :class:`SqliteVecReaderFactory` (whose settings are the
    engine's by construction); any other factory is refused."""
    if factory is None or isinstance(factory, SqliteVecReaderFactory):
        return
    refuse_unsupported(field_name, factory,
                       "the engine reads sqlite-vec shards itself; pass None or SqliteVecReaderFactory()")


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


@dataclass(slots=True)
class SqliteVecReaderFactory:
    """Selects sqlite-vec shards for a reader: ``reader_factory=SqliteVecReaderFactory()``.

    The download tier of the reference: the engine downloads each shard once into its cache,
    verifies it, and opens it read-only with the whole file memory-mapped. Only the defaults are
    accepted (``mmap_size`` 256 MiB, no store settings of its own: the reader's are used); any
    other value is refused, since the engine has no per-factory setting for it yet.

    The reference signature, documented here, is
    ``factory(*, db_url, local_dir, checkpoint_id=None, index_config=None, manifest=None)``.
    """

    mmap_size: int = DEFAULT_MMAP_SIZE
    s3_connection_options: S3ConnectionOptions | None = None
    credential_provider: CredentialProvider | None = None

    def __post_init__(self) -> None:
        check_factory_settings("SqliteVecReaderFactory", mmap_size=self.mmap_size)
        _refuse_store_settings("SqliteVecReaderFactory", self.s3_connection_options, self.credential_provider)

    def __call__(
        self,
        *,
        db_url: str,
        local_dir: Path,
        checkpoint_id: str | None = None,
        index_config: Any = None,
        manifest: Any = None,
    ) -> Any:
        """Not supported: raises NotImplementedError (the engine opens the shards)."""
        raise NotImplementedError(
            _ENGINE_BUILDS.format(name="SqliteVecReaderFactory", where="ShardedVectorReader")
        )


# One shard file read or built on its own (defined over the engine in shardvec._shard_files, which
# uses the settings checks above; imported last for that reason).
from shardvec._shard_files import SqliteVecAdapter, SqliteVecShardReader  # noqa: E402
