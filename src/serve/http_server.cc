// Serve(): the HTTP routes over one ShardedVectorReader, on cpp-httplib's server and thread pool.
#include <httplib.h>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "common/json_text.h"
#include "common/log.h"
#include "common/time_util.h"
#include "metrics/prometheus_text.h"
#include "serve/admission.h"
#include "serve/auth.h"
#include "serve/http_errors.h"
#include "serve/refresher.h"
#include "serve/search_request.h"
#include "serve/serve_metrics.h"
#include "serve/signal_watch.h"
#include "shardvec/reader_json.h"
#include "shardvec/serve.h"
#include "shardvec/status_macros.h"

namespace shardvec {
namespace serve {
namespace {

using nlohmann::json;
using httplib::Request;
using httplib::Response;
using HandlerResponse = httplib::Server::HandlerResponse;

constexpr const char* kJsonType = "application/json";
constexpr std::string_view kEndpoints[] = {"/v1/search", "/v1/info", "/v1/shards", "/v1/health",
                                           "/v1/ready",  "/v1/refresh", "/metrics"};
constexpr std::string_view kPostEndpoints[] = {"/v1/search", "/v1/refresh"};

bool Contains(std::span<const std::string_view> list, std::string_view item) {
  for (std::string_view x : list) {
    if (x == item) return true;
  }
  return false;
}

// The route a request was for, as the metrics label it ("other" for any path the service lacks).
std::string_view EndpointOf(const std::string& path) {
  for (std::string_view e : kEndpoints) {
    if (e == path) return e;
  }
  return "other";
}

// When the request this thread is answering was routed (the logger reads it after the answer).
struct RequestClock {
  std::chrono::steady_clock::time_point start;
  std::string_view endpoint = "other";
  bool routed = false;
};
thread_local RequestClock t_clock;

void SetError(Response& res, int status, std::string_view code, std::string_view message,
              std::string_view field = {}) {
  res.status = status;
  res.set_content(ErrorJson(code, message, field), kJsonType);
}

void SetStatusError(Response& res, const Status& status) {
  SetError(res, HttpStatusFor(status.code()), StatusCodeName(status.code()), status.message());
}

class Service {
 public:
  Service(const ServeOptions& options, std::shared_ptr<PrometheusCollector> collector)
      : options_(options), collector_(std::move(collector)), limiter_(options.max_concurrency) {}

  void Install(httplib::Server& svr) {
    svr.set_pre_routing_handler([this](const Request& req, Response& res) { return PreRoute(req, res); });
    svr.set_logger([this](const Request& req, const Response& res) { Log(req, res); });
    svr.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const Request& req, Response& res) { return OnError(req, res); }));
    svr.set_exception_handler([](const Request&, Response& res, std::exception_ptr error) {
      std::string what = "unknown exception";
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      SetError(res, 500, "Internal", fmt::format("the request failed: {}", what));
    });
    svr.Post("/v1/search", [this](const Request& req, Response& res, const httplib::ContentReader& content) {
      Search(res, &content);
    });
    svr.Post("/v1/search", [this](const Request&, Response& res) { Search(res, nullptr); });
    svr.Post("/v1/refresh", [this](const Request& req, Response& res) { Refresh(req, res); });
    svr.Get("/v1/info", [this](const Request&, Response& res) {
      if (ShardedVectorReader* reader = Loaded(res)) res.set_content(SnapshotInfoJson(reader->Info()), kJsonType);
    });
    svr.Get("/v1/shards", [this](const Request&, Response& res) {
      if (ShardedVectorReader* reader = Loaded(res)) res.set_content(ShardDetailsJson(reader->ShardDetails()), kJsonType);
    });
    svr.Get("/v1/health", [](const Request&, Response& res) { res.set_content(R"({"status":"ok"})", kJsonType); });
    svr.Get("/v1/ready", [this](const Request&, Response& res) { Ready(res); });
    svr.Get("/metrics", [this](const Request&, Response& res) {
      std::string text = collector_->Exposition();
      text += RenderExposition(metrics_.Families(limiter_.in_use(), reader_.load() != nullptr));
      res.set_content(text, "text/plain; version=0.0.4; charset=utf-8");
    });
  }

