// shardvec search / info / shards / route / health: the read side of the CLI.
#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "shardvec/cel.h"
#include "shardvec/input_files.h"
#include "shardvec/limits.h"
#include "shardvec/rate_limit.h"
#include "shardvec/reader.h"
#include "shardvec/reader_json.h"
#include "shardvec/status_macros.h"
#include "shardvec/text.h"
#include "shardvec/verify.h"

namespace shardvec::cli {
namespace {

using nlohmann::json;

struct ReadArgs {
  std::string store;
  StoreOptions store_options;
  std::string manifest_store;
  std::string cache_dir;
  std::string query;
  std::string query_file;
  int64_t top_k = 10;
  std::optional<int64_t> num_probes;
  std::optional<int64_t> sublist_probes;  // search only
  std::optional<std::string> filter;      // search only
  std::optional<int64_t> max_extra_probes;  // search only, with --filter
  std::string shard_ids;
  std::vector<std::string> routing_context;  // KEY=VALUE, CEL snapshots
  std::string staleness;
  std::optional<std::string> rate_limit;  // search: queries per second
  int64_t max_workers = 0;
  std::string reader_mode;  // empty: download
  std::optional<int64_t> cache_max_bytes;  // download tier: the cache folder's byte budget
  bool json = false;
  // An older snapshot than _CURRENT's: at most one of these.
  std::optional<std::string> run_id;
  std::optional<std::string> ref;
  std::optional<int64_t> offset;
  // verify / health --deep
  std::optional<int64_t> sample;
  std::optional<uint64_t> seed;
  bool deep = false;
  bool quiet = false;
  bool raw_bytes = false;  // shards --bytes
};

// The query inputs search and route share.
void AddQueryOptions(CLI::App* cmd, ReadArgs& a) {
  cmd->add_option("--query", a.query, "Query vector as comma-separated floats");
  cmd->add_option("--query-file", a.query_file, ".npy query (1-D) or queries (2-D, every row runs)");
  cmd->add_option("--num-probes", a.num_probes, "Shards probed (default: the snapshot's)");
  cmd->add_option("--routing-context", a.routing_context,
                  "CEL snapshots: a variable of the query's routing context, KEY=VALUE (typed by the "
                  "snapshot's cel_columns); repeatable");
}

void AddStoreOptions(CLI::App* cmd, ReadArgs& a) {
  AddStoreOption(cmd, a.store, a.store_options);
  AddManifestStoreOption(cmd, a.manifest_store);
  cmd->add_option("--cache-dir", a.cache_dir, "Local shard cache, private to this user (default: ~/.cache/shardvec/shards/…)");
  cmd->add_flag("--json", a.json, "Print JSON");
}

// --reader-mode: search reads shards with the tier it names; info and shards report the tier a
// search would use (auto resolved for the snapshot).
void AddReaderModeOption(CLI::App* cmd, ReadArgs& a) {
  cmd->add_option("--reader-mode", a.reader_mode,
                  "How shards are read: download (into --cache-dir, default), range (ranged GETs, nothing "
                  "downloaded) or auto (range when a shard is >= 16 MiB or the snapshot >= 2 GiB)");
  cmd->add_option("--cache-max-bytes", a.cache_max_bytes,
                  "Download tier: prune unused shards from --cache-dir down to this many bytes (default 2 GiB)")
      ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
}

// --run-id / --ref / --offset: read an older published snapshot instead of _CURRENT's (one at most).
void AddSnapshotOptions(CLI::App* cmd, ReadArgs& a) {
  CLI::Option* run_id = cmd->add_option("--run-id", a.run_id, "Read the newest manifest of this run, not _CURRENT's");
  CLI::Option* ref = cmd->add_option("--ref", a.ref, "Read this manifest (URL or key manifests/<dir>/manifest)");
  CLI::Option* offset = cmd->add_option("--offset", a.offset, "Read the manifest at this history position (0 = newest)")
                            ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
  run_id->excludes(ref)->excludes(offset);
  ref->excludes(offset);
}

// The flag that chose the snapshot, with its value ("--run-id 'r1'"); empty when none did.
std::string SnapshotFlag(const ReadArgs& a) {
  if (a.run_id) return fmt::format("--run-id '{}'", *a.run_id);
  if (a.ref) return fmt::format("--ref '{}'", *a.ref);
  if (a.offset) return fmt::format("--offset {}", *a.offset);
  return "";
}

// Parses "1,2.5,3" into numbers of type T; `what` names the expected kind in the error.
template <typename T>
Result<std::vector<T>> ParseList(const std::string& text, std::string_view flag, std::string_view what) {
  std::vector<T> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string_view item = TrimBlanks(std::string_view(text).substr(start, end - start));
    const std::optional<T> value = ParseWhole<T>(item);
    if (!value) {
      return Status::InvalidArgument(fmt::format("{} must be comma-separated {}; '{}' is not one", flag, what, item));
    }
    out.push_back(*value);
    start = end + 1;
  }
  return out;
}

// The query flags as typed: exactly one of --query and --query-file, --query's numbers and
// --shard-ids' integers. Decided by the command line alone, so a failure is a usage error.
Status CheckQueryFlags(const ReadArgs& a) {
  if (!a.query.empty() && !a.query_file.empty()) {
    return Status::InvalidArgument("give either --query or --query-file, not both");
  }
  if (a.query.empty() && a.query_file.empty()) {
    return Status::InvalidArgument("one of --query or --query-file is required");
  }
  if (!a.query.empty()) RETURN_IF_ERROR(ParseList<float>(a.query, "--query", "floats").status());
  if (!a.shard_ids.empty()) RETURN_IF_ERROR(ParseList<int64_t>(a.shard_ids, "--shard-ids", "integers").status());
  return Status::OK();
}

// The queries of --query or --query-file (a 1-D .npy is one query, a 2-D one runs every row).
Result<Matrix> LoadQueries(const ReadArgs& a) {
  RETURN_IF_ERROR(CheckQueryFlags(a));
  if (!a.query_file.empty()) return LoadMatrixFile(a.query_file, "--query-file");
  ASSIGN_OR_RETURN(std::vector<float> values, ParseList<float>(a.query, "--query", "floats"));
  Matrix m{1, static_cast<int64_t>(values.size()), std::move(values)};
  return m;
}

// One --routing-context value typed by its cel_columns type; nullopt when it does not parse.
std::optional<RoutingValue> ParseContextValue(std::string_view type, std::string_view text) {
  const auto as_value = [](const auto& parsed) -> std::optional<RoutingValue> {
    if (!parsed) return std::nullopt;
    return RoutingValue(*parsed);
  };
  if (type == "string") return RoutingValue(std::string(text));
  if (type == "bytes") return RoutingValue(Bytes{std::string(text)});
  if (type == "bool") {
    if (text == "true") return RoutingValue(true);
    if (text == "false") return RoutingValue(false);
    return std::nullopt;
  }
  if (type == "int") return as_value(ParseWhole<int64_t>(text));
  if (type == "uint") {
    if (text.ends_with('u') || text.ends_with('U')) text.remove_suffix(1);  // CEL's literal form, 5u
    return as_value(ParseWhole<uint64_t>(text));
  }
  if (type == "double") return as_value(ParseWhole<double>(text));
  return std::nullopt;
}

// --routing-context KEY=VALUE flags as the routing context of a CEL snapshot; nullopt when none given.
Result<std::optional<RoutingContext>> ParseRoutingContext(const ReadArgs& a, const SnapshotInfo& info) {
  if (a.routing_context.empty()) return std::optional<RoutingContext>();
  if (info.strategy != Strategy::kCel) {
    return Status::InvalidArgument(fmt::format("--routing-context applies to CEL snapshots; this one uses {}",
                                               StrategyName(info.strategy)));
  }
  std::string declared;
  for (const auto& [name, type] : info.cel_columns) {
    declared += fmt::format("{}{}={}", declared.empty() ? "" : ", ", name, type);
  }
  RoutingContext context;
  for (const std::string& item : a.routing_context) {
    RETURN_IF_ERROR(CheckUtf8(item, "--routing-context"));
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(
          fmt::format("--routing-context '{}' must look like KEY=VALUE (this snapshot's variables: {})", item, declared));
    }
    const std::string key = item.substr(0, eq);
    const std::string value = item.substr(eq + 1);
    auto column = info.cel_columns.find(key);
    if (column == info.cel_columns.end()) {
      return Status::InvalidArgument(fmt::format(
          "--routing-context '{}': '{}' is not a variable of this snapshot's cel_expr (its variables: {})", item, key,
          declared));
    }
    std::optional<RoutingValue> parsed = ParseContextValue(column->second, value);
    if (!parsed) {
      return Status::InvalidArgument(fmt::format("--routing-context '{}': '{}' must be {}{} (cel_columns['{}']), got '{}'",
                                                 item, key, column->second,
                                                 column->second == "bool" ? ", true or false" : "", key, value));
    }
    if (context.contains(key)) {
      return Status::InvalidArgument(fmt::format("--routing-context '{}': '{}' is given twice", item, key));
    }
    context.emplace(key, std::move(*parsed));
  }
  return std::optional<RoutingContext>(std::move(context));
}

