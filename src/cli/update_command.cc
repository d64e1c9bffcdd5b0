// shardvec update: upsert records (read as `build` reads them) and delete ids in the current (or a
// given) snapshot, rebuilding only the shards that change, and publish the result.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli_common.h"
#include "cli/commands.h"
#include "cli/record_input.h"
#include "shardvec/input_files.h"
#include "shardvec/limits.h"
#include "shardvec/status_macros.h"
#include "shardvec/update.h"

namespace shardvec::cli {
namespace {

struct UpdateArgs {
  std::string store;
  StoreOptions store_options;
  std::string manifest_store;
  RecordInputFlags upsert{.input_flag = "--upsert"};
  std::string delete_file;
  std::string base = "current";
  bool strict = false;
  bool compact = false;
  bool rebase = false;
  bool retrain = false;
  std::optional<int64_t> sublists_per_shard;
  std::string run_id;
  std::string local_root;
  int64_t parallelism = 0;
  bool last_writer_wins = false;
  bool json = false;
  bool quiet = false;
};

nlohmann::json ReportJson(const UpdateResult& r) {
  const UpdateReport& u = r.report;
  nlohmann::json rebuilt = nlohmann::json::array();
  for (const UpdateShardChange& c : u.rebuilt) {
    const bool edited = std::binary_search(u.edited_in_place.begin(), u.edited_in_place.end(), c.db_id);
    rebuilt.push_back({{"db_id", c.db_id}, {"base_rows", c.base_rows}, {"rows", c.rows}, {"in_place", edited}});
  }
  auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); };
  return {{"run_id", r.build.run_id},
          {"manifest_ref", r.build.manifest_ref},
          {"base_run_id", u.base_run_id},
          {"total_vectors", r.build.total_vectors},
          {"upserted", u.upserted},
          {"replaced", u.replaced},
          {"deleted", u.deleted},
          {"missing_deletes", u.missing_deletes},
          {"used_id_index", u.used_id_index},
          {"rebuilt", std::move(rebuilt)},
          {"rebased", u.rebased},
          {"shared_shards", u.shared_shards},
          {"base_imbalance", u.base_imbalance},
          {"imbalance", u.imbalance},
          {"upsert_centroid_distance", optional(u.upsert_centroid_distance)},
          {"base_centroid_distance", optional(u.base_centroid_distance)},
          {"rebuild_advised", u.rebuild_advised},
          {"advice", u.advice},
          {"elapsed_ms", r.build.elapsed_ms}};
}

void PrintText(const UpdateResult& r) {
  const UpdateReport& u = r.report;
  std::printf("published run %s over base %s: %lld vectors; %lld upserted (%lld replaced), %lld deleted",
              r.build.run_id.c_str(), u.base_run_id.c_str(), static_cast<long long>(r.build.total_vectors),
              static_cast<long long>(u.upserted), static_cast<long long>(u.replaced), static_cast<long long>(u.deleted));
  if (u.missing_deletes > 0) std::printf(", %lld ids to delete not found", static_cast<long long>(u.missing_deletes));
  if (u.rebased > 0) std::printf(" (redone %lld time(s) on a newer current snapshot)", static_cast<long long>(u.rebased));
  std::printf("\nshards: %zu rebuilt (%zu of them edited in place), %lld shared with the base%s\n", u.rebuilt.size(),
              u.edited_in_place.size(), static_cast<long long>(u.shared_shards),
              u.used_id_index ? "" : " (the base had no id index)");
  for (const UpdateShardChange& c : u.rebuilt) {
    const bool edited = std::binary_search(u.edited_in_place.begin(), u.edited_in_place.end(), c.db_id);
    std::printf("  db %lld: %lld -> %lld rows%s\n", static_cast<long long>(c.db_id), static_cast<long long>(c.base_rows),
                static_cast<long long>(c.rows), edited ? " (edited in place)" : "");
  }
  std::printf("imbalance (largest shard / mean): %.2f (base %.2f)\n", u.imbalance, u.base_imbalance);
  if (u.upsert_centroid_distance && u.base_centroid_distance) {
    std::printf("mean distance to the centroid: upserts %.4g, rebuilt shards' base rows %.4g\n",
                *u.upsert_centroid_distance, *u.base_centroid_distance);
  }
  if (u.rebuild_advised) std::printf("advice: %s\n", u.advice.c_str());
  std::printf("manifest: %s\n", r.build.manifest_ref.c_str());
}

