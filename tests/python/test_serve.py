"""`shardvec serve`: the real service on 127.0.0.1 (a free port), talked to with `requests`, with
raw sockets (a request held in flight) and with `curl`. Every endpoint, every bad request (a 4xx
with a JSON error naming the field), a refresh during a request storm (every answer is exactly the
old snapshot's or the new one's), a snapshot that fails to load (not swapped in), bounded
concurrency (429 + Retry-After), bearer auth, and SIGTERM draining a request in flight. Counts are
bounded; nothing asserts timing."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from conftest import CLI

DIM = 8
QUERIES = np.random.default_rng(5).standard_normal((40, DIM)).astype(np.float32)

# Each request on a connection the server closes after answering: a response a test still holds
# keeps its keep-alive connection open otherwise, and a draining server waits for an idle one up to
# its keep-alive timeout (5 s) before it exits.
http = requests.Session()
http.headers["Connection"] = "close"


def data(seed: int, rows: int = 400) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, DIM)).astype(np.float32)


def s3_env_args(server: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    creds = server["credentials"]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": creds["access_key_id"], "AWS_SECRET_ACCESS_KEY": creds["secret_access_key"]}
    return env, ["--endpoint-url", server["s3_connection_options"]["endpoint_url"], "--region", "us-east-1",
                 "--addressing-style", "path"]


class Store:
    """A store prefix (a folder or an S3 prefix) and how the CLI reaches it."""

    def __init__(self, prefix: str, tmp: Path, env: dict[str, str] | None = None, args: list[str] | None = None):
        self.prefix, self.tmp, self.env, self.args = prefix, tmp, env or dict(os.environ), args or []

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        run = subprocess.run([str(CLI), *args, "--store", self.prefix, *self.args], capture_output=True, text=True,
                             env=self.env, timeout=300)
        assert run.returncode == 0, run.stderr
        return run

    def build(self, vectors: np.ndarray, run_id: str) -> None:
        path = self.tmp / f"{run_id}.npy"
        np.save(path, vectors)
        payloads = self.tmp / f"{run_id}.jsonl"
        payloads.write_text("".join(json.dumps({"run": run_id, "row": i}) + "\n" for i in range(len(vectors))))
        self.cli("build", "--input", str(path), "--payloads", str(payloads), "--metric", "l2", "--strategy", "cluster",
                 "--num-dbs", "4", "--train-centroids", "--run-id", run_id, "--quiet",
                 "--local-root", str(self.tmp / "build"))

    def expected(self, top_k: int = 5, num_probes: int = 2) -> list[dict[str, Any]]:
        """What `shardvec search --json` answers for QUERIES now: the reference the service must match."""
        np.save(self.tmp / "queries.npy", QUERIES)
        out = self.cli("search", "--query-file", str(self.tmp / "queries.npy"), "--top-k", str(top_k), "--num-probes",
                       str(num_probes), "--json", "--cache-dir", str(self.tmp / "cli-cache")).stdout
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(str(tmp_path / "store"), tmp_path)
    s.build(data(1), "run_a")
    return s


@contextmanager
def serving(store: Store, *flags: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`shardvec serve` on a free port of 127.0.0.1, ready; on exit: SIGTERM, and it must exit 0."""
    proc = subprocess.Popen([str(CLI), "serve", "--store", store.prefix, *store.args, "--port", "0",
                             "--cache-dir", str(store.tmp / "serve-cache"), *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=store.env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the first line, or "" when the process ended
        match = re.fullmatch(r"shardvec serve: listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
        url = match.group(1)
        for _ in range(600):  # the snapshot loads after the port is bound
            if http.get(f"{url}/v1/ready", timeout=30, headers=auth_header(flags)).status_code == 200:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the service never became ready")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        err = proc.stderr.read() if proc.stderr else ""
        assert code == 0, err


def auth_header(flags: tuple[str, ...]) -> dict[str, str]:
    if "--auth-token-file" not in flags:
        return {}
    return {"Authorization": "Bearer " + Path(flags[flags.index("--auth-token-file") + 1]).read_text().strip()}


def answer(response: dict[str, Any]) -> list[tuple[Any, float, Any]]:
    return [(h["id"], h["score"], h["payload"]) for h in response["results"]]


def search(url: str, body: Any, **kwargs: Any) -> requests.Response:
    return http.post(f"{url}/v1/search", json=body, timeout=60, **kwargs)


def test_every_endpoint_answers_like_the_cli(store: Store) -> None:
    expected = store.expected()
    info = json.loads(store.cli("info", "--json", "--cache-dir", str(store.tmp / "cli-cache")).stdout)
    shards = json.loads(store.cli("shards", "--json", "--cache-dir", str(store.tmp / "cli-cache")).stdout)
    with serving(store, "--refresh-interval", "0") as (url, _):
        assert http.get(f"{url}/v1/health", timeout=30).json() == {"status": "ok"}
        ready = http.get(f"{url}/v1/ready", timeout=30)
        assert ready.status_code == 200 and ready.json() == {"ready": True, "run_id": "run_a",
                                                             "manifest_ref": info["manifest_ref"]}
        assert http.get(f"{url}/v1/info", timeout=30).json() == info
        assert info["run_id"] == "run_a"
        assert http.get(f"{url}/v1/shards", timeout=30).json() == shards

        one = search(url, {"vector": QUERIES[3].tolist(), "top_k": 5, "num_probes": 2})
        assert one.status_code == 200 and one.headers["Content-Type"] == "application/json"
        body = one.json()
        assert set(body) == {"results", "num_shards_queried", "latency_ms"}
        assert answer(body) == answer(expected[3])
        assert body["num_shards_queried"] == expected[3]["num_shards_queried"]
        assert body["results"][0]["payload"]["run"] == "run_a"

        batch = search(url, {"vectors": QUERIES.tolist(), "top_k": 5, "num_probes": 2}).json()
        assert isinstance(batch, list) and [answer(r) for r in batch] == [answer(e) for e in expected]

        # shard_ids and a filter-free routing bypass: exactly the named shards are searched.
        forced = search(url, {"vector": QUERIES[0].tolist(), "top_k": 3, "shard_ids": [1]}).json()
        assert forced["num_shards_queried"] == 1

        refreshed = http.post(f"{url}/v1/refresh", timeout=60)
        assert refreshed.status_code == 200 and refreshed.json()["refreshed"] is False

        metrics = http.get(f"{url}/metrics", timeout=30)
        assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = metrics.text
        assert 'shardvec_serve_requests_total{endpoint="/v1/search",code="200"} 3' in text
        assert 'shardvec_serve_request_duration_seconds_count{endpoint="/v1/search"} 3' in text
        assert 'shardvec_serve_refreshes_total{result="unchanged"} 1' in text
        assert "shardvec_serve_ready 1" in text
        assert re.search(r"^shardvec_vector_searches_total 42$", text, re.M), text  # 1 + 40 + 1 reader searches
        assert "shardvec_vector_reader_initialized_total 1" in text


BAD = [
    # (body bytes, status, field, words in the message)
    (b"{not json", 400, "body", "not valid JSON"),
    (b"[1, 2]", 400, "body", "must be a JSON object"),
    (json.dumps({"vector": [1.0] * (DIM + 1)}).encode(), 400, "vector", "has 9 values, but the snapshot's dim is 8"),
    (json.dumps({"vector": [0.5] * DIM, "top_k": 0}).encode(), 400, "top_k", "top_k must be 1..4096, got 0"),
    (json.dumps({"vector": [0.5] * DIM, "top_k": 5000}).encode(), 400, "top_k", "got 5000"),
    (json.dumps({"vector": [0.5] * DIM, "top_k": "3"}).encode(), 400, "top_k", "must be an integer"),
    (json.dumps({"vector": [0.5] * DIM, "topk": 3}).encode(), 400, "topk", "unknown field 'topk'"),
    (json.dumps({"vector": ["x"] * DIM}).encode(), 400, "vector", "vector[0] must be a finite float32 number"),
    (json.dumps({"vectors": [[0.5] * DIM, [0.5] * 3]}).encode(), 400, "vectors[1]", "has 3 values"),
    (json.dumps({"vector": [0.5] * DIM, "num_probes": "2"}).encode(), 400, "num_probes", "must be an integer"),
    (json.dumps({"vector": [0.5] * DIM, "shard_ids": [0, 1.5]}).encode(), 400, "shard_ids[1]", "must be an integer"),
    (json.dumps({"vector": [0.5] * DIM, "filter": ["a"]}).encode(), 400, "filter", "must be a string"),
    (json.dumps({"vector": [0.5] * DIM, "routing_context": 3}).encode(), 400, "routing_context", "must be an object"),
    (json.dumps({"top_k": 3}).encode(), 400, "vector", "one of \"vector\""),
    (b"", 400, "body", "not valid JSON"),
]


def test_every_bad_request_is_a_4xx_naming_the_field(store: Store) -> None:
    with serving(store, "--refresh-interval", "0", "--max-body-bytes", "4096") as (url, _):
        for body, status, field, words in BAD:
            r = http.post(f"{url}/v1/search", data=body, headers={"Content-Type": "application/json"}, timeout=30)
            assert r.status_code == status, (body, r.text)
            error = r.json()["error"]
            assert error["field"] == field and words in error["message"], (body, error)
        # Errors the engine finds are 400s with its message: a shard the snapshot does not have.
        r = search(url, {"vector": [0.5] * DIM, "shard_ids": [99]})
        assert r.status_code == 400 and "99" in r.json()["error"]["message"], r.text
        huge = http.post(f"{url}/v1/search", data=b'{"vector": [' + b"0.5, " * 2000 + b"0.5]}", timeout=30,
                             headers={"Content-Type": "application/json"})
        assert huge.status_code == 413 and huge.json()["error"]["field"] == "body", huge.text
        wrong_method = http.get(f"{url}/v1/search", timeout=30)
        assert wrong_method.status_code == 405 and wrong_method.headers["Allow"] == "POST"
        missing = http.get(f"{url}/v1/nothing", timeout=30)
        assert missing.status_code == 404 and "/v1/nothing" in missing.json()["error"]["message"]
        assert http.post(f"{url}/v1/refresh", data=b"{}", timeout=30).json()["error"]["field"] == "body"
        # The service still answers after all of them.
        assert search(url, {"vector": [0.5] * DIM}).status_code == 200


def test_a_refresh_during_a_request_storm_answers_every_request_from_one_snapshot(store: Store) -> None:
    old = [answer(e) for e in store.expected()]
    with serving(store, "--refresh-interval", "0") as (url, _):
        # The next snapshot is published now; the service keeps the old one until it is refreshed.
        store.build(data(2), "run_b")
        new = [answer(e) for e in store.expected()]
        assert new != old
        errors: list[str] = []
        seen = {"old": 0, "new": 0}
        lock = threading.Lock()
        started = threading.Event()

        def storm(worker: int) -> None:
            with requests.Session() as session:
                for n in range(200):
                    if n == 20:
                        started.set()
                    i = (worker * 200 + n) % len(QUERIES)
                    r = session.post(f"{url}/v1/search", json={"vector": QUERIES[i].tolist(), "top_k": 5, "num_probes": 2},
                                     timeout=60)
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text}")
                        continue
                    got = answer(r.json())
                    kind = "old" if got == old[i] else "new" if got == new[i] else "mixed"
                    if kind == "mixed":
                        errors.append(f"query {i}: an answer of neither snapshot: {got}")
                        continue
                    with lock:
                        seen[kind] += 1

        threads = [threading.Thread(target=storm, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        assert started.wait(timeout=300)
        refreshed = http.post(f"{url}/v1/refresh", timeout=120)
        for t in threads:
            t.join(timeout=600)
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refreshed"] is True and refreshed.json()["run_id"] == "run_b"
        assert errors == []
        assert seen["old"] + seen["new"] == 800
        after = search(url, {"vectors": QUERIES.tolist(), "top_k": 5, "num_probes": 2}).json()
        assert [answer(r) for r in after] == new
        assert http.get(f"{url}/v1/info", timeout=30).json()["run_id"] == "run_b"


def test_the_interval_refresh_swaps_in_a_new_snapshot(store: Store) -> None:
    with serving(store, "--refresh-interval", "100ms") as (url, _):
        store.build(data(3), "run_c")
        for _ in range(1200):  # bounded: the refresh thread polls every 100 ms
            if http.get(f"{url}/v1/info", timeout=30).json()["run_id"] == "run_c":
                break
            time.sleep(0.05)
        else:
            pytest.fail("the new snapshot was never served")
        assert [answer(r) for r in search(url, {"vectors": QUERIES.tolist(), "top_k": 5, "num_probes": 2}).json()] == \
            [answer(e) for e in store.expected()]
        assert 'shardvec_serve_refreshes_total{result="swapped"}' in http.get(f"{url}/metrics", timeout=30).text


def test_a_snapshot_that_fails_to_load_is_not_swapped_in(store: Store) -> None:
    old = [answer(e) for e in store.expected()]
    with serving(store, "--refresh-interval", "0") as (url, _):
        # The next snapshot's shard is damaged after publishing: loading it (download, verify) fails.
        store.build(data(4), "run_bad")
        shard = next(Path(store.prefix).glob("shards/run_id=run_bad/db=*/attempt=*/shard.db"))
        shard.chmod(0o644)
        with open(shard, "r+b") as f:
            f.seek(4096)
            f.write(b"\xff" * 64)
        r = http.post(f"{url}/v1/refresh", timeout=120)
        assert r.status_code >= 500 and "error" in r.json(), r.text
        assert "shard" in r.json()["error"]["message"], r.text
        ready = http.get(f"{url}/v1/ready", timeout=30)
        assert ready.status_code == 200 and ready.json()["run_id"] == "run_a"
        after = search(url, {"vectors": QUERIES.tolist(), "top_k": 5, "num_probes": 2}).json()
        assert [answer(a) for a in after] == old
        assert 'shardvec_serve_refreshes_total{result="failed"} 1' in http.get(f"{url}/metrics", timeout=30).text


def raw_request_head(port: int, body_length: int) -> socket.socket:
    """A search whose body is still on its way: the headers and nothing else."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    sock.sendall(f"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {body_length}\r\nConnection: close\r\n\r\n".encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


def wait_in_flight(url: str, n: int) -> None:
    for _ in range(600):
        if f"shardvec_serve_searches_in_flight {n}\n" in http.get(f"{url}/metrics", timeout=30).text:
            return
        time.sleep(0.05)
    pytest.fail(f"never {n} searches in flight")


def test_searches_beyond_max_concurrency_get_429_with_retry_after(store: Store) -> None:
    with serving(store, "--refresh-interval", "0", "--max-concurrency", "1") as (url, _):
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps({"vector": QUERIES[0].tolist(), "top_k": 3}).encode()
        held = raw_request_head(port, len(body))  # holds the only place while its body is awaited
        wait_in_flight(url, 1)
        refused = search(url, {"vector": QUERIES[1].tolist()})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["field"] == "max_concurrency"
        held.sendall(body)
        status, answered = read_response(held)
        held.close()
        assert status == 200 and len(answered["results"]) == 3
        wait_in_flight(url, 0)
        assert search(url, {"vector": QUERIES[1].tolist()}).status_code == 200


def keep_alive_exchange(url: str, count: int) -> list[tuple[int, str, str]]:
    """`count` searches sent one after another on one TCP connection (http.client): each answer's
    status, Connection header and Keep-Alive header, until the service closes the connection."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    body = json.dumps({"vector": QUERIES[0].tolist(), "top_k": 3})
    out = []
    try:
        for _ in range(count):
            conn.request("POST", "/v1/search", body=body, headers={"Content-Type": "application/json"})
            sock = conn.sock
            resp = conn.getresponse()
            resp.read()
            out.append((resp.status, resp.getheader("Connection", ""), resp.getheader("Keep-Alive", "")))
            if resp.getheader("Connection", "").lower() == "close":
                break
            assert conn.sock is sock  # the same connection carried the next request
    finally:
        conn.close()
    return out


def test_one_connection_carries_keep_alive_requests_searches(store: Store) -> None:
    with serving(store, "--refresh-interval", "0") as (url, _):
        answers = keep_alive_exchange(url, 40)  # cpp-httplib's own default would close after 5
        assert len(answers) == 40 and all(a[0] == 200 and a[1].lower() != "close" for a in answers), answers
        assert {a[2] for a in answers} == {"timeout=5, max=1000"}
    with serving(store, "--refresh-interval", "0", "--keep-alive-requests", "3") as (url, _):
        answers = keep_alive_exchange(url, 10)
        assert [a[0] for a in answers] == [200, 200, 200] and answers[-1][1].lower() == "close", answers


def idle_connection_open(url: str, idle_seconds: float) -> bool:
    """Whether the service still holds a keep-alive connection open after one search and then
    `idle_seconds` without a request."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"vector": QUERIES[0].tolist(), "top_k": 3}).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < int(
                re.search(rb"Content-Length: (\d+)", answer).group(1)):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        time.sleep(idle_seconds)
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) != b""  # b"": the service closed it
        except BlockingIOError:
            return True


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(store: Store) -> None:
    with serving(store, "--refresh-interval", "0", "--keep-alive-timeout", "1s") as (url, _):
        assert not idle_connection_open(url, 2.5)
    with serving(store, "--refresh-interval", "0") as (url, _):  # 5 s by default
        assert idle_connection_open(url, 2.5)


def test_sigterm_drains_the_request_in_flight_then_exits_0(store: Store) -> None:
    expected = store.expected(top_k=4)
    with serving(store, "--refresh-interval", "0") as (url, proc):
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps({"vector": QUERIES[7].tolist(), "top_k": 4, "num_probes": 2}).encode()
        held = raw_request_head(port, len(body))
        held.sendall(body[:10])
        wait_in_flight(url, 1)
        proc.send_signal(signal.SIGTERM)
        for _ in range(600):  # new connections are refused once it drains
            try:
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
            except (ConnectionRefusedError, ConnectionResetError):
                break  # reset: the listening socket closed while this connection waited in its backlog
            time.sleep(0.05)
        else:
            pytest.fail("the service kept accepting connections after SIGTERM")
        assert proc.poll() is None  # still answering the request in flight
        held.sendall(body[10:])
        status, answered = read_response(held)
        held.close()
        assert status == 200 and answer(answered) == answer(expected[7])
        assert proc.wait(timeout=60) == 0


def test_bearer_auth_guards_everything_but_health(store: Store) -> None:
    token = store.tmp / "token"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    with serving(store, "--refresh-interval", "0", "--auth-token-file", str(token)) as (url, _):
        assert http.get(f"{url}/v1/health", timeout=30).status_code == 200
        for bad in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            r = http.get(f"{url}/v1/info", headers=bad, timeout=30)
            assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer", r.text
            assert r.json()["error"]["field"] == "Authorization"
        good = {"Authorization": "Bearer s3cret-token"}
        assert http.get(f"{url}/v1/info", headers=good, timeout=30).status_code == 200
        assert search(url, {"vector": QUERIES[0].tolist()}, headers=good).status_code == 200
        assert search(url, {"vector": QUERIES[0].tolist()}).status_code == 401
    token.chmod(0o644)
    refused = subprocess.run([str(CLI), "serve", "--store", store.prefix, "--auth-token-file", str(token), "--port", "0"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "--auth-token-file" in refused.stderr and "not private" in refused.stderr


@pytest.mark.parametrize("flags, words", [
    (["--port", "70000"], "--port"),
    (["--refresh-interval", "soon"], "--refresh-interval 'soon'"),
    (["--read-timeout", "0"], "--read-timeout"),
    (["--max-concurrency", "0"], "--max-concurrency"),
    (["--max-body-bytes", "0"], "--max-body-bytes"),
    (["--keep-alive-requests", "0"], "--keep-alive-requests"),
    (["--keep-alive-timeout", "1500ms"], "--keep-alive-timeout '1500ms'"),
    (["--keep-alive-timeout", "2h"], "--keep-alive-timeout '2h'"),
    (["--max-top-k", "5000"], "--max-top-k"),
    (["--reader-mode", "fast"], "--reader-mode"),
    (["--endpoint-url", "http://127.0.0.1:1"], "--endpoint-url"),
])
def test_bad_flags_are_usage_errors_naming_the_flag(store: Store, flags: list[str], words: str) -> None:
    run = subprocess.run([str(CLI), "serve", "--store", store.prefix, *flags], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert words in run.stderr


def test_a_store_that_cannot_be_read_is_an_error_before_serving(tmp_path: Path) -> None:
    run = subprocess.run([str(CLI), "serve", "--store", str(tmp_path / "empty"), "--port", "0"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1 and "shardvec serve: error:" in run.stderr, run.stderr


def test_curl_searches_the_service(store: Store) -> None:
    expected = store.expected(top_k=3)
    with serving(store, "--refresh-interval", "0") as (url, _):
        body = json.dumps({"vector": QUERIES[2].tolist(), "top_k": 3, "num_probes": 2})
        run = subprocess.run(["curl", "-sS", "-X", "POST", f"{url}/v1/search", "-H", "Content-Type: application/json",
                              "-d", body], capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert answer(json.loads(run.stdout)) == answer(expected[2])
        bad = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-X", "POST", f"{url}/v1/search", "-d",
                              '{"vector": [1], "top_k": 3}'], capture_output=True, text=True, timeout=60)
        text, code = bad.stdout.rsplit("\n", 1)
        assert code == "400" and json.loads(text)["error"]["field"] == "vector"


def test_serves_an_s3_store_and_refreshes_it(tmp_path: Path, s3_server: dict[str, Any]) -> None:
    env, args = s3_env_args(s3_server)
    s3 = Store(s3_server["prefix"], tmp_path, env, args)
    s3.build(data(1), "s3_a")
    with serving(s3, "--refresh-interval", "0") as (url, _):
        assert [answer(r) for r in search(url, {"vectors": QUERIES.tolist(), "top_k": 5, "num_probes": 2}).json()] == \
            [answer(e) for e in s3.expected()]
        s3.build(data(2), "s3_b")
        assert http.post(f"{url}/v1/refresh", timeout=120).json()["run_id"] == "s3_b"
        assert [answer(r) for r in search(url, {"vectors": QUERIES.tolist(), "top_k": 5, "num_probes": 2}).json()] == \
            [answer(e) for e in s3.expected()]