Result<std::unique_ptr<ShardedVectorReader>> OpenReader(const ReadArgs& a) {
  ReaderOptions options;
  options.store = a.store;
  options.store_options = a.store_options;
  ASSIGN_OR_RETURN(options.manifest_store, OpenCliManifestStore(a.manifest_store));
  options.cache_dir = a.cache_dir;
  options.max_workers = a.max_workers;
  options.metrics = CliMetrics();
  if (!a.reader_mode.empty()) {
    ASSIGN_OR_RETURN(options.reader_mode, ParseReaderMode(a.reader_mode, "--reader-mode"));
  }
  if (a.cache_max_bytes) options.max_cache_bytes = *a.cache_max_bytes;
  if (a.run_id || a.ref || a.offset) options.manifest = RollbackTarget{a.run_id, a.ref, a.offset};
  auto reader = ShardedVectorReader::Open(options);
  // No manifest matches the flag (NotFound), or its value cannot name one (InvalidArgument).
  const std::string flag = SnapshotFlag(a);
  if (!reader.ok() && !flag.empty() &&
      (reader.status().code() == StatusCode::kNotFound || reader.status().code() == StatusCode::kInvalidArgument)) {
    return reader.status().WithContext(flag);
  }
  return reader;
}

// One query's response; `query` is its row in --query-file (0 for --query).
json ResponseJson(const SearchResponse& r, int64_t query) {
  json out = json::parse(SearchResponseJson(r));
  out["query"] = query;
  out["shards"] = r.shard_ids;
  return out;
}

