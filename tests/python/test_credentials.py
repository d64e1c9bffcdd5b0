"""shardvec.credentials: providers take effect in the writer, the reader and the admin functions on the S3
test server, secrets stay out of reprs and logs, and the env-file helpers behave as the reference's."""

from __future__ import annotations

import logging
import os
import pickle
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import shardvec
from shardvec.config import WriterOutputConfig
from shardvec.credentials import (
    CredentialProvider,
    EnvCredentialProvider,
    S3Credentials,
    StaticCredentialProvider,
    apply_env_file,
    materialize_env_file,
    remove_env_file,
    resolve_env_file,
)
from shardvec.errors import ShardvecError
from shardvec.vector import ShardedVectorReader, VectorShardedWriteConfig, write_arrays
from shardvec.vector.config import VectorIndexConfig, VectorShardingConfig
from shardvec.vector.types import DistanceMetric, VectorShardingStrategy

DIM = 8
ROWS = 20
VECTORS = np.random.default_rng(4).standard_normal((ROWS, DIM)).astype(np.float32)
SECRET = "wJalrXUtnFEMI-very-secret"


def config(prefix: str, tmp_path: Path, **storage: Any) -> VectorShardedWriteConfig:
    return VectorShardedWriteConfig(
        sharding=VectorShardingConfig(num_dbs=2, strategy=VectorShardingStrategy.LSH), s3_prefix=prefix,
        index_config=VectorIndexConfig(dim=DIM, metric=DistanceMetric.L2),
        output=WriterOutputConfig(local_root=str(tmp_path / "build")), **storage)


def test_reprs_hide_the_secret_and_providers_pickle() -> None:
    provider = StaticCredentialProvider(access_key_id="AKID", secret_access_key=SECRET, session_token="TOKEN-x")
    for value in (provider, provider.resolve()):
        assert SECRET not in repr(value) and "TOKEN-x" not in repr(value) and "AKID" in repr(value)
        assert pickle.loads(pickle.dumps(value)) == value
    assert isinstance(provider, CredentialProvider) and isinstance(EnvCredentialProvider(), CredentialProvider)
    assert provider.resolve() == S3Credentials("AKID", SECRET, "TOKEN-x")


def test_env_provider_prefers_s3_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "aws-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "s3-secret")
    monkeypatch.delenv("S3_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("S3_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    assert EnvCredentialProvider().resolve() == S3Credentials("aws-id", "s3-secret", None)


def test_providers_take_effect_in_writer_reader_and_admin(tmp_path: Path, s3_server: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    creds = s3_server["credentials"]
    options = s3_server["s3_connection_options"]
    static = StaticCredentialProvider(access_key_id=creds["access_key_id"], secret_access_key=creds["secret_access_key"])
    result = write_arrays(VECTORS, config(s3_server["prefix"], tmp_path, credential_provider=static,
                                          s3_connection_options=options))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S3_ACCESS_KEY_ID", creds["access_key_id"])
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", creds["secret_access_key"])
    env = EnvCredentialProvider()
    with ShardedVectorReader(s3_prefix=s3_server["prefix"], local_root=str(tmp_path / "cache"),
                             credential_provider=env, s3_connection_options=options) as reader:
        assert reader.search(VECTORS[2], top_k=1, shard_ids=[0, 1]).results[0].id == 2
    assert shardvec.current(s3_server["prefix"], credential_provider=env,
                            s3_connection_options=options).run_id == result.run_id
    # A wrong secret is refused by the server; neither it nor the right one shows in logs or errors.
    wrong = StaticCredentialProvider(access_key_id=creds["access_key_id"], secret_access_key=SECRET)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ShardvecError) as info:
        shardvec.history(s3_server["prefix"], credential_provider=wrong, s3_connection_options=options)
    out, err = capfd.readouterr()
    for text in (str(info.value), caplog.text, out, err, repr(config(s3_server["prefix"], tmp_path,
                                                                      credential_provider=wrong))):
        assert SECRET not in text and creds["secret_access_key"] not in text


def test_materialize_apply_and_resolve_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "before")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    path = materialize_env_file(S3Credentials("AK", SECRET), connection_options={
        "endpoint_url": "http://127.0.0.1:9000", "region_name": "eu-west-1", "addressing_style": "path"})
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert Path(path).read_text().splitlines() == [
            "AWS_ACCESS_KEY_ID=AK", f"AWS_SECRET_ACCESS_KEY={SECRET}", "AWS_ENDPOINT_URL=http://127.0.0.1:9000",
            "AWS_ALLOW_HTTP=true", "AWS_REGION=eu-west-1", "AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false"]
        with apply_env_file(path):
            assert os.environ["AWS_ACCESS_KEY_ID"] == "AK" and os.environ["AWS_SECRET_ACCESS_KEY"] == SECRET
        assert os.environ["AWS_ACCESS_KEY_ID"] == "before" and "AWS_SECRET_ACCESS_KEY" not in os.environ
    finally:
        remove_env_file(path)
    assert not Path(path).exists()
    with apply_env_file(None):
        pass
    with resolve_env_file("/given.env", StaticCredentialProvider("x", "y")) as given:
        assert given == "/given.env"
    with resolve_env_file(None, None) as nothing:
        assert nothing is None
    with resolve_env_file(None, StaticCredentialProvider("x", "y")) as made:
        assert made is not None and "AWS_ACCESS_KEY_ID=x" in Path(made).read_text()
    assert not Path(made).exists()


def test_an_applied_env_file_reaches_the_engine(tmp_path: Path, s3_server: dict[str, Any],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    creds = s3_server["credentials"]
    options = s3_server["s3_connection_options"]
    provider = StaticCredentialProvider(creds["access_key_id"], creds["secret_access_key"])
    write_arrays(VECTORS, config(s3_server["prefix"], tmp_path, credential_provider=provider,
                                 s3_connection_options=options))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ShardvecError):  # no credentials anywhere: refused
        shardvec.history(s3_server["prefix"], s3_connection_options=options)
    with resolve_env_file(None, provider) as path, apply_env_file(path):
        assert len(shardvec.history(s3_server["prefix"], s3_connection_options=options)) == 1


def test_the_package_exports_the_references_names() -> None:
    import shardvec.credentials
    import shardvec.run_registry

    for name in ("S3Credentials", "CredentialProvider", "StaticCredentialProvider", "EnvCredentialProvider"):
        assert getattr(shardvec, name) is getattr(shardvec.credentials, name)
    for name in ("RunRegistry", "S3RunRegistry", "InMemoryRunRegistry", "RunRecord", "RunStatus", "RunRecordLifecycle"):
        assert getattr(shardvec, name) is getattr(shardvec.run_registry, name)
