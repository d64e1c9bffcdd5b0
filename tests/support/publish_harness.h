// Publishing identifiable snapshots to one store prefix, in this process or in `shardvec build`
// children (optionally with a fault armed), and checking what a reader answers, what the store
// lists and whether a published manifest is complete. Shared by the crash-safety and concurrency tests.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "format/run_record.h"
#include "shardvec/object_store.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec::testing {

// One snapshot: its run id names it, and its answers identify it (its own data; ids row*3, or
// "doc-<row>" with string_ids).
struct SnapshotSpec {
  std::string run_id;
  Matrix data;
  bool string_ids = false;
};

class PublishHarness {
 public:
  // `cli_env` prefixes every child command line (S3 credentials), "" for a folder.
  PublishHarness(std::filesystem::path work_dir, std::string prefix, std::shared_ptr<ObjectStore> store,
                 std::string cli_env);

  // LSH, 3 shards, l2, one shard built at a time (so shard uploads pass fault points in turn).
  Result<BuildResult> WriteInProcess(const SnapshotSpec& spec);
  // The same build by `shardvec build`; `env` ("NAME=value …") is set for the child only. The child is
  // the test build of the CLI (shardvec_fault_cli), which writes through a FaultInjectionStore armed
  // by SHARDVEC_FAULT_POINT=<point>[:<nth>] and SHARDVEC_FAULT_ACTION=fail|crash in `env`.
  CommandResult WriteInChild(const SnapshotSpec& spec, const std::string& env = "",
                             const std::string& extra_flags = "");
  // All of them started at once, by the shipped CLI; each one's exit code and output, in order.
  std::vector<CommandResult> WriteInChildrenAtOnce(const std::vector<SnapshotSpec>& specs,
                                                   const std::string& extra_flags);

  // The run_id of the candidate whose exact top-5 answers (every shard searched) a fresh reader
  // gives for a few queries, or a description of what it answered instead.
  std::string AnswersInProcess(const std::vector<SnapshotSpec>& candidates);
  // The same through `shardvec search` in a child process.
  std::string AnswersInChild(const std::vector<SnapshotSpec>& candidates);

  // Whether the newest manifest of `run_id` parses and every shard it names exists, has its digest and
  // the row counts add up, and its routing artifact exists.
  ::testing::AssertionResult ManifestComplete(const std::string& run_id);
  // Whether the manifest `manifest_ref` names is complete (as above).
  ::testing::AssertionResult ManifestRefComplete(const std::string& manifest_ref);
  Result<RunRecord> RunRecordOf(const std::string& run_id);

  std::set<std::string> Keys();      // every object the store lists
  std::string CurrentBytes();        // _CURRENT, or "<error>"
  std::vector<std::string> HiddenFiles();  // a folder's dot-files (staged writes), relative paths

  ObjectStore& store() { return *store_; }
  const std::string& prefix() const { return prefix_; }
  const Matrix& queries() const { return queries_; }

 private:
  std::string BuildCommand(const SnapshotSpec& spec, const std::string& cli, const std::string& env,
                           const std::string& extra_flags);
  std::string MatchAnswers(const std::vector<SnapshotSpec>& candidates,
                           const std::vector<std::vector<std::string>>& answers);

  std::filesystem::path work_dir_;
  std::string prefix_;
  std::shared_ptr<ObjectStore> store_;
  std::string cli_env_;
  Matrix queries_;
  int children_ = 0;
};

// Reads _CURRENT in a loop on its own thread until Stop(): every pointer read must parse and name a
// complete manifest (checked once per manifest). Stop() returns the run ids seen, in order.
class PointerWatch {
 public:
  explicit PointerWatch(PublishHarness& harness);
  ~PointerWatch();
  std::vector<std::string> Stop();
  std::vector<std::string> problems() const;
  int reads() const { return reads_.load(); }

 private:
  void Loop();
  PublishHarness& harness_;
  std::atomic<bool> stop_{false};
  std::atomic<int> reads_{0};
  mutable std::mutex mu_;
  std::vector<std::string> problems_;
  std::vector<std::string> seen_runs_;
  std::set<std::string> checked_refs_;
  std::thread thread_;
};

// 5-value answer ids as text: ints as decimal, strings as themselves.
std::string IdText(const RecordId& id);

}  // namespace shardvec::testing