void PrintResponse(const SearchResponse& r, int64_t query, bool as_json) {
  if (as_json) {
    PrintJson(ResponseJson(r, query));
    return;
  }
  std::printf("top_k=%zu  shards=%lld  latency_ms=%.2f\n", r.results.size(),
              static_cast<long long>(r.num_shards_queried), r.latency_ms);
  // Ids and payloads are text someone else wrote: their control characters are escaped.
  for (const SearchHit& h : r.results) {
    std::printf("id=%s  score=%.6f  %s\n", DisplayText(RecordIdToString(h.id)).c_str(), h.score,
                h.payload_json ? DisplayText(*h.payload_json).c_str() : "");
  }
}

// --rate-limit QPS as a token bucket (one token per query); null when the flag is not given.
Result<std::unique_ptr<TokenBucket>> SearchRateLimit(const ReadArgs& a) {
  if (!a.rate_limit) return std::unique_ptr<TokenBucket>();
  const std::optional<double> qps = ParseWhole<double>(TrimBlanks(*a.rate_limit));
  if (!qps) {
    return Status::InvalidArgument(
        fmt::format("--rate-limit must be a number of queries per second > 0, got '{}'", DisplayText(*a.rate_limit)));
  }
  return TokenBucket::Create(*qps, "--rate-limit", nullptr, CliMetrics());
}

