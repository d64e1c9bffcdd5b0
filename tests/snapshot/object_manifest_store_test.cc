// The object-store layout of shardvec/manifest_store.h on a folder and on the S3 test server: publish,
// load, list and set_current, checked against the bytes in the store; the current_pointer_key option;
// racing publishers and racing compare-and-swaps; and OpenManifestStore's specs.
#include "shardvec/manifest_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include <fmt/format.h>

#include <algorithm>

#include "common/time_util.h"
#include "format/current_pointer.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
using ::testing::HasSubstr;
using ::testing::Not;

Manifest TestManifest(const std::string& run_id, int64_t rows = 5) {
  Manifest m;
  m.run_id = run_id;
  m.created_at = "2026-01-02T03:04:05.000006Z";
  m.num_dbs = 2;
  m.s3_prefix = "s3://bucket/prefix";
  ManifestShard shard;
  shard.db_id = 1;
  shard.db_url = "s3://bucket/prefix/shards/run_id=" + run_id + "/db=00001/attempt=00";
  shard.row_count = rows;
  shard.db_bytes = 4096;
  m.shards.push_back(shard);
  m.custom = {{"vector", {{"dim", 4}}}};
  return m;
}

PublishGuard LastWriterWins() { return PublishGuard{NowUtc(), PublishPolicy::kLastWriterWins}; }

class ObjectManifestStoreTestBase : public ::testing::Test {
 protected:
  virtual std::shared_ptr<ObjectStore> NewStore(const std::string& name) = 0;

  void CheckPublishLoadListAndSetCurrent() {
    auto objects = NewStore("basic");
    ASSERT_NE(objects, nullptr);
    auto store = MakeObjectManifestStore(objects);
    auto none = store->LoadCurrent();
    ASSERT_TRUE(none.ok()) << none.status().ToString();
    EXPECT_FALSE(none->has_value());
    EXPECT_TRUE(store->ListManifests(0)->empty());

    auto a = store->Publish(TestManifest("A", 5), LastWriterWins());
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto b = store->Publish(TestManifest("B", 7), LastWriterWins());
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(a->run_id, "A");
    EXPECT_THAT(a->ref, HasSubstr("/manifests/" + a->published_at + "_run_id=A/manifest"));
    EXPECT_GT(b->published_at, a->published_at);

    // The bytes in the store: the manifest at its key, the pointer at _CURRENT naming B.
    auto key = KeyFromUrl(objects->PrefixUrl(), b->ref);
    ASSERT_TRUE(key.ok());
    auto stored = ParseManifest(*objects->Get(*key));
    ASSERT_TRUE(stored.ok()) << stored.status().ToString();
    EXPECT_EQ(stored->shards.at(0).row_count, 7);
    auto pointer = ParseCurrentPointer(*objects->Get(kCurrentKey));
    ASSERT_TRUE(pointer.ok());
    EXPECT_EQ(pointer->manifest_ref, b->ref);
    EXPECT_EQ(pointer->run_id, "B");

    auto current = store->LoadCurrent();
    ASSERT_TRUE(current.ok() && current->has_value());
    EXPECT_EQ((*current)->ref, b->ref);
    EXPECT_EQ((*current)->published_at, pointer->updated_at);

    auto all = store->ListManifests(0);
    ASSERT_TRUE(all.ok());
    ASSERT_EQ(all->size(), 2u);
    EXPECT_EQ((*all)[0].ref, b->ref) << "newest first";
    EXPECT_EQ((*all)[1].ref, a->ref);
    EXPECT_EQ((*all)[1].published_at, a->published_at);
    EXPECT_EQ(store->ListManifests(1)->size(), 1u);
    EXPECT_EQ(store->ListManifests(-1).status().code(), StatusCode::kInvalidArgument);

    auto loaded = store->LoadManifest(a->ref);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded->run_id, "A");
    EXPECT_EQ(loaded->shards.at(0).row_count, 5);
    EXPECT_EQ(loaded->custom["vector"]["dim"], 4);

    // set_current: unconditional, then guarded by the expected pointer.
    ASSERT_TRUE(store->SetCurrent(a->ref, std::nullopt).ok());
    EXPECT_EQ(ParseCurrentPointer(*objects->Get(kCurrentKey))->manifest_ref, a->ref);
    Status stale = store->SetCurrent(b->ref, ManifestRef{b->ref, "B", ""});
    EXPECT_EQ(stale.code(), StatusCode::kConflict) << stale.ToString();
    EXPECT_EQ(ParseCurrentPointer(*objects->Get(kCurrentKey))->manifest_ref, a->ref) << "left alone";
    ASSERT_TRUE(store->SetCurrent(b->ref, ManifestRef{a->ref, "A", ""}).ok());
    EXPECT_EQ((*store->LoadCurrent())->ref, b->ref);

