"""An independent S3 client (boto3) for the interop tests, against the S3 test server.

  dump S3_PREFIX               print {key: {"size", "sha256", "xxh3"}} for every object under it
  upload LOCAL_DIR S3_PREFIX   upload a local snapshot under the layout, rewriting its file:// URLs
                               (manifest tables and _CURRENT) to s3:// ones; _CURRENT goes last
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import boto3
import xxhash


def client() -> Any:
    return boto3.client(
        "s3",
        endpoint_url=os.environ["SHARDVEC_TEST_S3_ENDPOINT"],
        region_name="us-east-1",
        aws_access_key_id=os.environ["SHARDVEC_TEST_S3_KEY_ID"],
        aws_secret_access_key=os.environ["SHARDVEC_TEST_S3_SECRET"],
    )


def split(url: str) -> tuple[str, str]:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    return bucket, prefix.rstrip("/")


def dump(url: str) -> None:
    s3 = client()
    bucket, prefix = split(url)
    out: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"][len(prefix) + 1:]] = {
                "size": len(body),
                "sha256": hashlib.sha256(body).hexdigest(),
                "xxh3": "xxh3:" + xxhash.xxh3_64(body).hexdigest(),
            }
    print(json.dumps(out, sort_keys=True))


def rewrite_manifest(path: Path, old: str, new: str) -> None:
    db = sqlite3.connect(path)
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for column in db.execute(f"PRAGMA table_info({table})").fetchall():
            if column[2].upper() == "TEXT":
                db.execute(f"UPDATE {table} SET {column[1]} = replace({column[1]}, ?, ?)", (old, new))
    db.commit()
    db.close()


def upload(local_dir: str, url: str) -> None:
    s3 = client()
    bucket, prefix = split(url)
    root = Path(local_dir).resolve()
    old, new = "file://" + str(root), url.rstrip("/")
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "snapshot"
        shutil.copytree(root, staged)
        for manifest in staged.glob("manifests/*/manifest"):
            rewrite_manifest(manifest, old, new)
        current = json.loads((staged / "_CURRENT").read_text())
        current["manifest_ref"] = current["manifest_ref"].replace(old, new)
        (staged / "_CURRENT").write_text(json.dumps(current, sort_keys=True, separators=(",", ":")))
        files = sorted(p for p in staged.rglob("*") if p.is_file() and p.name != "_CURRENT")
        for path in files + [staged / "_CURRENT"]:
            s3.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(staged).as_posix()}")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "upload":
        upload(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
