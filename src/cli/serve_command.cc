// shardvec serve: the HTTP search service (the work is in shardvec/serve.h; this parses flags).
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "shardvec/limits.h"
#include "shardvec/reader.h"
#include "shardvec/serve.h"
#include "shardvec/status_macros.h"

namespace shardvec::cli {
namespace {

struct ServeArgs {
  std::string store;
  StoreOptions store_options;
  std::string manifest_store;
  std::string cache_dir;
  std::optional<int64_t> cache_max_bytes;
  std::string reader_mode;
  int64_t max_workers = 0;
  bool no_preload = false;
  std::string host = "127.0.0.1";
  int64_t port = 8080;
  std::string refresh_interval = "30s";
  int64_t max_concurrency = 64;
  int64_t max_body_bytes = int64_t{8} << 20;
  int64_t keep_alive_requests = 1000;
  std::string keep_alive_timeout = "5s";
  int64_t max_top_k = kMaxSearchTopK;
  int64_t max_batch = 1024;
  std::string read_timeout = "10s";
  std::string write_timeout = "10s";
  std::string auth_token_file;
};

// "250ms", "30s", "5m", "1h" or "0" (a whole number and a unit) as milliseconds.
Result<std::chrono::milliseconds> ParseInterval(const std::string& text, std::string_view flag) {
  if (text == "0") return std::chrono::milliseconds(0);
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string_view unit = std::string_view(text).substr(digits);
  const int64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60'000 : unit == "h" ? 3'600'000 : 0;
  const std::optional<int64_t> n = ParseWhole<int64_t>(std::string_view(text).substr(0, digits));
  if (!n || scale == 0 || *n > std::numeric_limits<int64_t>::max() / scale / 1000) {
    return Status::InvalidArgument(
        fmt::format("{} '{}' must be a whole number with a unit, like 500ms, 30s, 5m or 1h (or 0)", flag, DisplayText(text)));
  }
  return std::chrono::milliseconds(*n * scale);
}

// The flags as ServeOptions; a bad value is a usage error naming its flag.
Result<ServeOptions> Options(const ServeArgs& a) {
  ServeOptions o;
  o.reader.store = a.store;
  o.reader.store_options = a.store_options;
  o.reader.cache_dir = a.cache_dir;
  o.reader.max_workers = a.max_workers;
  o.reader.preload_shards = !a.no_preload;
  if (a.cache_max_bytes) o.reader.max_cache_bytes = *a.cache_max_bytes;
  if (!a.reader_mode.empty()) {
    ASSIGN_OR_RETURN(o.reader.reader_mode, ParseReaderMode(a.reader_mode, "--reader-mode"));
  }
  o.host = a.host;
  o.port = static_cast<int>(a.port);
  ASSIGN_OR_RETURN(o.refresh_interval, ParseInterval(a.refresh_interval, "--refresh-interval"));
  ASSIGN_OR_RETURN(o.read_timeout, ParseInterval(a.read_timeout, "--read-timeout"));
  ASSIGN_OR_RETURN(o.write_timeout, ParseInterval(a.write_timeout, "--write-timeout"));
  if (o.read_timeout.count() == 0 || o.write_timeout.count() == 0) {
    return Status::InvalidArgument("--read-timeout and --write-timeout must be > 0");
  }
  o.max_concurrency = a.max_concurrency;
  o.max_body_bytes = a.max_body_bytes;
  o.keep_alive_requests = a.keep_alive_requests;
  ASSIGN_OR_RETURN(const std::chrono::milliseconds keep_alive, ParseInterval(a.keep_alive_timeout, "--keep-alive-timeout"));
  if (keep_alive.count() % 1000 != 0 || keep_alive < std::chrono::seconds(1) || keep_alive > std::chrono::hours(1)) {
    return Status::InvalidArgument(fmt::format("--keep-alive-timeout '{}' must be whole seconds from 1s to 1h",
                                               DisplayText(a.keep_alive_timeout)));
  }
  o.keep_alive_timeout = std::chrono::duration_cast<std::chrono::seconds>(keep_alive);
  o.max_top_k = a.max_top_k;
  o.max_batch_queries = a.max_batch;
  o.metrics = CliMetrics();  // --metrics-file: the file gets what GET /metrics showed last
  return o;
}

int RunServe(const ServeArgs& a) {
  Result<ServeOptions> options = Options(a);
  if (!options.ok()) return ReportUsageError("serve", options.status().message());
  if (!a.auth_token_file.empty()) {
    Result<std::string> token = ReadAuthTokenFile(a.auth_token_file, "--auth-token-file");
    if (!token.ok()) return ReportError("serve", token.status());
    options->auth_token = std::move(token).value();
  }
  Result<std::shared_ptr<ManifestStore>> manifests = OpenCliManifestStore(a.manifest_store);
  if (!manifests.ok()) return ReportError("serve", manifests.status());
  options->reader.manifest_store = std::move(manifests).value();
  options->on_listening = [&a](int port) {
    std::printf("shardvec serve: listening on http://%s:%d\n", a.host.c_str(), port);
    std::fflush(stdout);
  };
  if (Status st = Serve(*options); !st.ok()) return ReportError("serve", st);
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Serve searches over HTTP (JSON under /v1/, Prometheus at /metrics)");
  AddStoreOption(cmd, args->store, args->store_options);
  AddManifestStoreOption(cmd, args->manifest_store);
  cmd->add_option("--cache-dir", args->cache_dir, "Local shard cache, private to this user (default: ~/.cache/shardvec/shards/…)");
  cmd->add_option("--cache-max-bytes", args->cache_max_bytes,
                  "Download tier: prune unused shards from --cache-dir down to this many bytes (default 2 GiB)")
      ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
  cmd->add_option("--reader-mode", args->reader_mode, "How shards are read: download (default), range or auto");
  cmd->add_option("--max-workers", args->max_workers, "Search threads, 1..1024 (default: one per usable CPU)")
      ->check(CLI::Range(int64_t{1}, kMaxPoolThreads));
  cmd->add_flag("--no-preload", args->no_preload,
                "Open shards at their first search instead of before a snapshot is served (a snapshot with a "
                "missing or corrupt shard is then swapped in and fails searches)");
  cmd->add_option("--host", args->host, "Address to bind (default 127.0.0.1)");
  cmd->add_option("--port", args->port, "Port to bind, 0..65535; 0 picks a free one (default 8080)")
      ->check(CLI::Range(int64_t{0}, int64_t{65535}));
  cmd->add_option("--refresh-interval", args->refresh_interval,
                  "How often _CURRENT is polled for a new snapshot, e.g. 30s (default); 0: only POST /v1/refresh");
  cmd->add_option("--max-concurrency", args->max_concurrency,
                  "Searches at once, 1..4096 (default 64); one more is answered 429 with Retry-After")
      ->check(CLI::Range(int64_t{1}, int64_t{4096}));
  cmd->add_option("--max-body-bytes", args->max_body_bytes, "Largest request body, 1..1073741824 (default 8 MiB); larger: 413")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  cmd->add_option("--keep-alive-requests", args->keep_alive_requests,
                  "Requests one connection carries before the answer closes it, 1..1000000 (default 1000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  cmd->add_option("--keep-alive-timeout", args->keep_alive_timeout,
                  "Close a keep-alive connection idle this long, whole seconds 1s..1h (default 5s); behind a load "
                  "balancer, longer than its idle timeout");
  cmd->add_option("--max-top-k", args->max_top_k, "Largest top_k a request may ask for, 1..4096 (default 4096)")
      ->check(CLI::Range(int64_t{1}, kMaxSearchTopK));
  cmd->add_option("--max-batch", args->max_batch, "Most vectors in one batch request, 1..1000000 (default 1024)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  cmd->add_option("--read-timeout", args->read_timeout, "Close a connection that sends nothing for this long (default 10s)");
  cmd->add_option("--write-timeout", args->write_timeout, "Close a connection that takes no answer for this long (default 10s)");
  cmd->add_option("--auth-token-file", args->auth_token_file,
                  "Require \"Authorization: Bearer <token>\" on every request but /v1/health; the file (mode 600) holds the token");
  cmd->callback([args, &exit_code] { exit_code = RunServe(*args); });
}

}  // namespace shardvec::cli
