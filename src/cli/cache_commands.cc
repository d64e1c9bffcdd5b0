// shardvec cache ls / cache prune: what a reader's shard cache folder holds, and pruning it.
#include <fmt/format.h>

#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "shardvec/shard_cache_admin.h"

namespace shardvec::cli {
namespace {

using nlohmann::json;

struct CacheArgs {
  std::string cache_dir;
  std::optional<int64_t> max_bytes;
  bool all = false;
  bool json = false;
  bool raw_bytes = false;  // --bytes
};

int RunCacheLs(const CacheArgs& a) {
  Result<std::vector<CachedShardFolder>> folders = ListShardCache(a.cache_dir);
  if (!folders.ok()) return ReportError("cache ls", folders.status());
  int64_t total = 0;
  for (const CachedShardFolder& f : *folders) {
    total += f.bytes;
    if (a.json) {
      PrintJson(json{{"name", f.name}, {"bytes", f.bytes}, {"last_used_unix_ns", f.last_used_unix_ns},
                     {"in_use", f.in_use}});
    } else {
      std::printf("%s\t%s\t%s\n", DisplayText(f.name).c_str(), SizeText(f.bytes, a.raw_bytes).c_str(),
                  f.in_use ? "in use" : "unused");
    }
  }
  if (!a.json) std::printf("%zu shard folder(s), %s\n", folders->size(), SizeText(total, a.raw_bytes).c_str());
  return kExitOk;
}

int RunCachePrune(const CacheArgs& a) {
  Result<ShardCachePruneResult> pruned = PruneShardCache(a.cache_dir, a.all ? 0 : *a.max_bytes);
  if (!pruned.ok()) return ReportError("cache prune", pruned.status().WithContext(
                                                          a.all ? "--all" : fmt::format("--max-bytes {}", *a.max_bytes)));
  const ShardCachePruneResult& r = *pruned;
  if (a.json) {
    PrintJson(json{{"removed_folders", r.removed_folders}, {"removed_bytes", r.removed_bytes},
                   {"kept_folders", r.kept_folders}, {"kept_bytes", r.kept_bytes}, {"in_use_bytes", r.in_use_bytes}});
  } else {
    std::printf("removed %lld shard folder(s), %s; kept %lld, %s (%s in use)\n",
                static_cast<long long>(r.removed_folders), SizeText(r.removed_bytes, a.raw_bytes).c_str(),
                static_cast<long long>(r.kept_folders), SizeText(r.kept_bytes, a.raw_bytes).c_str(),
                SizeText(r.in_use_bytes, a.raw_bytes).c_str());
  }
  return kExitOk;
}

}  // namespace

void RegisterCacheCommands(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<CacheArgs>();
  CLI::App* cache = app.add_subcommand("cache", "List or prune a reader's shard cache folder");
  cache->require_subcommand(1);

  CLI::App* ls = cache->add_subcommand("ls", "List the shard folders of a cache folder, least recently used first");
  ls->add_option("--cache-dir", args->cache_dir, "The shard cache folder (a reader's --cache-dir)")->required();
  ls->add_flag("--json", args->json, "Print one JSON object per shard folder");
  AddBytesFlag(ls, args->raw_bytes);
  ls->callback([args, &exit_code] { exit_code = RunCacheLs(*args); });

  CLI::App* prune = cache->add_subcommand(
      "prune", "Remove unused shard folders, least recently used first (a folder a live reader uses is kept)");
  prune->add_option("--cache-dir", args->cache_dir, "The shard cache folder (a reader's --cache-dir)")->required();
  CLI::Option* max_bytes = prune->add_option("--max-bytes", args->max_bytes, "Prune until the folder holds at most this many bytes")
                               ->check(CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()));
  CLI::Option* all = prune->add_flag("--all", args->all, "Remove every unused shard folder");
  max_bytes->excludes(all);
  prune->add_flag("--json", args->json, "Print the result as JSON");
  AddBytesFlag(prune, args->raw_bytes);
  prune->callback([args, &exit_code, max_bytes, all] {
    if (max_bytes->count() == 0 && all->count() == 0) {
      exit_code = ReportUsageError("cache prune", "give --max-bytes N or --all");
      return;
    }
    exit_code = RunCachePrune(*args);
  });
}

}  // namespace shardvec::cli