int RunSearch(const ReadArgs& a) {
  if (Status st = CheckQueryFlags(a); !st.ok()) return ReportUsageError("search", st.message());
  auto rate_limit = SearchRateLimit(a);
  if (!rate_limit.ok()) return ReportUsageError("search", rate_limit.status().message());
  auto queries = LoadQueries(a);
  if (!queries.ok()) return ReportError("search", queries.status());
  SearchOptions options;
  options.num_probes = a.num_probes;
  options.sublist_probes = a.sublist_probes;
  options.filter = a.filter;
  options.max_extra_probes = a.max_extra_probes;
  if (!a.shard_ids.empty()) {
    auto ids = ParseList<int64_t>(a.shard_ids, "--shard-ids", "integers");
    if (!ids.ok()) return ReportError("search", ids.status());
    options.shard_ids = *ids;
  }
  auto reader = OpenReader(a);
  if (!reader.ok()) return ReportError("search", reader.status());
  auto context = ParseRoutingContext(a, (*reader)->Info());
  if (!context.ok()) return ReportError("search", context.status());
  options.routing_context = std::move(context).value();
  // Rate limited, the queries run one at a time, each after its token.
  if (queries->rows == 1 || *rate_limit) {
    for (int64_t i = 0; i < queries->rows; ++i) {
      if (*rate_limit) {
        if (Status st = (*rate_limit)->Acquire(1); !st.ok()) return ReportError("search", st);
      }
      auto r = (*reader)->Search(std::span<const float>(queries->row(i), static_cast<size_t>(queries->cols)), a.top_k,
                                 options);
      if (!r.ok()) return ReportError("search", r.status());
      PrintResponse(*r, i, a.json);
    }
    return kExitOk;
  }
  auto all = (*reader)->BatchSearch(*queries, a.top_k, options);
  if (!all.ok()) return ReportError("search", all.status());
  for (size_t i = 0; i < all->size(); ++i) PrintResponse((*all)[i], static_cast<int64_t>(i), a.json);
  return kExitOk;
}

int RunInfo(const ReadArgs& a) {
  auto reader = OpenReader(a);
  if (!reader.ok()) return ReportError("info", reader.status());
  json info = json::parse(SnapshotInfoJson((*reader)->Info()));
  if (!a.reader_mode.empty()) info["reader_mode"] = ReaderModeName((*reader)->Stats().reader_mode);
  if (a.json) {
    PrintJson(info);
  } else {
    for (auto& [k, v] : info.items()) {
      const std::string text = DisplayText(v.is_string() ? v.get<std::string>() : JsonText(v));
      std::printf("%-14s %s\n", k.c_str(), text.c_str());
    }
  }
  return kExitOk;
}

int RunShards(const ReadArgs& a) {
  auto reader = OpenReader(a);
  if (!reader.ok()) return ReportError("shards", reader.status());
  json out = json::parse(ShardDetailsJson((*reader)->ShardDetails()));
  const json& rows = out["shards"];
  const std::string_view mode = ReaderModeName((*reader)->Stats().reader_mode);
  if (a.json) {
    if (!a.reader_mode.empty()) out["reader_mode"] = mode;
    PrintJson(out);
    return kExitOk;
  }
  if (!a.reader_mode.empty()) std::printf("reader_mode: %s\n", std::string(mode).c_str());
  std::printf("%-6s %12s %16s  %s\n", "DB_ID", "VECTORS", "SIZE", "URL");
  for (const auto& r : rows) {
    std::printf("%-6lld %12lld %16s  %s\n", r["db_id"].get<long long>(), r["vector_count"].get<long long>(),
                SizeText(r["db_bytes"].get<int64_t>(), a.raw_bytes).c_str(),
                r["db_url"].is_null() ? "(empty)" : DisplayText(r["db_url"].get<std::string>()).c_str());
  }
  return kExitOk;
}

