#include "support/publish_harness.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "common/digest.h"
#include "format/current_pointer.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "shardvec/reader.h"
#include "snapshot/publisher.h"
#include "snapshot/history.h"

namespace shardvec::testing {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kNumDbs = 3;
constexpr int64_t kTopK = 5;
constexpr int64_t kQueries = 4;

std::vector<std::string> ExpectedIds(const SnapshotSpec& spec, const float* query) {
  std::vector<std::string> ids;
  for (const auto& [distance, row] : BruteForce(spec.data, query, Metric::kL2, kTopK)) {
    ids.push_back(spec.string_ids ? "doc-" + std::to_string(row) : std::to_string(row * 3));
  }
  return ids;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

}  // namespace

std::string IdText(const RecordId& id) {
  if (const auto* i = std::get_if<int64_t>(&id)) return std::to_string(*i);
  return std::get<std::string>(id);
}

PublishHarness::PublishHarness(fs::path work_dir, std::string prefix, std::shared_ptr<ObjectStore> store,
                               std::string cli_env)
    : work_dir_(std::move(work_dir)),
      prefix_(std::move(prefix)),
      store_(std::move(store)),
      cli_env_(std::move(cli_env)),
      queries_(RandomMatrix(kQueries, 8, 77)) {}

Result<BuildResult> PublishHarness::WriteInProcess(const SnapshotSpec& spec) {
  WriteConfig c;
  c.store = prefix_;
  c.local_root = (work_dir_ / "lr").string();
  c.index.dim = spec.data.cols;
  c.index.metric = Metric::kL2;
  c.sharding.strategy = Strategy::kLsh;
  c.sharding.num_dbs = kNumDbs;
  c.max_parallel_shards = 1;
  c.run_id = spec.run_id;
  // Snapshots tell themselves apart by their ids' type, on purpose: not a schema change to guard.
  c.allow_schema_change = true;
  VectorRecordSource source(MakeRecords(spec.data, spec.string_ids));
  return WriteSharded(c, source, store_);
}

std::string PublishHarness::BuildCommand(const SnapshotSpec& spec, const std::string& cli, const std::string& env,
                                         const std::string& extra_flags) {
  const fs::path in = work_dir_ / ("in-" + spec.run_id);
  fs::create_directories(in);
  WriteNpy(in / "v.npy", spec.data);
  std::string ids;
  for (int64_t row = 0; row < spec.data.rows; ++row) {
    ids += (spec.string_ids ? "doc-" + std::to_string(row) : std::to_string(row * 3)) + "\n";
  }
  WriteText(in / "ids.txt", ids);
  return fmt::format(
      "{}{} {} build --quiet --store {} --local-root {} --input {} --ids {} --metric l2 --strategy lsh "
      "--num-dbs {} --parallelism 1 --allow-schema-change --run-id {} {}",
      cli_env_, env.empty() ? "" : "env " + env, ShellQuote(cli), ShellQuote(prefix_),
      ShellQuote((work_dir_ / "lr").string()), ShellQuote((in / "v.npy").string()),
      ShellQuote((in / "ids.txt").string()), kNumDbs, ShellQuote(spec.run_id), extra_flags);
}

CommandResult PublishHarness::WriteInChild(const SnapshotSpec& spec, const std::string& env,
                                           const std::string& extra_flags) {
  return RunCommand(BuildCommand(spec, SHARDVEC_FAULT_CLI_PATH, env, extra_flags));
}

std::vector<CommandResult> PublishHarness::WriteInChildrenAtOnce(const std::vector<SnapshotSpec>& specs,
                                                                 const std::string& extra_flags) {
  const fs::path dir = work_dir_ / ("children" + std::to_string(++children_));
  fs::create_directories(dir);
  std::string script;
  for (size_t i = 0; i < specs.size(); ++i) script += BuildCommand(specs[i], SHARDVEC_CLI_PATH, "", extra_flags) + "\n";
  // Commands are prepared (inputs written) before any starts, then all start together.
  std::string launch;
  std::istringstream lines(script);
  std::string line;
  for (size_t i = 0; std::getline(lines, line); ++i) {
    const std::string out = ShellQuote((dir / fmt::format("out{}", i)).string());
    const std::string err = ShellQuote((dir / fmt::format("err{}", i)).string());
    const std::string rc = ShellQuote((dir / fmt::format("rc{}", i)).string());
    launch += fmt::format("( {} >{} 2>{}; echo $? >{} ) & ", line, out, err, rc);
  }
  RunCommand("sh -c " + ShellQuote(launch + "wait"));
  std::vector<CommandResult> results(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    results[i].exit_code = std::stoi(ReadText(dir / fmt::format("rc{}", i)));
    results[i].out = ReadText(dir / fmt::format("out{}", i));
    results[i].err = ReadText(dir / fmt::format("err{}", i));
  }
  return results;
}

std::string PublishHarness::MatchAnswers(const std::vector<SnapshotSpec>& candidates,
                                         const std::vector<std::vector<std::string>>& answers) {
  for (const SnapshotSpec& spec : candidates) {
    bool all = answers.size() == static_cast<size_t>(queries_.rows);
    for (int64_t q = 0; all && q < queries_.rows; ++q) all = answers[q] == ExpectedIds(spec, queries_.row(q));
    if (all) return spec.run_id;
  }
  std::string seen;
  for (const auto& a : answers) seen += "[" + Join(a) + "]";
  return "no candidate's answers: " + seen;
}

std::string PublishHarness::AnswersInProcess(const std::vector<SnapshotSpec>& candidates) {
  ReaderOptions o;
  o.store = prefix_;
  o.cache_dir = (work_dir_ / ("cache" + std::to_string(++children_))).string();
  auto reader = ShardedVectorReader::Open(o, store_);
  if (!reader.ok()) return "reader did not open: " + reader.status().ToString();
  SearchOptions all;
  all.shard_ids = std::vector<int64_t>{0, 1, 2};
  std::vector<std::vector<std::string>> answers;
  for (int64_t q = 0; q < queries_.rows; ++q) {
    auto r = (*reader)->Search(std::span<const float>(queries_.row(q), queries_.cols), kTopK, all);
    if (!r.ok()) return "search failed: " + r.status().ToString();
    answers.emplace_back();
    for (const SearchHit& hit : r->results) answers.back().push_back(IdText(hit.id));
  }
  const std::string match = MatchAnswers(candidates, answers);
  if (match != (*reader)->Info().run_id && match.rfind("no candidate", 0) != 0) {
    return "answers of " + match + " from a reader on run " + (*reader)->Info().run_id;
  }
  return match;
}

std::string PublishHarness::AnswersInChild(const std::vector<SnapshotSpec>& candidates) {
  const fs::path q = work_dir_ / "queries.npy";
  WriteNpy(q, queries_);
  auto r = RunCommand(fmt::format("{}{} search --store {} --query-file {} --shard-ids 0,1,2 --top-k {} --json "
                                  "--cache-dir {}",
                                  cli_env_, ShellQuote(SHARDVEC_CLI_PATH), ShellQuote(prefix_),
                                  ShellQuote(q.string()), kTopK,
                                  ShellQuote((work_dir_ / ("cache" + std::to_string(++children_))).string())));
  if (r.exit_code != 0) return fmt::format("shardvec search exited {}: {}", r.exit_code, r.err);
  std::vector<std::vector<std::string>> answers;
  std::istringstream lines(r.out);
  std::string line;
  while (std::getline(lines, line)) {
    auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_discarded()) return "not JSON: " + line;
    answers.emplace_back();
    for (const auto& hit : json["results"]) {
      answers.back().push_back(hit["id"].is_string() ? hit["id"].get<std::string>()
                                                     : std::to_string(hit["id"].get<int64_t>()));
    }
  }
  return MatchAnswers(candidates, answers);
}

