"""Vector snapshots: records, configs, the writer and the reader."""

from shardvec.vector.config import (
    VectorIndexConfig,
    VectorRecordInput,
    VectorShardedWriteConfig,
    VectorShardingConfig,
    VectorShardingSpec,
    VectorWriteOptions,
)
from shardvec.vector.async_reader import AsyncShardedVectorReader
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
from shardvec.vector.writer import BuildDurations, BuildResult, BuildStats, ShardResult, write_arrays, write_sharded

__all__ = [
    "AsyncShardedVectorReader",
    "AsyncVectorShardReader",
    "AsyncVectorShardReaderFactory",
    "BuildDurations",
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
