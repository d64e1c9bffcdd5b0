// Crash safety: the writer is stopped at every publish step (support/fault_injection_store.h, a store
// wrapper), by an error inside the process and by SIGKILL of a `shardvec build` child (the test
// build's CLI), after snapshot A is published and while B is being written. Afterwards a fresh reader
// and a second process answer from exactly A or exactly B, cleanup removes what the dead run left that
// no manifest names, and the next write succeeds.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <signal.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "format/current_pointer.h"
#include "format/keys.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "support/fault_injection_store.h"
#include "support/publish_harness.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"
#include "write/run_registry.h"
#include "snapshot/history.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::FaultHook;
using testing::kFaultAfterCurrentSwap;
using testing::kFaultAfterManifestPut;
using testing::kFaultAfterRoutingArtifacts;
using testing::kFaultAfterShardUpload;
using testing::kFaultDuringCurrentSwap;
using testing::ShellQuote;
using testing::SnapshotSpec;

// One fault: where, at which pass, and what must be true of the store afterwards.
struct FaultCase {
  std::string_view point;
  int nth;
  bool manifest_written;  // B's manifest reached history
  bool swapped;           // _CURRENT names B
};

const std::vector<FaultCase>& LocalFaultCases() {
  static const std::vector<FaultCase> cases = {
      {kFaultAfterShardUpload, 1, false, false},  {kFaultAfterShardUpload, 2, false, false},
      {kFaultAfterShardUpload, 3, false, false},  {kFaultAfterRoutingArtifacts, 1, false, false},
      {kFaultAfterManifestPut, 1, true, false},   {kFaultDuringCurrentSwap, 1, true, false},
      {kFaultAfterCurrentSwap, 1, true, true},
  };
  return cases;
}

std::string CaseName(const FaultCase& fc, bool crash) {
  return fmt::format("{}:{} {}", fc.point, fc.nth, crash ? "crash" : "fail");
}

class CrashSafetyTest : public ::testing::Test {
 protected:
  // A store under test: a local folder or an S3 prefix, with what a CLI child needs to reach it. Its
  // store injects the fault the test arms (Arm) in this process.
  struct Target {
    std::string prefix;
    std::shared_ptr<ObjectStore> store;
    std::string cli_env;  // "" for a folder, S3 credentials for S3
  };
  Target LocalTarget(const std::string& name) {
    const std::string prefix = (tmp_ / name).string();
    auto store = OpenStore(prefix);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return {prefix, Injecting(*store), ""};
  }
  Target S3Target(const std::string& name) {
    const std::string prefix = testing::UniqueS3Prefix(name);
    return {prefix, Injecting(testing::OpenS3TestStore(prefix)), testing::S3CliEnv() + " "};
  }
  std::shared_ptr<ObjectStore> Injecting(std::shared_ptr<ObjectStore> store) {
    return std::make_shared<testing::FaultInjectionStore>(std::move(store), [this](std::string_view point) {
      std::shared_ptr<FaultHook> hook;
      {
        std::lock_guard<std::mutex> lock(fault_mu_);
        hook = fault_;
      }
      return hook ? (*hook)(point) : Status::OK();  // unlocked: a hook may use the store itself
    });
  }
  // Every pass of every publish step in this process asks `hook` from now on; nullptr disarms.
  void Arm(FaultHook hook) {
    std::lock_guard<std::mutex> lock(fault_mu_);
    fault_ = hook ? std::make_shared<FaultHook>(std::move(hook)) : nullptr;
  }

  testing::PublishHarness World(const Target& t) {
    // Its own local build root and caches: a killed child leaves its build folder behind.
    return testing::PublishHarness(tmp_ / ("work" + std::to_string(++worlds_)), t.prefix, t.store, t.cli_env);
  }