::testing::AssertionResult PublishHarness::ManifestRefComplete(const std::string& manifest_ref) {
  auto key = KeyFromUrl(store_->PrefixUrl(), manifest_ref);
  if (!key.ok()) return ::testing::AssertionFailure() << key.status().ToString();
  auto manifest = ReadManifest(*store_, *key, manifest_ref);
  if (!manifest.ok()) return ::testing::AssertionFailure() << manifest.status().ToString();
  const nlohmann::json& digests = manifest->custom["shardvec"]["shard_digests"];
  int64_t rows = 0;
  for (const ManifestShard& shard : manifest->shards) {
    if (!shard.db_url) continue;
    auto dir = KeyFromUrl(store_->PrefixUrl(), *shard.db_url);
    if (!dir.ok()) return ::testing::AssertionFailure() << dir.status().ToString();
    auto bytes = store_->Get(*dir + "/" + std::string(kShardFileName));
    if (!bytes.ok()) return ::testing::AssertionFailure() << manifest_ref << ": " << bytes.status().ToString();
    const std::string want = digests.value(std::to_string(shard.db_id), "");
    if (Xxh3Digest(*bytes) != want) {
      return ::testing::AssertionFailure() << manifest_ref << ": shard " << shard.db_id << " has digest "
                                           << Xxh3Digest(*bytes) << ", the manifest says '" << want << "'";
    }
    rows += shard.row_count;
  }
  const nlohmann::json& vector = manifest->custom["vector"];
  if (rows != vector.value("total_vectors", int64_t{-1})) {
    return ::testing::AssertionFailure() << manifest_ref << ": shards hold " << rows << " rows, total_vectors is "
                                         << vector.dump();
  }
  const std::string artifact = vector.value("hyperplanes_ref", "");
  auto artifact_key = KeyFromUrl(store_->PrefixUrl(), artifact);
  if (!artifact_key.ok() || !store_->Head(*artifact_key).ok()) {
    return ::testing::AssertionFailure() << manifest_ref << ": hyperplanes '" << artifact << "' missing";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult PublishHarness::ManifestComplete(const std::string& run_id) {
  auto entry = FindManifest(*store_, {.run_id = run_id});
  if (!entry.ok()) return ::testing::AssertionFailure() << entry.status().ToString();
  return ManifestRefComplete(entry->ref);
}

Result<RunRecord> PublishHarness::RunRecordOf(const std::string& run_id) {
  auto listed = store_->List("runs/");
  if (!listed.ok()) return listed.status();
  for (const ObjectInfo& object : listed->objects) {
    if (object.key.find("_run_id=" + run_id + "_") == std::string::npos) continue;
    auto bytes = store_->Get(object.key);
    if (!bytes.ok()) return bytes.status();
    return ParseRunRecord(*bytes);
  }
  return Status::NotFound("no run record for run " + run_id);
}

std::set<std::string> PublishHarness::Keys() {
  auto listed = store_->List("");
  EXPECT_TRUE(listed.ok()) << listed.status().ToString();
  std::set<std::string> keys;
  if (listed.ok()) {
    for (const ObjectInfo& object : listed->objects) keys.insert(object.key);
  }
  return keys;
}

std::string PublishHarness::CurrentBytes() {
  auto bytes = store_->Get(kCurrentKey);
  return bytes.ok() ? *bytes : "<" + bytes.status().ToString() + ">";
}

std::vector<std::string> PublishHarness::HiddenFiles() {
  std::vector<std::string> hidden;
  for (const auto& entry : fs::recursive_directory_iterator(prefix_)) {
    if (entry.path().filename().string().front() == '.') {
      hidden.push_back(entry.path().lexically_relative(prefix_).string());
    }
  }
  return hidden;
}

PointerWatch::PointerWatch(PublishHarness& harness) : harness_(harness), thread_([this] { Loop(); }) {}

PointerWatch::~PointerWatch() { Stop(); }

std::vector<std::string> PointerWatch::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  return seen_runs_;
}

std::vector<std::string> PointerWatch::problems() const {
  std::lock_guard<std::mutex> lock(mu_);
  return problems_;
}

void PointerWatch::Loop() {
  while (!stop_.load()) {
    auto bytes = harness_.store().Get(kCurrentKey);
    if (!bytes.ok()) {
      if (bytes.status().code() != StatusCode::kNotFound) {
        std::lock_guard<std::mutex> lock(mu_);
        problems_.push_back("reading _CURRENT: " + bytes.status().ToString());
      }
      continue;
    }
    ++reads_;
    auto pointer = ParseCurrentPointer(*bytes);
    std::lock_guard<std::mutex> lock(mu_);
    if (!pointer.ok()) {
      problems_.push_back("torn _CURRENT: " + *bytes);
      continue;
    }
    if (seen_runs_.empty() || seen_runs_.back() != pointer->run_id) seen_runs_.push_back(pointer->run_id);
    if (!checked_refs_.insert(pointer->manifest_ref).second) continue;
    auto complete = harness_.ManifestRefComplete(pointer->manifest_ref);
    if (!complete) problems_.push_back("_CURRENT names an incomplete manifest: " + std::string(complete.message()));
  }
}

}  // namespace shardvec::testing
