"""Runs a command against a real S3-speaking server on 127.0.0.1 (moto, from the project venv).

The server checks SigV4 signatures: it gets an IAM user with an access key and a bucket, then turns
authentication on, so every later request must be signed with that key. The command sees:

  SHARDVEC_TEST_S3_ENDPOINT   http://127.0.0.1:<port>
  SHARDVEC_TEST_S3_BUCKET     the bucket
  SHARDVEC_TEST_S3_KEY_ID / SHARDVEC_TEST_S3_SECRET   the key the server accepts
  SHARDVEC_TEST_S3_ROLE_ARN   a role with the same S3 rights that the key may assume (STS AssumeRole)
                              and that web identity tokens may assume (AssumeRoleWithWebIdentity)
  SHARDVEC_TEST_STS_ENDPOINT  http://127.0.0.1:<port2>: moto's STS behind a shim that signs unsigned
                              requests with the key (AWS never wants AssumeRoleWithWebIdentity signed,
                              but moto with signature checking on fails on any unsigned request)

Usage: .venv/bin/python scripts/s3_test_server.py -- COMMAND [ARGS...]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from test_server_common import free_port, wrapped_command

BUCKET = "shardvec-test"
REGION = "us-east-1"


def wait_ready(endpoint: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"s3 test server exited early:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"s3 test server did not start within 30 s:\n{log.read_text()}")


def configure(endpoint: str) -> tuple[str, str, str]:
    """Creates the IAM user, its key, a role and the bucket, then switches signature checking on."""
    bootstrap = {"endpoint_url": endpoint, "region_name": REGION,
                 "aws_access_key_id": "bootstrap", "aws_secret_access_key": "bootstrap"}
    iam = boto3.client("iam", **bootstrap)
    iam.create_user(UserName="shardvec-test")
    iam.put_user_policy(UserName="shardvec-test", PolicyName="s3-all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"],
                       "Resource": "*"}],
    }))
    key = iam.create_access_key(UserName="shardvec-test")["AccessKey"]
    role = iam.create_role(RoleName="shardvec-test-role", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*", "Federated": "*"},
                       "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]}],
    }))["Role"]
    iam.put_role_policy(RoleName="shardvec-test-role", PolicyName="s3-all", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}],
    }))
    boto3.client("s3", **bootstrap).create_bucket(Bucket=BUCKET)
    request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                     headers={"Content-Type": "text/plain"})
    urllib.request.urlopen(request, timeout=5).read()
    return key["AccessKeyId"], key["SecretAccessKey"], role["Arn"]


def start_sts_shim(endpoint: str, key_id: str, secret: str) -> ThreadingHTTPServer:
    """Forwards STS calls to moto, signing the unsigned ones (web identity) with the test key."""

    class Shim(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {"Content-Type": self.headers.get("Content-Type", "")}
            if "Authorization" in self.headers:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            else:
                request = AWSRequest(method="POST", url=f"{endpoint}/", data=body, headers=headers)
                SigV4Auth(Credentials(key_id, secret), "sts", REGION).add_auth(request)
                headers = dict(request.headers.items())
            forward = urllib.request.Request(f"{endpoint}/", data=body, method="POST", headers=headers)
            try:
                with urllib.request.urlopen(forward, timeout=30) as answer:
                    status, payload = answer.status, answer.read()
            except urllib.error.HTTPError as error:
                status, payload = error.code, error.read()
            self.send_response(status)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Shim)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> int:
    args = wrapped_command(__doc__)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = Path(sys.executable).parent / "moto_server"
    with tempfile.TemporaryDirectory(prefix="shardvec-moto-") as tmp:
        log = Path(tmp) / "moto.log"
        with log.open("wb") as log_file:
            server = subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                                      stdout=log_file, stderr=subprocess.STDOUT)
            try:
                wait_ready(endpoint, server, log)
                key_id, secret, role_arn = configure(endpoint)
                shim = start_sts_shim(endpoint, key_id, secret)
                env = dict(os.environ, SHARDVEC_TEST_S3_ENDPOINT=endpoint, SHARDVEC_TEST_S3_BUCKET=BUCKET,
                           SHARDVEC_TEST_S3_KEY_ID=key_id, SHARDVEC_TEST_S3_SECRET=secret,
                           SHARDVEC_TEST_S3_ROLE_ARN=role_arn,
                           SHARDVEC_TEST_STS_ENDPOINT=f"http://127.0.0.1:{shim.server_address[1]}")
                print(f"s3 test server: {endpoint} bucket {BUCKET} (signature checking on)", flush=True)
                return subprocess.call(args, env=env)
            finally:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()


if __name__ == "__main__":
    sys.exit(main())
