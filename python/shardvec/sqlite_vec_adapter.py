"""sqlite-vec shard factories (the names of shardyfusion's ``sqlite_vec_adapter.py``).

In shardyfusion these factories build and read each shard from Python. In shardvec the C++ engine
builds, uploads, downloads and searches the shards itself, so the factories are *markers*: they
select the sqlite-vec backend and carry its settings, and ``VectorShardedWriteConfig`` checks that
the factory's ``VectorSpec`` agrees with ``index_config``. Calling one raises
``NotImplementedError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .config import (
    CredentialProvider,
    S3ConnectionOptions,
    VectorSpec,
    validate_s3_connection_options,
)
from .errors import ConfigValidationError, SqliteVecAdapterError

__all__ = [
    "SUPPORTED_PAGE_SIZES",
    "SqliteVecAdapterError",
    "SqliteVecFactory",
    "SqliteVecReaderFactory",
]

#: Page sizes the reference accepts (plus ``"auto"``).
SUPPORTED_PAGE_SIZES = (4096, 8192, 16384, 32768, 65536)

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
        page_size: One of :data:`SUPPORTED_PAGE_SIZES` or ``"auto"``; validated for compatibility,
            but the engine always builds with 65536-byte pages (see DESIGN §3.4).
        cache_size_pages, s3_connection_options, credential_provider, supports_vector_writes,
        emit_sidecar: Accepted for compatibility; the engine uses the write config's store
        settings and writes no sidecar.

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
        if self.page_size != "auto" and self.page_size not in SUPPORTED_PAGE_SIZES:
            raise ConfigValidationError(
                f"page_size must be one of {list(SUPPORTED_PAGE_SIZES)} or 'auto', "
                f"got {self.page_size!r}"
            )
        validate_s3_connection_options(self.s3_connection_options)

    def __call__(self, *, db_url: str, local_dir: Path, index_config: Any = None) -> Any:
        """Not supported: raises NotImplementedError (the engine builds the shards)."""
        raise NotImplementedError(
            _ENGINE_BUILDS.format(name="SqliteVecFactory", where="VectorShardedWriteConfig")
        )


@dataclass(slots=True)
class SqliteVecReaderFactory:
    """Selects sqlite-vec shards for a reader: ``reader_factory=SqliteVecReaderFactory()``.

    The download tier of the reference: the engine downloads each shard once into its cache,
    verifies it, and opens it read-only with ``mmap_size`` bytes memory-mapped.

    The reference signature, documented here, is
    ``factory(*, db_url, local_dir, checkpoint_id=None, index_config=None, manifest=None)``.
    """

    mmap_size: int = 256 * 1024 * 1024
    s3_connection_options: S3ConnectionOptions | None = None
    credential_provider: CredentialProvider | None = None

    def __post_init__(self) -> None:
        if isinstance(self.mmap_size, bool) or not isinstance(self.mmap_size, int):
            raise ConfigValidationError(f"mmap_size must be an int, got {self.mmap_size!r}")
        if self.mmap_size < 0:
            raise ConfigValidationError(f"mmap_size must be >= 0, got {self.mmap_size}")
        validate_s3_connection_options(self.s3_connection_options)

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