int RunUpdate(const UpdateArgs& a, const StoreWrapper& wrap_store) {
  for (const auto& [flag, value] : {std::pair<std::string_view, const std::string*>{"--ids", &a.upsert.ids_file},
                                    {"--payloads", &a.upsert.payloads_file},
                                    {"--shard-ids", &a.upsert.shard_ids_file},
                                    {"--routing-context-file", &a.upsert.routing_context_file}}) {
    if (!value->empty() && a.upsert.input.empty()) {
      return ReportUsageError("update", fmt::format("{} describes the --upsert rows; give --upsert FILE too", flag));
    }
  }
  if (a.retrain && a.compact) {
    return ReportUsageError("update", "--compact cannot take effect with --retrain: a retrain rebuilds every shard whole");
  }
  if (a.upsert.input.empty() && a.delete_file.empty()) {
    return ReportUsageError("update", "nothing to do: give --upsert FILE, --delete IDS_FILE, or both");
  }
  auto manifest_store = OpenCliManifestStore(a.manifest_store);
  if (!manifest_store.ok()) return ReportError("update", manifest_store.status());
  std::shared_ptr<ObjectStore> store;
  {
    auto opened = OpenStore(a.store, a.store_options);
    if (!opened.ok()) return ReportError("update", opened.status());
    store = wrap_store ? wrap_store(std::move(opened).value()) : std::move(opened).value();
  }
  auto config = SnapshotWriteConfig(a.store, a.store_options, a.base, *manifest_store, store);
  if (!config.ok()) return ReportError("update", config.status());
  if (!a.run_id.empty()) config->run_id = a.run_id;
  if (a.sublists_per_shard) config->sharding.sublists_per_shard = *a.sublists_per_shard;
  config->local_root = a.local_root;
  config->max_parallel_shards = a.parallelism;
  config->publish_policy = a.last_writer_wins ? PublishPolicy::kLastWriterWins : PublishPolicy::kRejectIfNewer;
  config->metrics = CliMetrics();
  std::optional<InputBatch> upserts;
  if (!a.upsert.input.empty()) {
    auto data = LoadRecordInput(a.upsert);
    if (!data.ok()) return ReportError("update", data.status());
    if (!data->ids) {
      return ReportError("update", Status::InvalidArgument(fmt::format(
                                       "--upsert '{}' has no ids: give --ids F (or 'id' fields in .jsonl records); an "
                                       "update replaces rows by id", a.upsert.input)));
    }
    upserts.emplace(std::move(data).value());
  }
  std::vector<RecordId> deletes;
  if (!a.delete_file.empty()) {
    auto ids = LoadIdsFile(a.delete_file, "--delete");
    if (!ids.ok()) return ReportError("update", ids.status());
    deletes = std::move(ids).value();
  }
  ProgressLine progress(!a.quiet && !a.json && StderrIsTty());
  config->on_progress = [&progress](const WriteProgress& p) {
    progress.Update(p.phase, p.done, p.total);
    // Published: the line goes before the report's warnings (rebuild advice) are printed.
    if (p.phase == "publish" && p.done == p.total) progress.Finish();
  };
  auto result = UpdateSharded(*config, upserts ? &upserts->batch : nullptr, deletes,
                              UpdateOptions{.base = a.base, .strict = a.strict, .compact = a.compact, .rebase = a.rebase,
                                            .retrain = a.retrain},
                              store);
  progress.Finish();
  if (!result.ok()) return ReportError("update", result.status());
  if (a.json) {
    PrintJson(ReportJson(*result));
  } else {
    PrintText(*result);
  }
  return kExitOk;
}

}  // namespace

void RegisterUpdateCommand(CLI::App& app, int& exit_code, const StoreWrapper& wrap_store) {
  auto args = std::make_shared<UpdateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "update", "Upsert and delete records by id, rebuilding only the shards that change, and publish");
  AddStoreOption(cmd, args->store, args->store_options);
  AddManifestStoreOption(cmd, args->manifest_store);
  cmd->add_option("--upsert", args->upsert.input,
                  "Records to upsert, in any form `build --input` takes (with ids: --ids or .jsonl 'id' fields)");
  cmd->add_option("--ids", args->upsert.ids_file, "The --upsert rows' ids: .npy integers, or one id per line");
  cmd->add_option("--payloads", args->upsert.payloads_file, "The --upsert rows' payloads: .jsonl, one JSON object (or null) per line");
  cmd->add_option("--shard-ids", args->upsert.shard_ids_file, "EXPLICIT snapshots: the --upsert rows' shard ids");
  cmd->add_option("--routing-context-file", args->upsert.routing_context_file,
                  "CEL snapshots: the --upsert rows' routing contexts (.jsonl)");
  cmd->add_option("--delete", args->delete_file, "Ids to delete, one per line (or .npy / .jsonl as --ids)");
  cmd->add_option("--base", args->base, "The snapshot updated: current (default) or a run id; it must be current");
  cmd->add_flag("--strict", args->strict, "Fail when an id to delete is not in the base (default: count it)");
  cmd->add_flag("--compact", args->compact,
                "Rebuild each touched shard whole (sub-lists retrained, no holes) instead of editing it in place");
  cmd->add_flag("--rebase", args->rebase,
                "If the base is not (or stops being) the current snapshot, redo the update on the current one (up to 3 "
                "times) instead of failing with a publish conflict");
  cmd->add_flag("--retrain", args->retrain,
                "CLUSTER: build the whole snapshot anew from the base's rows and the changes, the centroids trained anew "
                "(what the report's rebuild advice asks for)");
  cmd->add_option("--sublists-per-shard", args->sublists_per_shard,
                  "Sub-lists inside each rebuilt shard: 0 = auto (about sqrt(rows)), 1 = none, n = at most n (default: "
                  "what the base snapshot was built with)");
  cmd->add_option("--run-id", args->run_id, "Run id of the new snapshot (default: a random uuid hex)");
  cmd->add_option("--local-root", args->local_root, "Local build folder, private to this user (default: ~/.cache/shardvec/build)");
  cmd->add_option("--parallelism", args->parallelism, "Shards rebuilt at once, 1..1024 (default: one per usable CPU)")
      ->check(CLI::Range(int64_t{1}, kMaxPoolThreads));
  cmd->add_flag("--last-writer-wins", args->last_writer_wins,
                "Publish even if the base is not (or no longer) the current snapshot");
  cmd->add_flag("--json", args->json, "Print the result as one JSON object");
  cmd->add_flag("--quiet", args->quiet, "No progress line (there is none when standard error is not a terminal, or with --json)");
  cmd->callback([args, &exit_code, wrap_store] { exit_code = RunUpdate(*args, wrap_store); });
}

}  // namespace shardvec::cli
