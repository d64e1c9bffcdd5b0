// The public administration API (shardvec/admin.h) on real snapshots, on a folder and on the S3 test
// server: history with manifest summaries, the current pointer, rollback by run id / offset / to the
// previous snapshot, and cleanup, each checked by what a second process (`shardvec search` in a child)
// answers afterwards.
#include "shardvec/admin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "support/publish_harness.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::SnapshotSpec;

constexpr int64_t kRows = 90;

class AdminTestBase : public ::testing::Test {
 protected:
  struct Target {
    std::string prefix;
    std::shared_ptr<ObjectStore> store;
    std::string cli_env;  // "" for a folder, S3 credentials for S3
  };
  virtual Target NewTarget(const std::string& name) = 0;

  testing::PublishHarness World(const std::string& name) {
    Target t = NewTarget(name);
    return testing::PublishHarness(tmp_ / ("work-" + name), t.prefix, t.store, t.cli_env);
  }

  // Publishes a, b and c in that order.
  void PublishAll(testing::PublishHarness& world) {
    for (const SnapshotSpec* spec : {&a_, &b_, &c_}) {
      auto built = world.WriteInProcess(*spec);
      ASSERT_TRUE(built.ok()) << built.status().ToString();
    }
  }

  std::string CurrentRun(ObjectStore& store) {
    auto current = ReadCurrentSnapshot(store);
    if (!current.ok()) return "<" + current.status().ToString() + ">";
    return *current ? (*current)->run_id : "<none>";
  }

