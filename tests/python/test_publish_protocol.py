"""A reused run id is refused before any upload (a ConfigValidationError naming it), on a folder and on
S3, and the live snapshot keeps answering from verified shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec.config import WriterOutputConfig
from shardvec.errors import ConfigValidationError
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 8


def config(prefix: str, tmp_path: Path, storage: dict[str, Any]) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH),
        s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(run_id="fixed", local_root=str(tmp_path / "build")),
        **storage,
    )


@pytest.mark.parametrize("where", ["local", "s3"])
def test_a_reused_run_id_is_refused_and_the_live_snapshot_still_answers(
        tmp_path: Path, where: str, request: pytest.FixtureRequest) -> None:
    if where == "s3":
        server = request.getfixturevalue("s3_server")
        prefix = server["prefix"]
        creds = server["credentials"]
        storage = {"s3_connection_options": server["s3_connection_options"], "credential_provider": lambda: creds}
    else:
        prefix, storage = str(tmp_path / "store"), {}
    rng = np.random.default_rng(1)
    first = rng.standard_normal((50, DIM)).astype(np.float32)
    write_arrays(first, config(prefix, tmp_path, storage))
    with pytest.raises(ConfigValidationError, match="run_id 'fixed' is already used"):
        write_arrays(rng.standard_normal((50, DIM)).astype(np.float32), config(prefix, tmp_path, storage))
    with ShardedVectorReader(s3_prefix=prefix, local_root=str(tmp_path / "cold"), **storage) as reader:
        hits = reader.search(first[3], top_k=1, num_probes=2)
        assert [hit.id for hit in hits.results] == [3]