  // Publishes A, attempts B with the fault, then checks what readers, cleanup and the next write see.
  void RunCase(const Target& target, const FaultCase& fc, bool crash) {
    SCOPED_TRACE(CaseName(fc, crash) + " on " + target.prefix);
    testing::PublishHarness world = World(target);
    ObjectStore& store = *target.store;
    const SnapshotSpec a{"A", testing::RandomMatrix(90, 8, 1), false};
    const SnapshotSpec b{"B", testing::RandomMatrix(90, 8, 2), true};
    const SnapshotSpec c{"C", testing::RandomMatrix(90, 8, 3), false};
    ASSERT_TRUE(world.WriteInProcess(a).ok());
    const std::set<std::string> with_a = world.Keys();
    const std::string current_a = world.CurrentBytes();

    if (crash) {
      auto r = world.WriteInChild(b, fmt::format("SHARDVEC_FAULT_POINT={}:{} SHARDVEC_FAULT_ACTION=crash",
                                                 fc.point, fc.nth));
      ASSERT_EQ(r.exit_code, 128 + SIGKILL) << "the writer was not killed: " << r.err;
    } else {
      Arm(testing::FaultAt(fc.point, fc.nth, /*crash=*/false));
      auto r = world.WriteInProcess(b);
      Arm(nullptr);
      ASSERT_FALSE(r.ok()) << "the fault did not fire";
      EXPECT_EQ(r.status().code(), StatusCode::kInternal);
      EXPECT_THAT(r.status().message(), HasSubstr(fmt::format("fault injected at '{}'", fc.point)));
      if (!fc.manifest_written) {
        // A write that fails before its manifest exists removes what it uploaded (shards, .npy):
        // only its run record is new.
        for (const std::string& key : world.Keys()) {
          if (!with_a.contains(key)) EXPECT_THAT(key, ::testing::StartsWith("runs/")) << "left behind";
        }
      }
    }

    // Readers: exactly A, or exactly B once the pointer moved; a fresh one here and one in a child.
    const SnapshotSpec& expected = fc.swapped ? b : a;
    if (!fc.swapped) EXPECT_EQ(world.CurrentBytes(), current_a) << "_CURRENT changed";
    EXPECT_EQ(world.AnswersInProcess({a, b}), expected.run_id);
    EXPECT_EQ(world.AnswersInChild({a, b}), expected.run_id);
    auto manifests = ListManifests(store, 0);
    ASSERT_TRUE(manifests.ok());
    EXPECT_EQ(manifests->size(), fc.manifest_written ? 2u : 1u);

    const std::set<std::string> after_fault = world.Keys();
    if (crash) {
      // The killed writer's record still says running with a live lease: its objects stay.
      auto report = Cleanup(store, {});
      ASSERT_TRUE(report.ok()) << report.status().ToString();
      EXPECT_THAT(report->removed_runs, ::testing::Not(::testing::Contains("B")));
      EXPECT_EQ(world.Keys(), after_fault);
    }
    CleanupOptions expired;
    expired.now = NowUtc() + kRunLease + std::chrono::seconds(1);
    auto report = Cleanup(store, expired);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    const std::set<std::string> after_cleanup = world.Keys();
    if (fc.manifest_written) {
      EXPECT_EQ(after_cleanup, after_fault) << "B's manifest names every object B wrote";
      EXPECT_TRUE(world.ManifestComplete(b.run_id));
    } else {
      // Everything B wrote is gone except its run record (kept for history, like manifests).
      std::set<std::string> expected_keys = with_a;
      for (const std::string& key : after_fault) {
        if (key.rfind("runs/", 0) == 0 && key.find("_run_id=B_") != std::string::npos) expected_keys.insert(key);
      }
      EXPECT_EQ(after_cleanup, expected_keys);
      if (after_fault.size() > expected_keys.size()) EXPECT_EQ(report->removed_runs, std::vector<std::string>{"B"});
    }

    // The next write succeeds and becomes current; a folder holds no staged leftovers after it.
    auto next = world.WriteInProcess(c);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(world.AnswersInProcess({a, b, c}), "C");
    if (target.cli_env.empty()) EXPECT_THAT(world.HiddenFiles(), ::testing::IsEmpty());
  }

  testing::TempDir tmp_;
  int worlds_ = 0;
  std::mutex fault_mu_;
  std::shared_ptr<FaultHook> fault_;
};

