"""Python passes the AWS credential chain through to the engine: with no credential_provider, a writer
and a reader on the S3 test server get their keys from a profile's credential_process (keys that
expire within a minute, so every request fetches fresh ones), and a chain failure surfaces as an error
that names the profile and the command."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy


def chain_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: dict[str, Any], script_body: str) -> Path:
    """Only a profile with credential_process: no keys in the environment or in any file."""
    counter = tmp_path / "runs"
    script = tmp_path / "creds.sh"
    script.write_text("#!/bin/sh\n" + f"echo x >> {counter}\n" + script_body)
    script.chmod(stat.S_IRWXU)
    (tmp_path / "config").write_text(f"[profile chain]\ncredential_process = {script} --profile chain\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                 "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_PROFILE", "chain")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return counter


def test_writer_and_reader_use_the_chain_and_refresh_expiring_keys(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_server: dict[str, Any]) -> None:
    key_id, secret = os.environ["SHARDVEC_TEST_S3_KEY_ID"], os.environ["SHARDVEC_TEST_S3_SECRET"]
    counter = chain_env(monkeypatch, tmp_path, s3_server,
                        "printf '{\"Version\": 1, \"AccessKeyId\": \"%s\", \"SecretAccessKey\": \"%s\", "
                        "\"Expiration\": \"%s\"}' " + f"'{key_id}' '{secret}' "
                        "\"$(date -u -d '+60 seconds' +%Y-%m-%dT%H:%M:%SZ)\"\n")
    data = np.random.default_rng(1).standard_normal((300, 8)).astype(np.float32)
    config = VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH), s3_prefix=s3_server["prefix"],
        index_config=VectorIndexConfig(dim=8, metric=DistanceMetric.L2),
        s3_connection_options=s3_server["s3_connection_options"])
    write_arrays(data, config)
    runs_after_write = len(counter.read_text().splitlines())
    with ShardedVectorReader(s3_prefix=s3_server["prefix"], local_root=str(tmp_path / "cache"),
                             s3_connection_options=s3_server["s3_connection_options"]) as reader:
        assert len(reader.search(data[0], top_k=3, num_probes=2).results) == 3
        reader.refresh()
    # Keys a minute from expiry are inside the refresh window: later requests ran the helper again.
    assert runs_after_write > 1
    assert len(counter.read_text().splitlines()) > runs_after_write


def test_a_failing_chain_names_the_profile_and_the_command(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_server: dict[str, Any]) -> None:
    chain_env(monkeypatch, tmp_path, s3_server, "echo '{\"SecretAccessKey\": \"leaked-secret\"}'\nexit 4\n")
    with pytest.raises(Exception) as raised:
        ShardedVectorReader(s3_prefix=s3_server["prefix"], local_root=str(tmp_path / "cache"),
                            s3_connection_options=s3_server["s3_connection_options"])
    message = str(raised.value)
    assert "profile 'chain': credential_process" in message and "exited with status 4" in message, message
    assert "leaked-secret" not in message
