"""shardvec: sharded vector snapshots on sqlite-vec, built and searched by a C++ engine.

The API mirrors shardyfusion's vector-only snapshots: ``shardvec.vector.write_sharded`` builds and
publishes, ``shardvec.vector.ShardedVectorReader`` searches, and ``shardvec.history``, ``rollback``
and ``cleanup`` (``shardvec.admin``) administer the published snapshots. ``s3_prefix`` may be ``s3://bucket/p``
or a local folder.
"""

from importlib import metadata as _metadata

from shardvec.admin import cleanup, current, history, rollback, verify
from shardvec.config import VectorSpec
from shardvec.credentials import (
    CredentialProvider,
    EnvCredentialProvider,
    S3Credentials,
    StaticCredentialProvider,
)
from shardvec.errors import (
    ConfigValidationError,
    ManifestParseError,
    ManifestStoreError,
    PublishConflictError,
    ReaderStateError,
    ShardvecError,
)
from shardvec.manifest import ManifestRef, ParsedManifest, RequiredBuildMeta, RequiredShardMeta, WriterInfo
from shardvec.manifest_store import InMemoryManifestStore, ManifestStore, S3ManifestStore
from shardvec.rate_limiter import AcquireResult, RateLimiter, ThreadSafeTokenBucket, TokenBucket
from shardvec.run_registry import (
    InMemoryRunRegistry,
    RunRecord,
    RunRecordLifecycle,
    RunRegistry,
    RunStatus,
    S3RunRegistry,
)

# The installed wheel's version, which scikit-build-core read from the repository's VERSION file
# (CMake's project version reads the same file).
__version__ = _metadata.version("shardvec")

__all__ = [
    "AcquireResult",
    "ConfigValidationError",
    "CredentialProvider",
    "EnvCredentialProvider",
    "InMemoryRunRegistry",
    "RunRecord",
    "RunRecordLifecycle",
    "RunRegistry",
    "RunStatus",
    "S3Credentials",
    "S3RunRegistry",
    "StaticCredentialProvider",
    "InMemoryManifestStore",
    "ManifestParseError",
    "ManifestRef",
    "ManifestStore",
    "ManifestStoreError",
    "ParsedManifest",
    "PublishConflictError",
    "RateLimiter",
    "ReaderStateError",
    "RequiredBuildMeta",
    "RequiredShardMeta",
    "S3ManifestStore",
    "ShardvecError",
    "ThreadSafeTokenBucket",
    "TokenBucket",
    "VectorSpec",
    "WriterInfo",
    "__version__",
    "cleanup",
    "current",
    "history",
    "rollback",
    "verify",
]