  // A reader and its refresher start serving; null: no snapshot is served any more.
  void SetReader(ShardedVectorReader* reader, Refresher* refresher) {
    if (reader != nullptr) dim_ = reader->Info().dim;
    refresher_.store(refresher);
    reader_.store(reader);
  }

  ServeMetrics& metrics() { return metrics_; }

 private:
  HandlerResponse PreRoute(const Request& req, Response& res) {
    t_clock = {std::chrono::steady_clock::now(), EndpointOf(req.path), true};
    if (!options_.auth_token.empty() && req.path != "/v1/health" &&
        !BearerTokenMatches(req.get_header_value("Authorization"), options_.auth_token)) {
      res.set_header("WWW-Authenticate", "Bearer");
      SetError(res, 401, "Unauthenticated", "this service needs an \"Authorization: Bearer <token>\" header with its token",
               "Authorization");
      return HandlerResponse::Handled;
    }
    return HandlerResponse::Unhandled;
  }

  // Counts the answer and writes one access-log event.
  void Log(const Request& req, const Response& res) {
    const RequestClock clock = t_clock;
    t_clock.routed = false;
    const double seconds =
        clock.routed ? std::chrono::duration<double>(std::chrono::steady_clock::now() - clock.start).count() : 0;
    metrics_.RecordRequest(clock.routed ? clock.endpoint : "other", res.status, seconds);
    if (LogEnabled(LogLevel::kInfo)) {
      LogEvent(LogLevel::kInfo, "serve_request",
               {{"method", req.method},
                {"path", req.path},
                {"status", res.status},
                {"elapsed_ms", seconds * 1000},
                {"bytes", res.body.size()},
                {"remote_addr", req.remote_addr}});
    }
  }

  // A JSON body for the answers httplib makes itself (no route, body too large, bad HTTP).
  static HandlerResponse OnError(const Request& req, Response& res) {
    if (!res.body.empty()) return HandlerResponse::Unhandled;
    if (res.status == 404 && Contains(kEndpoints, req.path)) {
      const bool post = Contains(kPostEndpoints, req.path);
      res.set_header("Allow", post ? "POST" : "GET");
      SetError(res, 405, "MethodNotAllowed", fmt::format("{} takes {}, not {}", req.path, post ? "POST" : "GET", req.method));
    } else if (res.status == 404) {
      SetError(res, 404, "NotFound", fmt::format("no endpoint {} {} (the service has /v1/search, /v1/info, /v1/shards, "
                                                 "/v1/health, /v1/ready, /v1/refresh and /metrics)",
                                                 req.method, req.path));
    } else if (res.status == 413) {
      SetError(res, 413, "PayloadTooLarge", "the request body is larger than max_body_bytes", "body");
    } else {
      SetError(res, res.status, "BadRequest", fmt::format("the request was refused with HTTP status {}", res.status));
    }
    return HandlerResponse::Handled;
  }

  // The reader serving now; null (and a 503 answer) before a snapshot is loaded.
  ShardedVectorReader* Loaded(Response& res) {
    ShardedVectorReader* reader = reader_.load();
    if (reader == nullptr) {
      res.set_header("Retry-After", "1");
      SetError(res, 503, "Unavailable", "no snapshot is loaded yet");
    }
    return reader;
  }

  void Ready(Response& res) {
    ShardedVectorReader* reader = reader_.load();
    if (reader == nullptr) {
      res.status = 503;
      res.set_content(R"({"ready":false})", kJsonType);
      return;
    }
    const SnapshotInfo info = reader->Info();
    res.set_content(SafeJsonDump({{"ready", true}, {"run_id", info.run_id}, {"manifest_ref", info.manifest_ref}}),
                    kJsonType);
  }