    // Refs that name nothing.
    const std::string missing = objects->Url(ManifestKey("2020-01-01T00:00:00.000000Z", "Z"));
    EXPECT_EQ(store->LoadManifest(missing).status().code(), StatusCode::kNotFound);
    Status set_missing = store->SetCurrent(missing, std::nullopt);
    EXPECT_EQ(set_missing.code(), StatusCode::kNotFound) << set_missing.ToString();
    EXPECT_THAT(set_missing.message(), HasSubstr(missing));
    EXPECT_EQ(store->SetCurrent(objects->Url("manifests/garbage"), std::nullopt).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ((*store->LoadCurrent())->ref, b->ref);
    EXPECT_EQ(store->Describe(), objects->Url("_CURRENT"));
  }

  void CheckCurrentPointerKey() {
    auto objects = NewStore("pointer-key");
    ASSERT_NE(objects, nullptr);
    auto store = MakeObjectManifestStore(objects, {.current_pointer_key = "pointers/LIVE"});
    auto a = store->Publish(TestManifest("A"), LastWriterWins());
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auto pointer = ParseCurrentPointer(*objects->Get("pointers/LIVE"));
    ASSERT_TRUE(pointer.ok());
    EXPECT_EQ(pointer->manifest_ref, a->ref);
    EXPECT_EQ(objects->Head(kCurrentKey).status().code(), StatusCode::kNotFound) << "_CURRENT is not written";
    EXPECT_FALSE(MakeObjectManifestStore(objects)->LoadCurrent()->has_value());
    EXPECT_EQ((*store->LoadCurrent())->ref, a->ref);
    EXPECT_EQ(store->Describe(), objects->Url("pointers/LIVE"));

    for (const std::string bad : {"", "/abs", "a/../b", "..", "manifests/x", "x/", "a//b"}) {
      auto refused = MakeObjectManifestStore(objects, {.current_pointer_key = bad});
      auto loaded = refused->LoadCurrent();
      ASSERT_FALSE(loaded.ok()) << "'" << bad << "'";
      EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
      EXPECT_THAT(loaded.status().message(), HasSubstr("current_pointer_key '" + bad + "'"));
      EXPECT_EQ(refused->Publish(TestManifest("X"), LastWriterWins()).status().code(),
                StatusCode::kInvalidArgument);
    }
    EXPECT_EQ(objects->List("manifests/")->objects.size(), 1u) << "a refused publish writes nothing";
  }

  // Two threads swap from the same expected pointer at once, round after round: exactly one wins
  // each round, the other gets Conflict, and the pointer names the winner.
  void CheckRacingSetCurrent() {
    auto objects = NewStore("race-cas");
    ASSERT_NE(objects, nullptr);
    auto setup = MakeObjectManifestStore(objects);
    auto base = setup->Publish(TestManifest("base"), LastWriterWins());
    auto x = setup->Publish(TestManifest("X"), LastWriterWins());
    auto y = setup->Publish(TestManifest("Y"), LastWriterWins());
    ASSERT_TRUE(base.ok() && x.ok() && y.ok());
    for (int round = 0; round < 10; ++round) {
      ASSERT_TRUE(setup->SetCurrent(base->ref, std::nullopt).ok());
      const ManifestRef expected = **setup->LoadCurrent();
      std::atomic<int> ready{0};
      Status results[2];
      const std::string targets[2] = {x->ref, y->ref};
      std::vector<std::thread> threads;
      for (int i = 0; i < 2; ++i) {
        threads.emplace_back([&, i] {
          auto mine = MakeObjectManifestStore(objects);  // its own store object, as another process has
          ready.fetch_add(1);
          for (int spin = 0; spin < 1000000 && ready.load() < 2; ++spin) std::this_thread::yield();
          results[i] = mine->SetCurrent(targets[i], expected);
        });
      }
      for (std::thread& t : threads) t.join();
      const int wins = int{results[0].ok()} + int{results[1].ok()};
      ASSERT_EQ(wins, 1) << "round " << round << ": " << results[0].ToString() << " / " << results[1].ToString();
      const int winner = results[0].ok() ? 0 : 1;
      EXPECT_EQ(results[1 - winner].code(), StatusCode::kConflict) << results[1 - winner].ToString();
      EXPECT_EQ((*setup->LoadCurrent())->ref, targets[winner]) << "round " << round;
    }
  }

