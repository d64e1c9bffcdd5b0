"""Vector snapshots: records, configs, the writer and the reader."""

from shardvec.vector.config import (
    VectorIndexConfig,
    VectorRecordInput,
    VectorShardedWriteConfig,
    VectorShardingConfig,
    VectorShardingSpec,
    VectorWriteOptions,
)
from shardvec.vector.reader import ShardedVectorReader
from shardvec.vector.types import (
    AsyncVectorShardReader,
    AsyncVectorShardReaderFactory,
    DistanceMetric,
    SearchResult,
    VectorIndexWriter,
    VectorIndexWriterFactory,
    VectorReaderHealth,
    VectorRecord,
    VectorSearchResponse,
    VectorShardDetail,
    VectorShardingStrategy,
    VectorShardReader,
    VectorShardReaderFactory,
    VectorSnapshotInfo,
)
from shardvec.vector.writer import BuildResult, BuildStats, ShardResult, write_arrays, write_sharded

__all__ = [
    "AsyncVectorShardReader",
    "AsyncVectorShardReaderFactory",
    "BuildResult",
    "BuildStats",
    "DistanceMetric",
    "SearchResult",
    "ShardResult",
    "ShardedVectorReader",
    "VectorIndexConfig",
    "VectorIndexWriter",
    "VectorIndexWriterFactory",
    "VectorReaderHealth",
    "VectorRecord",
    "VectorRecordInput",
    "VectorSearchResponse",
    "VectorShardDetail",
    "VectorShardReader",
    "VectorShardReaderFactory",
    "VectorShardedWriteConfig",
    "VectorShardingConfig",
    "VectorShardingSpec",
    "VectorShardingStrategy",
    "VectorSnapshotInfo",
    "VectorWriteOptions",
    "write_arrays",
    "write_sharded",
]