  void Search(Response& res, const httplib::ContentReader* content) {
    ConcurrencyLimiter::Slot slot = limiter_.TryAcquire();
    if (!slot) {
      res.set_header("Retry-After", "1");
      SetError(res, 429, "TooManyRequests",
               fmt::format("{} searches are running already (max_concurrency); retry later", limiter_.limit()),
               "max_concurrency");
      return;
    }
    ShardedVectorReader* reader = Loaded(res);
    if (reader == nullptr) return;
    std::string body;
    if (content != nullptr) {
      bool too_large = false;
      const bool read = (*content)([&](const char* data, size_t n) {
        if (static_cast<int64_t>(body.size() + n) > options_.max_body_bytes) {
          too_large = true;
          return false;
        }
        body.append(data, n);
        return true;
      });
      if (too_large || res.status == 413) {
        res.set_header("Connection", "close");
        return SetError(res, 413, "PayloadTooLarge",
                        fmt::format("the request body is larger than max_body_bytes ({})", options_.max_body_bytes), "body");
      }
      if (!read) return SetError(res, 400, "BadRequest", "the request body could not be read", "body");
    }
    const RequestLimits limits{dim_.load(), options_.max_top_k, options_.max_batch_queries};
    std::string field;
    Result<SearchRequest> parsed = ParseSearchRequest(body, limits, &field);
    if (!parsed.ok()) return SetError(res, 400, "InvalidArgument", parsed.status().message(), field);
    const SearchRequest& r = *parsed;
    if (!r.batch) {
      Result<SearchResponse> one = reader->Search(std::span<const float>(r.queries.row(0), static_cast<size_t>(r.queries.cols)),
                                                  r.top_k, r.options);
      if (!one.ok()) return SetStatusError(res, one.status());
      return res.set_content(SearchResponseJson(*one), kJsonType);
    }
    Result<std::vector<SearchResponse>> all = reader->BatchSearch(r.queries, r.top_k, r.options);
    if (!all.ok()) return SetStatusError(res, all.status());
    std::string text = "[";
    for (size_t i = 0; i < all->size(); ++i) {
      if (i > 0) text += ',';
      text += SearchResponseJson((*all)[i]);
    }
    text += ']';
    res.set_content(text, kJsonType);
  }

  void Refresh(const Request& req, Response& res) {
    if (!req.body.empty()) return SetError(res, 400, "InvalidArgument", "POST /v1/refresh takes no body", "body");
    ShardedVectorReader* reader = Loaded(res);
    if (reader == nullptr) return;
    Result<bool> swapped = refresher_.load()->RefreshNow();
    if (!swapped.ok()) return SetStatusError(res, swapped.status());
    const SnapshotInfo info = reader->Info();
    res.set_content(SafeJsonDump({{"refreshed", *swapped}, {"run_id", info.run_id}, {"manifest_ref", info.manifest_ref}}),
                    kJsonType);
  }

  const ServeOptions& options_;
  std::shared_ptr<PrometheusCollector> collector_;
  ServeMetrics metrics_;
  ConcurrencyLimiter limiter_;
  std::atomic<ShardedVectorReader*> reader_{nullptr};
  std::atomic<Refresher*> refresher_{nullptr};
  std::atomic<int64_t> dim_{0};
};

Status CheckOptions(const ServeOptions& o) {
  const auto range = [](std::string_view name, int64_t value, int64_t lo, int64_t hi) {
    return value >= lo && value <= hi ? Status::OK()
                                      : Status::InvalidArgument(fmt::format("{} must be {}..{}, got {}", name, lo, hi, value));
  };
  if (o.host.empty()) return Status::InvalidArgument("host must not be empty");
  RETURN_IF_ERROR(range("port", o.port, 0, 65535));
  RETURN_IF_ERROR(range("max_concurrency", o.max_concurrency, 1, 4096));
  RETURN_IF_ERROR(range("keep_alive_requests", o.keep_alive_requests, 1, 1'000'000));
  RETURN_IF_ERROR(range("keep_alive_timeout (s)", o.keep_alive_timeout.count(), 1, 3600));
  RETURN_IF_ERROR(range("max_body_bytes", o.max_body_bytes, 1, int64_t{1} << 30));
  RETURN_IF_ERROR(range("max_top_k", o.max_top_k, 1, kMaxSearchTopK));
  RETURN_IF_ERROR(range("max_batch_queries", o.max_batch_queries, 1, 1'000'000));
  RETURN_IF_ERROR(range("refresh_interval (ms)", o.refresh_interval.count(), 0, int64_t{366} * 86'400'000));
  RETURN_IF_ERROR(range("read_timeout (ms)", o.read_timeout.count(), 1, 86'400'000));
  RETURN_IF_ERROR(range("write_timeout (ms)", o.write_timeout.count(), 1, 86'400'000));
  if (o.reader.metrics) {
    return Status::InvalidArgument("reader.metrics must be null: the reader's events go to ServeOptions::metrics");
  }
  return Status::OK();
}