  // Two publishers at once, several runs each: every manifest reaches history, every publish either
  // moves the pointer or says it lost, and the pointer ends on a manifest whose publish succeeded.
  void CheckRacingPublishers() {
    auto objects = NewStore("race-publish");
    ASSERT_NE(objects, nullptr);
    constexpr int kPerThread = 4;
    std::vector<std::string> won[2];
    std::vector<Status> lost[2];
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&, i] {
        auto mine = MakeObjectManifestStore(objects);
        for (int n = 0; n < kPerThread; ++n) {
          auto published = mine->Publish(TestManifest(fmt::format("T{}-{}", i, n)), LastWriterWins());
          if (published.ok()) {
            won[i].push_back(published->ref);
          } else {
            lost[i].push_back(published.status());
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (int i = 0; i < 2; ++i) {
      for (const Status& st : lost[i]) {
        EXPECT_EQ(st.kind(), ErrorKind::kPublishConflict) << st.ToString();
      }
    }
    auto listed = MakeObjectManifestStore(objects)->ListManifests(0);
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(listed->size(), 2u * kPerThread) << "every manifest is in history";
    const std::string final_ref = (*MakeObjectManifestStore(objects)->LoadCurrent())->ref;
    const bool final_won = std::count(won[0].begin(), won[0].end(), final_ref) +
                               std::count(won[1].begin(), won[1].end(), final_ref) == 1;
    EXPECT_TRUE(final_won) << final_ref << " is not a publish that succeeded";
    EXPECT_FALSE(won[0].empty() && won[1].empty());
  }

  testing::TempDir tmp_;
};

class ObjectManifestStoreTest : public ObjectManifestStoreTestBase {
 protected:
  std::shared_ptr<ObjectStore> NewStore(const std::string& name) override {
    auto store = OpenStore((tmp_ / name).string());
    return store.ok() ? *store : nullptr;
  }
};

class S3ObjectManifestStoreTest : public ObjectManifestStoreTestBase {
 protected:
  std::shared_ptr<ObjectStore> NewStore(const std::string& name) override {
    return testing::OpenS3TestStore(testing::UniqueS3Prefix("manifest-store-" + name));
  }
};

TEST_F(ObjectManifestStoreTest, PublishLoadListAndSetCurrentAreWhatTheStoreHolds) { CheckPublishLoadListAndSetCurrent(); }
TEST_F(S3ObjectManifestStoreTest, PublishLoadListAndSetCurrentAreWhatTheStoreHolds) { CheckPublishLoadListAndSetCurrent(); }
TEST_F(ObjectManifestStoreTest, CurrentPointerKeyIsWhereThePointerLivesAndBadKeysAreRefused) { CheckCurrentPointerKey(); }
TEST_F(S3ObjectManifestStoreTest, CurrentPointerKeyIsWhereThePointerLivesAndBadKeysAreRefused) { CheckCurrentPointerKey(); }
TEST_F(ObjectManifestStoreTest, RacingSetCurrentsFromOnePointerHaveExactlyOneWinner) { CheckRacingSetCurrent(); }
TEST_F(S3ObjectManifestStoreTest, RacingSetCurrentsFromOnePointerHaveExactlyOneWinner) { CheckRacingSetCurrent(); }
TEST_F(ObjectManifestStoreTest, RacingPublishersLoseNoManifestAndEndOnAWinner) { CheckRacingPublishers(); }
TEST_F(S3ObjectManifestStoreTest, RacingPublishersLoseNoManifestAndEndOnAWinner) { CheckRacingPublishers(); }

TEST_F(ObjectManifestStoreTest, RejectIfNewerRefusesToMoveThePointerBackAndKeepsTheManifestListed) {
  auto objects = NewStore("guard");
  auto store = MakeObjectManifestStore(objects);
  const SystemTime started = NowUtc();
  ASSERT_TRUE(store->Publish(TestManifest("newer"), LastWriterWins()).ok());
  auto stale = store->Publish(TestManifest("stale"), PublishGuard{started - std::chrono::seconds(5),
                                                                  PublishPolicy::kRejectIfNewer});
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().kind(), ErrorKind::kPublishConflict) << stale.status().ToString();
  EXPECT_EQ((*store->LoadCurrent())->run_id, "newer");
  EXPECT_EQ(store->ListManifests(0)->size(), 2u);
}

TEST_F(ObjectManifestStoreTest, OpenManifestStoreTakesNothingOrAPostgresDsnAndNeverPrintsAPassword) {
  auto objects = NewStore("open");
  auto layout = OpenManifestStore("", objects);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  ASSERT_TRUE((*layout)->Publish(TestManifest("A"), LastWriterWins()).ok());
  EXPECT_TRUE(objects->Head(kCurrentKey).ok());

  auto postgres = OpenManifestStore("postgresql://user:s3cr3t@127.0.0.1:1/db", objects);
  ASSERT_FALSE(postgres.ok()) << "nothing listens on port 1";
  EXPECT_THAT(postgres.status().message(), Not(HasSubstr("s3cr3t")));
  EXPECT_FALSE(OpenManifestStore("postgres://127.0.0.1:1/db", objects).ok());

  auto other = OpenManifestStore("mysql://host/db", objects);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(other.status().message(), HasSubstr("--manifest-store 'mysql://host/db'"));
  EXPECT_EQ(OpenManifestStore("", nullptr).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shardvec