  void CheckHistory() {
    auto world = World("history");
    ObjectStore& store = world.store();
    auto empty = ListSnapshots(store);
    ASSERT_TRUE(empty.ok()) << empty.status().ToString();
    EXPECT_TRUE(empty->empty());
    PublishAll(world);
    ASSERT_FALSE(HasFatalFailure());

    auto all = ListSnapshots(store);
    ASSERT_TRUE(all.ok()) << all.status().ToString();
    ASSERT_EQ(all->size(), 3u);
    const std::vector<std::string> order = {(*all)[0].run_id, (*all)[1].run_id, (*all)[2].run_id};
    EXPECT_EQ(order, (std::vector<std::string>{"C", "B", "A"})) << "newest first";
    EXPECT_TRUE((*all)[0].current);
    EXPECT_FALSE((*all)[1].current);
    EXPECT_FALSE((*all)[2].current);
    for (const HistoryEntry& s : *all) {
      ASSERT_TRUE(s.manifest.has_value()) << s.run_id << ": " << s.manifest_error;
      EXPECT_EQ(s.manifest->total_vectors, kRows) << s.run_id;
      EXPECT_EQ(s.manifest->num_dbs, 3) << s.run_id;
      EXPECT_EQ(s.manifest->dim, 8) << s.run_id;
      EXPECT_EQ(s.manifest->metric, "l2") << s.run_id;
      EXPECT_EQ(s.manifest->sharding_strategy, "lsh") << s.run_id;
      EXPECT_FALSE(s.manifest->created_at.empty()) << s.run_id;
      EXPECT_TRUE(s.manifest_error.empty()) << s.manifest_error;
      EXPECT_THAT(s.ref, HasSubstr("manifests/" + s.published_at + "_run_id=" + s.run_id + "/manifest"));
    }
    EXPECT_LT((*all)[1].published_at, (*all)[0].published_at);

    auto listing = ListSnapshots(store, {.limit = 2, .read_manifests = false});
    ASSERT_TRUE(listing.ok()) << listing.status().ToString();
    ASSERT_EQ(listing->size(), 2u);
    EXPECT_EQ((*listing)[1].run_id, "B");
    EXPECT_FALSE((*listing)[0].manifest.has_value()) << "read_manifests=false reads no manifest";

    // A manifest that no longer parses is listed with the reason, and the others still are.
    const std::string prefix = store.PrefixUrl() + "/";
    ASSERT_TRUE(store.Put((*all)[1].ref.substr(prefix.size()), "{not json").ok());
    auto damaged = ListSnapshots(store);
    ASSERT_TRUE(damaged.ok()) << damaged.status().ToString();
    ASSERT_EQ(damaged->size(), 3u);
    EXPECT_FALSE((*damaged)[1].manifest.has_value());
    EXPECT_THAT((*damaged)[1].manifest_error, HasSubstr((*all)[1].ref));
    EXPECT_TRUE((*damaged)[0].manifest.has_value());

    auto negative = ListSnapshots(store, {.limit = -1});
    ASSERT_FALSE(negative.ok());
    EXPECT_EQ(negative.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(negative.status().message(), HasSubstr("limit must be >= 0 (0 lists all; got -1)"));
  }

  void CheckRollback() {
    auto world = World("rollback");
    ObjectStore& store = world.store();
    auto nothing = RollbackSnapshot(store, {.previous = true});
    ASSERT_FALSE(nothing.ok());
    EXPECT_EQ(nothing.status().code(), StatusCode::kNotFound);
    EXPECT_THAT(nothing.status().message(), HasSubstr("no _CURRENT"));
    auto none = ReadCurrentSnapshot(store);
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_FALSE(none->has_value());

    PublishAll(world);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(CurrentRun(store), "C");

    auto to_b = RollbackSnapshot(store, {.previous = true});
    ASSERT_TRUE(to_b.ok()) << to_b.status().ToString();
    EXPECT_EQ(to_b->run_id, "B");
    EXPECT_EQ(CurrentRun(store), "B");
    EXPECT_EQ(world.AnswersInChild({a_, b_, c_}), "B");

    auto to_a = RollbackSnapshot(store, {.previous = true});
    ASSERT_TRUE(to_a.ok()) << to_a.status().ToString();
    EXPECT_EQ(to_a->run_id, "A");
    auto current = ReadCurrentSnapshot(store);
    ASSERT_TRUE(current.ok() && current->has_value());
    EXPECT_EQ((*current)->ref, to_a->ref);
    EXPECT_FALSE((*current)->updated_at.empty());
    EXPECT_EQ(world.AnswersInChild({a_, b_, c_}), "A");

    auto oldest = RollbackSnapshot(store, {.previous = true});
    ASSERT_FALSE(oldest.ok());
    EXPECT_EQ(oldest.status().code(), StatusCode::kNotFound);
    EXPECT_THAT(oldest.status().message(), HasSubstr("is the oldest"));
    EXPECT_EQ(CurrentRun(store), "A") << "a refused rollback leaves _CURRENT alone";

    auto by_run = RollbackSnapshot(store, {.run_id = "C"});
    ASSERT_TRUE(by_run.ok()) << by_run.status().ToString();
    EXPECT_EQ(world.AnswersInChild({a_, b_, c_}), "C");
    auto by_offset = RollbackSnapshot(store, {.offset = 1});
    ASSERT_TRUE(by_offset.ok()) << by_offset.status().ToString();
    EXPECT_EQ(by_offset->run_id, "B");
    auto by_ref = RollbackSnapshot(store, {.ref = to_a->ref});
    ASSERT_TRUE(by_ref.ok()) << by_ref.status().ToString();
    EXPECT_FALSE(by_ref->already_current);
    EXPECT_EQ(world.AnswersInProcess({a_, b_, c_}), "A");

    // A rollback to the snapshot _CURRENT names says so and writes nothing: no pointer, no marker.
    const auto keys = [&store] {
      std::vector<std::string> out;
      auto listed = store.List("");
      EXPECT_TRUE(listed.ok()) << listed.status().ToString();
      if (listed.ok()) {
        for (const ObjectInfo& o : listed->objects) out.push_back(o.key);
      }
      return out;
    };
    const auto pointer_before = store.GetVersioned("_CURRENT", 1 << 20);
    ASSERT_TRUE(pointer_before.ok()) << pointer_before.status().ToString();
    const std::vector<std::string> keys_before = keys();
    for (const RollbackTarget& target : {RollbackTarget{.run_id = "A"}, RollbackTarget{.ref = to_a->ref}}) {
      auto again = RollbackSnapshot(store, target);
      ASSERT_TRUE(again.ok()) << again.status().ToString();
      EXPECT_TRUE(again->already_current);
      EXPECT_EQ(again->run_id, "A");
      auto pointer_after = store.GetVersioned("_CURRENT", 1 << 20);
      ASSERT_TRUE(pointer_after.ok());
      EXPECT_EQ(pointer_after->data, pointer_before->data);
      EXPECT_EQ(pointer_after->version, pointer_before->version) << "_CURRENT was rewritten";
      EXPECT_EQ(keys(), keys_before);
    }

    auto two = RollbackSnapshot(store, {.run_id = "B", .previous = true});
    ASSERT_FALSE(two.ok());
    EXPECT_EQ(two.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(two.status().message(), HasSubstr("Exactly one of ref, run_id, offset or previous"));
    auto unknown = RollbackSnapshot(store, {.run_id = "nope"});
    ASSERT_FALSE(unknown.ok());
    EXPECT_THAT(unknown.status().message(), HasSubstr("run_id=nope"));
    EXPECT_EQ(CurrentRun(store), "A");
  }

  void CheckCleanup() {
    auto world = World("cleanup");
    ObjectStore& store = world.store();
    PublishAll(world);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(RollbackSnapshot(store, {.run_id = "A"}).ok());
    const std::set<std::string> before = world.Keys();

    // Kept: the newest manifest (C) and the current one (A); B's shard data goes.
    auto planned = Cleanup(store, {.dry_run = true, .keep_last = 1});
    ASSERT_TRUE(planned.ok()) << planned.status().ToString();
    EXPECT_EQ(planned->removed_runs, std::vector<std::string>{"B"});
    EXPECT_GT(planned->objects, 0);
    EXPECT_GT(planned->bytes, 0);
    for (const std::string& key : planned->deleted_keys) EXPECT_THAT(key, HasSubstr("run_id=B/"));
    EXPECT_EQ(world.Keys(), before) << "a dry run deletes nothing";

    auto done = Cleanup(store, {.keep_last = 1});
    ASSERT_TRUE(done.ok()) << done.status().ToString();
    EXPECT_EQ(done->deleted_keys, planned->deleted_keys);
    for (const std::string& key : done->deleted_keys) EXPECT_EQ(world.Keys().count(key), 0u) << key;
    EXPECT_EQ(world.AnswersInChild({a_, b_, c_}), "A") << "the current snapshot survives cleanup";

    auto to_b = RollbackSnapshot(store, {.run_id = "B"});
    ASSERT_FALSE(to_b.ok()) << "B's shards are gone";
    EXPECT_EQ(to_b.status().code(), StatusCode::kNotFound);
    EXPECT_THAT(to_b.status().message(), HasSubstr("refusing to make it current"));
    EXPECT_EQ(world.AnswersInChild({a_, b_, c_}), "A");

    auto history = ListSnapshots(store);
    ASSERT_TRUE(history.ok());
    EXPECT_EQ(history->size(), 3u) << "cleanup never deletes a manifest";
    ASSERT_TRUE(RollbackSnapshot(store, {.run_id = "C"}).ok());
    EXPECT_EQ(world.AnswersInChild({a_, b_, c_}), "C");
  }

  void CheckCleanupOptionErrors() {
    auto world = World("options");
    ObjectStore& store = world.store();
    struct Case {
      CleanupOptions options;
      std::string expect;
    };
    const std::vector<Case> cases = {
        {{.keep_last = 0}, "keep_last must be >= 1 (got 0)"},
        {{.older_than = std::chrono::seconds(-5)}, "older_than must be >= 0 seconds (got -5)"},
        {{.older_than = std::chrono::seconds(int64_t{100001} * 86400)}, "older_than must be at most"},
    };
    for (const Case& tc : cases) {
      auto report = Cleanup(store, tc.options);
      ASSERT_FALSE(report.ok()) << tc.expect;
      EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
      EXPECT_THAT(report.status().message(), HasSubstr(tc.expect));
    }
  }

  testing::TempDir tmp_;
  const SnapshotSpec a_{"A", testing::RandomMatrix(kRows, 8, 41), false};
  const SnapshotSpec b_{"B", testing::RandomMatrix(kRows, 8, 42), true};
  const SnapshotSpec c_{"C", testing::RandomMatrix(kRows, 8, 43), false};
};

class AdminTest : public AdminTestBase {
 protected:
  Target NewTarget(const std::string& name) override {
    const std::string prefix = (tmp_ / ("store-" + name)).string();
    auto store = OpenStore(prefix);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return {prefix, *store, ""};
  }
};

class S3AdminTest : public AdminTestBase {
 protected:
  Target NewTarget(const std::string& name) override {
    const std::string prefix = testing::UniqueS3Prefix("admin-" + name);
    return {prefix, testing::OpenS3TestStore(prefix), testing::S3CliEnv() + " "};
  }
};

TEST_F(AdminTest, HistoryListsSnapshotsNewestFirstWithTheirManifestsAndTheCurrentOne) { CheckHistory(); }
TEST_F(S3AdminTest, HistoryListsSnapshotsNewestFirstWithTheirManifestsAndTheCurrentOne) { CheckHistory(); }
TEST_F(AdminTest, RollbackToPreviousRunIdOffsetOrRefIsWhatASecondProcessReads) { CheckRollback(); }
TEST_F(S3AdminTest, RollbackToPreviousRunIdOffsetOrRefIsWhatASecondProcessReads) { CheckRollback(); }
TEST_F(AdminTest, CleanupKeepsTheCurrentAndNewestSnapshotsForASecondProcess) { CheckCleanup(); }
TEST_F(S3AdminTest, CleanupKeepsTheCurrentAndNewestSnapshotsForASecondProcess) { CheckCleanup(); }
TEST_F(AdminTest, CleanupRefusesBadOptionsNamingThem) { CheckCleanupOptionErrors(); }

}  // namespace
}  // namespace shardvec