int RunRoute(const ReadArgs& a) {
  if (Status st = CheckQueryFlags(a); !st.ok()) return ReportUsageError("route", st.message());
  auto queries = LoadQueries(a);
  if (!queries.ok()) return ReportError("route", queries.status());
  auto reader = OpenReader(a);
  if (!reader.ok()) return ReportError("route", reader.status());
  auto context = ParseRoutingContext(a, (*reader)->Info());
  if (!context.ok()) return ReportError("route", context.status());
  for (int64_t i = 0; i < queries->rows; ++i) {
    auto shards = (*reader)->Route(std::span<const float>(queries->row(i), static_cast<size_t>(queries->cols)),
                                   a.num_probes, *context);
    if (!shards.ok()) return ReportError("route", shards.status());
    if (a.json) {
      PrintJson({{"shard_ids", *shards}});
    } else {
      std::string line;
      for (size_t j = 0; j < shards->size(); ++j) line += (j ? "," : "") + std::to_string((*shards)[j]);
      std::printf("%s\n", line.c_str());
    }
  }
  return kExitOk;
}

Result<std::optional<std::chrono::seconds>> ParseStaleness(const std::string& text) {
  if (text.empty()) return std::optional<std::chrono::seconds>();
  const char unit = text.back();
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size() - 1, n);
  const int64_t scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
  if (text.size() < 2 || ec != std::errc() || ptr != text.data() + text.size() - 1 || scale == 0 || n < 0) {
    return Status::InvalidArgument(fmt::format("--staleness '{}' must look like 90s, 30m, 24h or 7d", text));
  }
  return std::optional<std::chrono::seconds>(std::chrono::seconds(n * scale));
}

json ProblemJson(const VerifyProblem& p) {
  return {{"check", p.check}, {"db_id", p.db_id ? json(*p.db_id) : json()}, {"object", p.object}, {"message", p.message}};
}

json VerifyReportJson(const VerifyReport& r) {
  json problems = json::array();
  for (const VerifyProblem& p : r.problems) problems.push_back(ProblemJson(p));
  json out = {{"ok", r.ok()},
              {"manifest_ref", r.manifest_ref},
              {"run_id", r.run_id},
              {"num_dbs", r.num_dbs},
              {"shards_checked", r.shards_checked},
              {"shards_read", r.shards_read},
              {"digests_absent", r.digests_absent},
              {"bytes_read", r.bytes_read},
              {"elapsed_ms", r.elapsed_ms},
              {"problems", problems}};
  if (!r.sampled.empty() || r.seed != 0) {
    out["sampled"] = r.sampled;
    out["seed"] = r.seed;
  }
  return out;
}

void PrintProblems(const VerifyReport& r) {
  for (const VerifyProblem& p : r.problems) {
    std::printf("problem %-9s %s\n", p.check.c_str(), DisplayText(p.message).c_str());
  }
}

// VerifySnapshot over the store and snapshot the flags name, with a progress line on a terminal.
Result<VerifyReport> RunVerification(const ReadArgs& a, std::optional<RollbackTarget> snapshot) {
  ASSIGN_OR_RETURN(std::shared_ptr<ObjectStore> store, OpenStore(a.store, a.store_options));
  VerifyOptions options;
  options.snapshot = std::move(snapshot);
  ASSIGN_OR_RETURN(options.manifest_store, OpenCliManifestStore(a.manifest_store));
  options.sample = a.sample;
  options.seed = a.seed;
  options.max_workers = a.max_workers;
  ProgressLine progress(!a.quiet && StderrIsTty());
  options.on_progress = [&progress](int64_t done, int64_t total) { progress.Update("verify", done, total); };
  Result<VerifyReport> report = VerifySnapshot(std::move(store), options);
  progress.Finish();
  return report;
}