TEST_F(CrashSafetyTest, LocalStoreEveryPublishStepFailedInProcess) {
  int i = 0;
  for (const FaultCase& fc : LocalFaultCases()) RunCase(LocalTarget("fail" + std::to_string(i++)), fc, false);
}

TEST_F(CrashSafetyTest, LocalStoreEveryPublishStepKilledInAChildProcess) {
  int i = 0;
  for (const FaultCase& fc : LocalFaultCases()) RunCase(LocalTarget("crash" + std::to_string(i++)), fc, true);
}

class S3CrashSafetyTest : public CrashSafetyTest {};

// The fault points of the publish itself, where S3's conditional writes do the work.
TEST_F(S3CrashSafetyTest, ManifestAndSwapStepsFailedAndKilled) {
  const std::vector<FaultCase> cases = {{kFaultAfterManifestPut, 1, true, false},
                                        {kFaultDuringCurrentSwap, 1, true, false},
                                        {kFaultAfterCurrentSwap, 1, true, true},
                                        {kFaultAfterShardUpload, 2, false, false}};
  for (const FaultCase& fc : cases) {
    for (bool crash : {false, true}) RunCase(S3Target("crash-safety"), fc, crash);
  }
}

// Leases (docs/publish-protocol.md): a run that is still writing (record running, lease live, shards uploaded, no
// manifest yet) keeps its shards through cleanup; once its lease expires they go.
TEST_F(CrashSafetyTest, CleanupNeverRemovesTheShardsOfARunStillWritingWithinItsLease) {
  const Target target = LocalTarget("lease");
  testing::PublishHarness world = World(target);
  ASSERT_TRUE(world.WriteInProcess({"A", testing::RandomMatrix(90, 8, 1), false}).ok());
  const SnapshotSpec b{"B", testing::RandomMatrix(90, 8, 2), true};

  // Paused after B's second shard upload, cleanup runs from the writer's own thread.
  std::vector<std::string> in_flight;
  Result<CleanupReport> during = Status::Internal("cleanup did not run");
  Arm([&, passes = 0](std::string_view name) mutable -> Status {
    if (name != kFaultAfterShardUpload || ++passes != 2) return Status::OK();
    for (const std::string& key : world.Keys()) {
      if (key.rfind("shards/run_id=B/", 0) == 0 && key.ends_with("/shard.db")) in_flight.push_back(key);
    }
    during = Cleanup(*target.store, {});
    return Status::OK();
  });
  auto written = world.WriteInProcess(b);
  Arm(nullptr);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  ASSERT_TRUE(during.ok()) << during.status().ToString();
  EXPECT_EQ(in_flight.size(), 2u);
  EXPECT_THAT(during->removed_runs, ::testing::IsEmpty());
  EXPECT_THAT(during->deleted_keys, ::testing::IsEmpty());
  EXPECT_TRUE(world.ManifestComplete("B")) << "cleanup deleted shards of the run that was writing";
  EXPECT_EQ(world.AnswersInProcess({b}), "B");

  // The same state left by a killed writer: kept while its lease runs, removed once it has expired.
  auto killed = world.WriteInChild({"K", testing::RandomMatrix(90, 8, 4), false},
                                   "SHARDVEC_FAULT_POINT=after_shard_upload:2 SHARDVEC_FAULT_ACTION=crash");
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  auto record = world.RunRecordOf("K");
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(record->status, "running");
  const auto started = ParseTimestamp(record->started_at);
  const auto lease = ParseTimestamp(record->lease_expires_at);
  ASSERT_TRUE(started && lease);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(*lease - *started), kRunLease);

  auto K_shards = [&] {
    int n = 0;
    for (const std::string& key : world.Keys()) n += key.rfind("shards/run_id=K/", 0) == 0 && key.ends_with("/shard.db");
    return n;
  };
  ASSERT_EQ(K_shards(), 2);
  CleanupOptions within;
  within.now = *lease - std::chrono::seconds(1);
  ASSERT_TRUE(Cleanup(*target.store, within).ok());
  EXPECT_EQ(K_shards(), 2);
  CleanupOptions past;
  past.now = *lease + std::chrono::seconds(1);
  auto report = Cleanup(*target.store, past);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed_runs, std::vector<std::string>{"K"});
  EXPECT_EQ(K_shards(), 0);
  EXPECT_TRUE(world.ManifestComplete("A"));
  EXPECT_TRUE(world.ManifestComplete("B"));
}

