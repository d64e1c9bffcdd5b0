"""Shared fixtures: the S3 test server scripts/s3_test_server.py starts, and the CLI binary."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "build" / "shardvec"


@pytest.fixture
def s3_server() -> dict[str, Any]:
    endpoint = os.environ.get("SHARDVEC_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("no S3 test server: run with scripts/test, or under "
                    ".venv/bin/python scripts/s3_test_server.py -- .venv/bin/python -m pytest tests/python")
    assert endpoint.startswith("http://127.0.0.1:"), endpoint
    return {
        "prefix": f"s3://{os.environ['SHARDVEC_TEST_S3_BUCKET']}/pytests/{uuid.uuid4().hex[:12]}",
        "s3_connection_options": {"endpoint_url": endpoint, "region": "us-east-1", "addressing_style": "path"},
        "credentials": {"access_key_id": os.environ["SHARDVEC_TEST_S3_KEY_ID"],
                        "secret_access_key": os.environ["SHARDVEC_TEST_S3_SECRET"]},
    }


def s3_storage(server: dict[str, Any]) -> dict[str, Any]:
    """The writer's and reader's settings for the S3 test server (`s3_server`'s connection and keys)."""
    creds = server["credentials"]
    return {"s3_connection_options": server["s3_connection_options"], "credential_provider": lambda: creds}