int RunVerify(const ReadArgs& a) {
  std::optional<RollbackTarget> snapshot;
  if (a.run_id || a.ref || a.offset) snapshot = RollbackTarget{a.run_id, a.ref, a.offset};
  Result<VerifyReport> report = RunVerification(a, std::move(snapshot));
  if (!report.ok()) {
    const std::string flag = SnapshotFlag(a);
    return ReportError("verify", flag.empty() ? report.status() : report.status().WithContext(flag));
  }
  const VerifyReport& r = *report;
  if (a.json) {
    PrintJson(VerifyReportJson(r));
  } else {
    std::printf("%s  %s  shards=%lld  present_and_sized=%lld  contents_read=%lld  problems=%zu  %.2f s\n",
                r.ok() ? "ok" : "FAILED", DisplayText(r.manifest_ref).c_str(), static_cast<long long>(r.num_dbs),
                static_cast<long long>(r.shards_checked), static_cast<long long>(r.shards_read), r.problems.size(),
                r.elapsed_ms / 1000);
    if (!r.sampled.empty()) std::printf("sample seed=%llu\n", static_cast<unsigned long long>(r.seed));
    if (r.digests_absent > 0) {
      std::printf("note: %lld shard(s) read have no digest in the manifest (only size, schema and rows checked)\n",
                  static_cast<long long>(r.digests_absent));
    }
    PrintProblems(r);
  }
  return r.ok() ? kExitOk : kExitError;
}

int RunHealth(const ReadArgs& a) {
  auto staleness = ParseStaleness(a.staleness);
  if (!staleness.ok()) return ReportUsageError("health", staleness.status().message());
  auto reader = OpenReader(a);
  if (!reader.ok()) return ReportError("health", reader.status());
  ReaderHealth h = (*reader)->Health(*staleness);
  // --deep: the shards of the snapshot the reader serves are verified too; a problem is unhealthy.
  std::optional<VerifyReport> deep;
  if (a.deep && h.manifest_ref) {
    Result<VerifyReport> report = RunVerification(a, RollbackTarget{.ref = *h.manifest_ref});
    if (!report.ok()) return ReportError("health", report.status().WithContext("--deep"));
    if (!report->ok()) h.status = "unhealthy";
    deep = std::move(report).value();
  }
  json out = {{"status", h.status},
              {"manifest_ref", h.manifest_ref ? json(*h.manifest_ref) : json()},
              {"manifest_age_seconds", h.manifest_age_seconds ? json(*h.manifest_age_seconds) : json()},
              {"num_shards", h.num_shards},
              {"is_closed", h.is_closed}};
  if (deep) out["deep"] = VerifyReportJson(*deep);
  if (a.json) {
    PrintJson(out);
  } else {
    std::printf("%s  age=%.0fs  shards=%lld  %s\n", h.status.c_str(), h.manifest_age_seconds.value_or(0),
                static_cast<long long>(h.num_shards), DisplayText(h.manifest_ref.value_or("")).c_str());
    if (deep) PrintProblems(*deep);
  }
  // As the reference CLI: 1 for degraded, 2 for unhealthy.
  return h.status == "healthy" ? kExitOk : h.status == "degraded" ? kExitError : kExitUsage;
}

}  // namespace

