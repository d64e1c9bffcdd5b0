// shardvec history / rollback / cleanup: list the published snapshots, point _CURRENT back at one
// of them, and delete shard data that no kept snapshot needs.
#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "shardvec/admin.h"
#include "shardvec/config.h"
#include "shardvec/status_macros.h"

namespace shardvec::cli {
namespace {

// 100000 days keeps `now - older_than` far inside the microsecond clock's range.
constexpr int64_t kMaxAgeSeconds = int64_t{100000} * 86400;

struct HistoryArgs {
  std::string store;
  StoreOptions store_options;
  std::string manifest_store;
  int64_t limit = 10;
  bool shards = false;  // --shards: read each manifest and say what it shares
  bool json = false;
};

struct RollbackArgs {
  std::string store;
  StoreOptions store_options;
  std::string manifest_store;
  std::optional<std::string> run_id;
  std::optional<std::string> ref;
  std::optional<int64_t> offset;
  bool json = false;
};

struct CleanupArgs {
  std::string store;
  StoreOptions store_options;
  std::string manifest_store;
  bool dry_run = false;
  std::optional<int64_t> keep_last;
  std::optional<std::string> older_than;
  std::string shard_prefix = "shards";
  std::string run_registry_prefix = "runs";
  bool json = false;
  bool raw_bytes = false;  // --bytes
};

// ---- history ---------------------------------------------------------------------------------

void PrintHistory(const std::vector<HistoryEntry>& entries, bool json) {
  if (json) {
    nlohmann::json manifests = nlohmann::json::array();
    for (size_t i = 0; i < entries.size(); ++i) {
      const HistoryEntry& e = entries[i];
      manifests.push_back({{"offset", i}, {"run_id", e.run_id}, {"published_at", e.published_at},
                           {"ref", e.ref}, {"current", e.current}});
      if (e.manifest) {
        manifests.back()["shards"] = e.manifest->num_dbs;
        manifests.back()["shared_shards"] = e.manifest->shared_shards;
        manifests.back()["base_run_id"] = e.manifest->base_run_id;
      }
    }
    PrintJson({{"manifests", std::move(manifests)}});
    return;
  }
  if (entries.empty()) {
    std::printf("(no manifests)\n");
    return;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const HistoryEntry& e = entries[i];
    // Store listings are text someone else wrote: control characters are escaped.
    std::printf("[%zu] %s  run_id=%s%s", i, DisplayText(e.published_at).c_str(), DisplayText(e.run_id).c_str(),
                e.current ? "  (current)" : "");
    if (e.manifest && e.manifest->shared_shards > 0) {
      std::printf("  shares %lld of %lld shards (updated from run_id=%s)", static_cast<long long>(e.manifest->shared_shards),
                  static_cast<long long>(e.manifest->num_dbs), DisplayText(e.manifest->base_run_id).c_str());
    } else if (!e.manifest_error.empty()) {
      std::printf("  (manifest unreadable)");
    }
    std::printf("\n");
  }
}

int RunHistory(const HistoryArgs& a) {
  if (a.limit < 1) return ReportUsageError("history", fmt::format("--limit must be >= 1 (got {})", a.limit));
  auto store = OpenStore(a.store, a.store_options);
  if (!store.ok()) return ReportError("history", store.status());
  auto manifests = OpenCliManifestStore(a.manifest_store);
  if (!manifests.ok()) return ReportError("history", manifests.status());
  // The listing alone (one read per manifest with --shards, to say which shards each shares).
  const HistoryOptions options{.limit = a.limit, .read_manifests = a.shards};
  auto entries = *manifests ? ListSnapshots(**manifests, options) : ListSnapshots(**store, options);
  if (!entries.ok()) return ReportError("history", entries.status());
  PrintHistory(*entries, a.json);
  return kExitOk;
}

// ---- rollback --------------------------------------------------------------------------------

int RunRollback(const RollbackArgs& a) {
  auto store = OpenStore(a.store, a.store_options);
  if (!store.ok()) return ReportError("rollback", store.status());
  auto manifests = OpenCliManifestStore(a.manifest_store);
  if (!manifests.ok()) return ReportError("rollback", manifests.status());
  const RollbackTarget target{a.run_id, a.ref, a.offset};
  auto done = *manifests ? RollbackSnapshot(**store, **manifests, target) : RollbackSnapshot(**store, target);
  if (!done.ok()) return ReportError("rollback", done.status());
  if (a.json) {
    PrintJson({{"manifest_ref", done->ref}, {"run_id", done->run_id}, {"already_current", done->already_current}});
  } else if (done->already_current) {
    std::printf("already current: %s (_CURRENT unchanged: %s)\n", DisplayText(done->run_id).c_str(),
                DisplayText(done->ref).c_str());
  } else {
    std::printf("Rolled back _CURRENT to: %s\n", DisplayText(done->ref).c_str());
  }
  return kExitOk;
}

// ---- cleanup ---------------------------------------------------------------------------------

// "7d" or "24h": a whole, non-negative number of days or hours.
Result<std::chrono::seconds> ParseAge(const std::string& text) {
  const Status bad = Status::InvalidArgument(fmt::format(
      "--older-than '{}' must be a whole number of days or hours, like 7d or 24h", text));
  if (text.size() < 2) return bad;
  const char unit = text.back();
  if (unit != 'd' && unit != 'h') return bad;
  const char* digits_end = text.data() + text.size() - 1;
  int64_t count = 0;
  const auto [end, ec] = std::from_chars(text.data(), digits_end, count);
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument(fmt::format("--older-than '{}' is too large", text));
  }
  if (ec != std::errc() || end != digits_end || count < 0) return bad;
  const int64_t unit_seconds = unit == 'd' ? 86400 : 3600;
  if (count > kMaxAgeSeconds / unit_seconds) {
    return Status::InvalidArgument(
        fmt::format("--older-than '{}' is too large (at most 100000d)", text));
  }
  return std::chrono::seconds(count * unit_seconds);
}

Result<CleanupOptions> MakeCleanupOptions(const CleanupArgs& a) {
  RETURN_IF_ERROR(ValidateLayout(a.shard_prefix, "db={db_id:05d}", a.run_registry_prefix,
                                 {.shard_prefix = "--shard-prefix", .run_registry_prefix = "--run-registry-prefix"}));
  CleanupOptions options;
  options.dry_run = a.dry_run;
  options.shard_prefix = a.shard_prefix;
  options.run_registry_prefix = a.run_registry_prefix;
  if (a.keep_last) {
    if (*a.keep_last < 1) {
      return Status::InvalidArgument(
          fmt::format("--keep-last must be >= 1 (got {})", *a.keep_last));
    }
    options.keep_last = a.keep_last;
  }
  if (a.older_than) {
    Result<std::chrono::seconds> age = ParseAge(*a.older_than);
    if (!age.ok()) return age.status();
    options.older_than = *age;
  }
  return options;
}

std::string JoinRuns(const std::vector<std::string>& runs) {
  std::string out;
  for (const std::string& run : runs) out += (out.empty() ? "" : ", ") + DisplayText(run);
  return out;
}

void PrintCleanup(const CleanupReport& r, bool dry_run, bool json, bool raw_bytes) {
  if (json) {
    PrintJson({{"dry_run", dry_run},       {"removed_runs", r.removed_runs},
               {"kept_runs", r.kept_runs}, {"objects", r.objects},
               {"bytes", r.bytes},         {"deleted_keys", r.deleted_keys},
               {"leftover_keys", r.leftover_keys}});
    return;
  }
  std::printf("%s %lld objects (%s) and %s %zu run(s)%s%s\n",
              dry_run ? "would delete" : "deleted", static_cast<long long>(r.objects),
              SizeText(r.bytes, raw_bytes).c_str(), dry_run ? "remove" : "removed",
              r.removed_runs.size(), r.removed_runs.empty() ? "" : ": ",
              JoinRuns(r.removed_runs).c_str());
  std::printf("kept %zu run(s)%s%s\n", r.kept_runs.size(), r.kept_runs.empty() ? "" : ": ",
              JoinRuns(r.kept_runs).c_str());
  std::printf("%s %zu leftover(s) of killed processes (stale temp files and markers)\n",
              dry_run ? "would remove" : "removed", r.leftover_keys.size());
}

int RunCleanup(const CleanupArgs& a) {
  // The options come from the command line alone: a bad one is a usage error.
  auto options = MakeCleanupOptions(a);
  if (!options.ok()) return ReportUsageError("cleanup", options.status().message());
  auto store = OpenStore(a.store, a.store_options);
  if (!store.ok()) return ReportError("cleanup", store.status());
  auto manifests = OpenCliManifestStore(a.manifest_store);
  if (!manifests.ok()) return ReportError("cleanup", manifests.status());
  auto report = *manifests ? Cleanup(**store, **manifests, *options) : Cleanup(**store, *options);
  if (!report.ok()) return ReportError("cleanup", report.status());
  PrintCleanup(*report, a.dry_run, a.json, a.raw_bytes);
  return kExitOk;
}

// ---- registration ----------------------------------------------------------------------------

void RegisterHistory(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<HistoryArgs>();
  CLI::App* cmd = app.add_subcommand("history", "List published manifests, newest first");
  AddStoreOption(cmd, args->store, args->store_options);
  AddManifestStoreOption(cmd, args->manifest_store);
  cmd->add_option("--limit", args->limit, "Manifests shown (default 10)");
  cmd->add_flag("--shards", args->shards,
                "Read each manifest and mark the shards it shares with earlier snapshots (incremental updates)");
  cmd->add_flag("--json", args->json, "Print the result as one JSON object");
  cmd->callback([args, &exit_code] { exit_code = RunHistory(*args); });
}

void RegisterRollback(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<RollbackArgs>();
  CLI::App* cmd = app.add_subcommand("rollback", "Point _CURRENT at an earlier manifest");
  AddStoreOption(cmd, args->store, args->store_options);
  AddManifestStoreOption(cmd, args->manifest_store);
  cmd->add_option("--run-id", args->run_id, "The newest manifest of this run");
  cmd->add_option("--ref", args->ref, "A manifest URL or key (manifests/<dir>/manifest)");
  cmd->add_option("--offset", args->offset, "Position in history: 0 = newest");
  cmd->add_flag("--json", args->json, "Print the result as one JSON object");
  cmd->callback([args, &exit_code] {
    const int given = int{args->run_id.has_value()} + int{args->ref.has_value()} +
                      int{args->offset.has_value()};
    // A usage error: main prints it with the help hint and exits 2.
    if (given != 1) {
      throw CLI::ValidationError("Exactly one of --ref, --run-id, or --offset is required");
    }
    exit_code = RunRollback(*args);
  });
}

void RegisterCleanup(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CleanupArgs>();
  CLI::App* cmd = app.add_subcommand(
      "cleanup", "Delete shard data of runs no kept manifest references, and stale attempts");
  AddStoreOption(cmd, args->store, args->store_options);
  AddManifestStoreOption(cmd, args->manifest_store);
  cmd->add_flag("--dry-run", args->dry_run, "Report what would be deleted; delete nothing");
  cmd->add_option("--keep-last", args->keep_last, "Keep the runs of the newest N manifests");
  cmd->add_option("--older-than", args->older_than,
                  "Keep the runs of manifests younger than this (7d, 24h)");
  cmd->add_option("--shard-prefix", args->shard_prefix,
                  "The builds' --shard-prefix: only runs under it are cleaned (default: shards)");
  cmd->add_option("--run-registry-prefix", args->run_registry_prefix,
                  "The builds' --run-registry-prefix, where their run records are (default: runs)");
  cmd->add_flag("--json", args->json, "Print the result as one JSON object");
  AddBytesFlag(cmd, args->raw_bytes);
  cmd->callback([args, &exit_code] { exit_code = RunCleanup(*args); });
}

}  // namespace

void RegisterHistoryCommands(CLI::App& app, int& exit_code) {
  RegisterHistory(app, exit_code);
  RegisterRollback(app, exit_code);
  RegisterCleanup(app, exit_code);
}

}  // namespace shardvec::cli
