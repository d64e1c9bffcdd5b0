"""Vector snapshots: records, configs, the writer and the reader."""

from shardvec.vector.config import (
    VectorIndexConfig,
    VectorShardedWriteConfig,
    VectorShardingConfig,
    VectorShardingSpec,
)
from shardvec.vector.reader import ShardedVectorReader
from shardvec.vector.types import (
    DistanceMetric,
    SearchResult,
    VectorReaderHealth,
    VectorRecord,
    VectorSearchResponse,
    VectorShardDetail,
    VectorShardingStrategy,
    VectorSnapshotInfo,
)
from shardvec.vector.writer import BuildDurations, BuildResult, BuildStats, ShardResult, write_arrays, write_sharded

__all__ = [
    "BuildDurations",
    "BuildResult",
    "BuildStats",
    "DistanceMetric",
    "SearchResult",
    "ShardResult",
    "ShardedVectorReader",
    "VectorIndexConfig",
    "VectorReaderHealth",
    "VectorRecord",
    "VectorSearchResponse",
    "VectorShardDetail",
    "VectorShardedWriteConfig",
    "VectorShardingConfig",
    "VectorShardingSpec",
    "VectorShardingStrategy",
    "VectorSnapshotInfo",
    "write_arrays",
    "write_sharded",
]