void RegisterReadCommands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<ReadArgs>();

  CLI::App* search = app.add_subcommand("search", "Search a snapshot");
  AddStoreOptions(search, *args);
  AddSnapshotOptions(search, *args);
  AddReaderModeOption(search, *args);
  AddQueryOptions(search, *args);
  search->add_option("--top-k", args->top_k, "Results per query (1..4096, default 10)");
  search->add_option("--sublist-probes", args->sublist_probes,
                     "Snapshots built with sub-lists: sub-lists scanned, nearest first across the probed shards "
                     "(default: follows --num-probes)");
  search->add_option("--filter", args->filter,
                     "Only rows this CEL condition over the snapshot's filter columns passes, e.g. "
                     "\"lang == 'en' && year >= 2020\" (further shards are searched until --top-k are found)");
  search->add_option("--max-extra-probes", args->max_extra_probes,
                     "With --filter: at most this many shards beyond the routed ones to fill --top-k (default: no bound)")
      ->needs(search->get_option("--filter"));
  // --shard-ids replaces routing, so the routing flags cannot take effect beside it.
  search->add_option("--shard-ids", args->shard_ids, "Search exactly these shards, e.g. 0,3")
      ->excludes(search->get_option("--num-probes"))
      ->excludes(search->get_option("--routing-context"));
  search->add_option("--rate-limit", args->rate_limit,
                     "At most this many queries per second (a token bucket holding max(QPS, 1)); the "
                     "queries of --query-file then run one at a time");
  search->add_option("--max-workers", args->max_workers, "Search threads, 1..1024 (default: one per usable CPU)")
      ->check(CLI::Range(int64_t{1}, kMaxPoolThreads));
  search->callback([args, &exit_code] { exit_code = RunSearch(*args); });

  CLI::App* info = app.add_subcommand("info", "Describe the current snapshot (or an older one: --run-id, --ref, --offset)");
  AddStoreOptions(info, *args);
  AddSnapshotOptions(info, *args);
  AddReaderModeOption(info, *args);
  info->callback([args, &exit_code] { exit_code = RunInfo(*args); });

  CLI::App* shards = app.add_subcommand("shards", "List the current snapshot's shards (or an older one's)");
  AddStoreOptions(shards, *args);
  AddSnapshotOptions(shards, *args);
  AddReaderModeOption(shards, *args);
  AddBytesFlag(shards, args->raw_bytes);
  shards->callback([args, &exit_code] { exit_code = RunShards(*args); });

  CLI::App* route = app.add_subcommand("route", "Show the shards a query would probe");
  AddStoreOptions(route, *args);
  AddSnapshotOptions(route, *args);
  AddQueryOptions(route, *args);
  route->callback([args, &exit_code] { exit_code = RunRoute(*args); });

  CLI::App* health = app.add_subcommand("health", "Reader health; exit 1 when degraded, 2 when unhealthy");
  AddStoreOptions(health, *args);
  health->add_option("--staleness", args->staleness, "Degraded when the snapshot is older, e.g. 24h");
  health->add_flag("--deep", args->deep,
                   "Also verify the served snapshot's shards (present, size, digest, schema, row counts) as "
                   "`verify` does; unhealthy when one is not");
  health->add_flag("--quiet", args->quiet, "No progress line (--deep)");
  health->add_option("--max-workers", args->max_workers, "--deep: shards checked at once, 1..1024 (default: one per usable CPU)")
      ->check(CLI::Range(int64_t{1}, kMaxPoolThreads));
  health->callback([args, &exit_code] { exit_code = RunHealth(*args); });

  CLI::App* verify = app.add_subcommand(
      "verify", "Check a snapshot against its manifest: shards present, sizes, digests, schema, row counts, "
                "routing artifacts; exit 1 naming each problem");
  AddStoreOption(verify, args->store, args->store_options);
  AddManifestStoreOption(verify, args->manifest_store);
  AddSnapshotOptions(verify, *args);
  CLI::Option* sample =
      verify->add_option("--sample", args->sample,
                         "Read the contents (digest, schema, rows) of this many random shards only; every "
                         "shard's presence and size are still checked")
          ->check(CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()));
  verify->add_option("--seed", args->seed, "Seed of --sample's choice (default: random, printed)")->needs(sample);
  verify->add_option("--max-workers", args->max_workers, "Shards checked at once, 1..1024 (default: one per usable CPU)")
      ->check(CLI::Range(int64_t{1}, kMaxPoolThreads));
  verify->add_flag("--json", args->json, "Print the report as JSON");
  verify->add_flag("--quiet", args->quiet, "No progress line");
  verify->callback([args, &exit_code] { exit_code = RunVerify(*args); });
}

}  // namespace shardvec::cli
