// Serve: the HTTP search service over one ShardedVectorReader (`shardvec serve`), with hot refresh,
// Prometheus metrics, bounded concurrency and request limits. README "Serving" lists the endpoints.
//
// Built into the `shardvec` command-line tool (it links Debian's cpp-httplib); the engine library
// and the Python package do not carry it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "shardvec/metrics.h"
#include "shardvec/reader.h"
#include "shardvec/status.h"

namespace shardvec {

// The largest top_k a reader accepts (and the default bound of ServeOptions::max_top_k).
inline constexpr int64_t kMaxSearchTopK = 4096;

struct ServeOptions {
  // The reader the service searches. Its `metrics` must be null: the reader's events go to `metrics`.
  ReaderOptions reader;
  // Where the reader's metric events are aggregated; GET /metrics renders it (with the service's own
  // families). Null: a collector of the service's own.
  std::shared_ptr<PrometheusCollector> metrics;
  std::string host = "127.0.0.1";
  int port = 8080;  // 0..65535; 0 binds a free port (reported through on_listening)
  // How often _CURRENT is polled for a new snapshot (loaded in the background, swapped atomically).
  // Zero: only POST /v1/refresh refreshes.
  std::chrono::milliseconds refresh_interval{std::chrono::seconds(30)};
  // Searches running at once (1..4096); one more is answered 429 with Retry-After.
  int64_t max_concurrency = 64;
  // Requests one keep-alive connection carries (1..1,000,000); the answer to the last says
  // "Connection: close" and the client reconnects. An open connection holds one of the service's
  // max_concurrency + 8 threads.
  int64_t keep_alive_requests = 1000;
  // How long an idle keep-alive connection is kept for its next request, in whole seconds (1 s..1 h).
  // Behind a load balancer, make it longer than the balancer's idle timeout, so that the service
  // never closes a connection the balancer is about to reuse. The SIGTERM drain waits up to this
  // long for idle connections.
  std::chrono::seconds keep_alive_timeout{5};
  // The largest request body accepted (1..1 GiB); a larger one is answered 413.
  int64_t max_body_bytes = int64_t{8} << 20;
  // The largest top_k a request may ask for (1..kMaxSearchTopK); above it: 400 naming top_k.
  int64_t max_top_k = kMaxSearchTopK;
  // The most query vectors one batch request may carry (1..1,000,000).
  int64_t max_batch_queries = 1024;
  // A connection that sends nothing for this long (reading a request) or takes this long to accept a
  // response (writing it) is closed; both > 0.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
  // When not empty, every request but GET /v1/health must carry "Authorization: Bearer <token>"
  // (compared in constant time); others are answered 401.
  std::string auth_token;
  // Called once the socket is bound and requests are accepted, with the port bound.
  std::function<void(int port)> on_listening;
};

// The bearer token in the file at `path`: its text without the trailing newline. Refused
// (InvalidArgument naming `flag` and the path) when the file cannot be read, is empty or larger than
// 4 KiB, holds characters outside visible ASCII (spaces, a second line), or when group or others may
// read or write it.
Result<std::string> ReadAuthTokenFile(const std::string& path, std::string_view flag = "auth_token_file");

// Opens the reader, binds, and answers requests until SIGTERM or SIGINT: then stops accepting
// connections, lets the requests in flight finish, closes the reader and returns OK. SIGTERM and
// SIGINT are blocked in the calling thread for the call (and so in every thread it starts). A bad
// option is InvalidArgument naming it; a reader that cannot open or a port that cannot be bound
// is the error, before anything is served.
Status Serve(const ServeOptions& options);

}  // namespace shardvec