// Four `shardvec build` processes publish to one prefix at once while this process watches
// _CURRENT: every pointer it reads parses and names a complete manifest whose shards exist and
// verify, losers fail with PublishConflictError (all win under --last-writer-wins), and the pointer
// ends on a winner.
void CheckConcurrentWriters(testing::PublishHarness& world, bool last_writer_wins, int* conflicts) {
  SCOPED_TRACE(last_writer_wins ? "last-writer-wins" : "reject-if-newer");
  constexpr int kWriters = 4;
  std::vector<SnapshotSpec> specs;
  for (int w = 0; w < kWriters; ++w) {
    specs.push_back({fmt::format("W{}{}", last_writer_wins ? "L" : "R", w),
                     testing::RandomMatrix(3000, 8, 100 + static_cast<uint64_t>(w)), w % 2 == 1});
  }
  testing::PointerWatch watch(world);
  const auto results = world.WriteInChildrenAtOnce(specs, last_writer_wins ? "--last-writer-wins" : "");
  const std::vector<std::string> seen = watch.Stop();

  EXPECT_THAT(watch.problems(), ::testing::IsEmpty());
  EXPECT_GT(watch.reads(), 0);
  std::set<std::string> winners;
  for (int w = 0; w < kWriters; ++w) {
    if (results[w].exit_code == 0) {
      winners.insert(specs[w].run_id);
    } else {
      EXPECT_FALSE(last_writer_wins) << specs[w].run_id << ": " << results[w].err;
      EXPECT_EQ(results[w].exit_code, 1) << results[w].err;
      EXPECT_THAT(results[w].err, HasSubstr("PublishConflictError")) << specs[w].run_id;
      ++*conflicts;
    }
  }
  EXPECT_FALSE(winners.empty());
  if (last_writer_wins) EXPECT_EQ(winners.size(), static_cast<size_t>(kWriters));
  for (const std::string& run_id : seen) EXPECT_TRUE(winners.count(run_id)) << run_id << " was current but lost";
  // Every run's manifest reached history whole, winner or not.
  for (const SnapshotSpec& spec : specs) EXPECT_TRUE(world.ManifestComplete(spec.run_id)) << spec.run_id;
  const std::string final_run = world.AnswersInProcess(specs);
  EXPECT_TRUE(winners.count(final_run)) << final_run;
  if (!last_writer_wins) {
    // The pointer only moves forward: it ends on the newest manifest of any winner.
    auto manifests = ListManifests(world.store(), 0);
    ASSERT_TRUE(manifests.ok());
    auto newest = std::find_if(manifests->begin(), manifests->end(),
                               [&](const ManifestEntry& e) { return winners.count(e.run_id) > 0; });
    ASSERT_NE(newest, manifests->end());
    EXPECT_EQ(final_run, newest->run_id);
  }
  EXPECT_EQ(world.AnswersInChild(specs), final_run);
}

TEST_F(CrashSafetyTest, FourWriterProcessesAtOnceOnALocalFolder) {
  int conflicts = 0;
  for (bool lww : {false, true}) {
    const Target target = LocalTarget(lww ? "writers-lww" : "writers");
    testing::PublishHarness world = World(target);
    CheckConcurrentWriters(world, lww, &conflicts);
  }
  RecordProperty("conflicts", conflicts);
}

TEST_F(S3CrashSafetyTest, FourWriterProcessesAtOnce) {
  int conflicts = 0;
  for (bool lww : {false, true}) {
    const Target target = S3Target(lww ? "writers-lww" : "writers");
    testing::PublishHarness world = World(target);
    CheckConcurrentWriters(world, lww, &conflicts);
  }
  RecordProperty("conflicts", conflicts);
}

}  // namespace
}  // namespace shardvec