void SetTimeouts(httplib::Server& svr, const ServeOptions& o) {
  const auto split = [](std::chrono::milliseconds t) {
    return std::pair<time_t, time_t>(static_cast<time_t>(t.count() / 1000), static_cast<time_t>(t.count() % 1000 * 1000));
  };
  const auto [rs, rus] = split(o.read_timeout);
  const auto [ws, wus] = split(o.write_timeout);
  svr.set_read_timeout(rs, rus);
  svr.set_write_timeout(ws, wus);
}

// Runs listen_after_bind on a thread and returns once the server accepts connections (or gave up).
class Listener {
 public:
  explicit Listener(httplib::Server& svr) : svr_(svr) {}
  ~Listener() { Join(); }

  Status Start() {
    try {
      thread_ = std::thread([this] {
        svr_.listen_after_bind();
        done_.store(true);
      });
    } catch (const std::system_error& e) {
      return Status::Unavailable(fmt::format("cannot start the listening thread: {}", e.what()));
    }
    // stop() only takes effect on a running server: wait until it runs (bounded by the thread).
    while (!svr_.is_running() && !done_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (done_.load()) return Status::Unavailable("the server stopped as it started");
    return Status::OK();
  }
  // Stops accepting and returns when the requests in flight are answered.
  void StopAndJoin() {
    svr_.stop();
    Join();
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  httplib::Server& svr_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace
}  // namespace serve

Status Serve(const ServeOptions& options) {
  using namespace serve;
  RETURN_IF_ERROR(CheckOptions(options));
  SignalWatch signals;  // before any thread starts, so that none of them takes the signal
  std::shared_ptr<PrometheusCollector> collector =
      options.metrics ? options.metrics : std::make_shared<PrometheusCollector>();
  Service service(options, collector);
  httplib::Server svr;
  service.Install(svr);
  const size_t threads = static_cast<size_t>(options.max_concurrency) + 8;  // the rest answer 429s, health, metrics
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  svr.set_tcp_nodelay(true);
  // cpp-httplib closes a connection after 5 requests by default: a client then reconnects every 5
  // searches, which cost the service about 50 µs of CPU per search (bench/serve_bench.py, concurrency 8).
  svr.set_keep_alive_max_count(static_cast<size_t>(options.keep_alive_requests));
  svr.set_keep_alive_timeout(static_cast<time_t>(options.keep_alive_timeout.count()));
  SetTimeouts(svr, options);
  int port = options.port;
  if (port == 0) {
    port = svr.bind_to_any_port(options.host);
  } else if (!svr.bind_to_port(options.host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return Status::Unavailable(fmt::format("cannot listen on host '{}' port {}: the address is in use or not one of "
                                           "this machine's",
                                           options.host, options.port));
  }
  Listener listener(svr);
  RETURN_IF_ERROR(listener.Start());
  RETURN_IF_ERROR(signals.Start([&svr](int signal) {
    LogEvent(LogLevel::kInfo, "serve_draining", {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"}});
    svr.stop();
  }));
  LogEvent(LogLevel::kInfo, "serve_listening", {{"host", options.host}, {"port", port}});
  if (options.on_listening) options.on_listening(port);

  // /v1/health answers while the snapshot loads; /v1/ready says 503 until it is loaded.
  ReaderOptions reader_options = options.reader;
  reader_options.metrics = collector;
  Result<std::unique_ptr<ShardedVectorReader>> reader = ShardedVectorReader::Open(reader_options);
  if (!reader.ok()) {
    listener.StopAndJoin();
    return reader.status();
  }
  Refresher refresher([r = reader->get()] { return r->Refresh(); }, service.metrics());
  service.SetReader(reader->get(), &refresher);
  if (Status started = refresher.Start(options.refresh_interval); !started.ok()) {
    listener.StopAndJoin();
    service.SetReader(nullptr, nullptr);
    return started;
  }
  listener.Join();  // until a signal stops the server and the requests in flight are answered
  refresher.Stop();
  service.SetReader(nullptr, nullptr);
  (*reader)->Close();
  LogEvent(LogLevel::kInfo, "serve_stopped", {{"port", port}});
  return Status::OK();
}

}  // namespace shardvec
