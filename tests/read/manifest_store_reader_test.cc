// A manifest store other than the object-store layout (an in-memory one here, as a PostgreSQL or a
// user's store would be): the writer publishes through it and nothing lands in manifests/ or
// _CURRENT; the reader opens, refreshes and falls back through it; history, rollback and cleanup
// list and move its pointer while the shards stay in the object store.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <mutex>
#include <set>
#include <variant>

#include "common/time_util.h"
#include "format/keys.h"
#include "shardvec/admin.h"
#include "shardvec/manifest_store.h"
#include "shardvec/reader.h"
#include "shardvec/records.h"
#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Manifests and the pointer in memory; refs are "mem://<n>/<run>".
class MemoryManifestStore final : public ManifestStore {
 public:
  Result<ManifestRef> Publish(const Manifest& manifest, const PublishGuard& guard) override {
    std::lock_guard<std::mutex> lock(mu_);
    ManifestRef ref{fmt::format("mem://{}/{}", history_.size(), manifest.run_id), manifest.run_id,
                    FormatTimestamp(NowUtc())};
    history_.push_back({ref, manifest});
    if (guard.policy == PublishPolicy::kRejectIfNewer && current_ &&
        current_->published_at > FormatTimestamp(guard.run_started)) {
      return Status::Conflict("newer current").WithKind(ErrorKind::kPublishConflict);
    }
    current_ = ref;
    return ref;
  }
  Result<std::optional<ManifestRef>> LoadCurrent() override {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
  }
  Result<Manifest> LoadManifest(const std::string& ref) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (corrupt_.count(ref)) return Status::Corruption("manifest does not parse").WithKind(ErrorKind::kManifestParse);
    for (const auto& [r, m] : history_) {
      if (r.ref == ref) return m;
    }
    return Status::NotFound("no manifest " + ref);
  }
  Result<std::vector<ManifestRef>> ListManifests(int64_t limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ManifestRef> out;
    for (auto it = history_.rbegin(); it != history_.rend(); ++it) {
      if (limit > 0 && static_cast<int64_t>(out.size()) == limit) break;
      out.push_back(it->first);
    }
    return out;
  }
  Status SetCurrent(const std::string& ref, const std::optional<ManifestRef>& expected) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (expected && (current_ ? current_->ref : "") != expected->ref) return Status::Conflict("moved");
    for (const auto& [r, m] : history_) {
      if (r.ref == ref) {
        current_ = ManifestRef{r.ref, r.run_id, FormatTimestamp(NowUtc())};
        return Status::OK();
      }
    }
    return Status::NotFound("no manifest " + ref);
  }
  std::string Describe() const override { return "memory"; }

  void Corrupt(const std::string& ref) {
    std::lock_guard<std::mutex> lock(mu_);
    corrupt_.insert(ref);
  }

 private:
  std::mutex mu_;
  std::vector<std::pair<ManifestRef, Manifest>> history_;
  std::optional<ManifestRef> current_;
  std::set<std::string> corrupt_;
};

class ManifestStoreReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenStore((tmp_ / "store").string());
    ASSERT_TRUE(store.ok());
    objects_ = *store;
  }

  // Run `run_id`'s data (seeded by `seed`), published through the memory store.
  Matrix Write(const std::string& run_id, uint64_t seed) {
    Matrix data = testing::RandomMatrix(60, 8, seed);
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = (tmp_ / "lr").string();
    c.index.dim = 8;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 3;
    c.run_id = run_id;
    c.manifest_store = manifests_;
    VectorRecordSource source(testing::MakeRecords(data, false));
    auto built = WriteSharded(c, source, objects_);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    if (built.ok()) {
      EXPECT_THAT(built->manifest_ref, StartsWith("mem://"));
    }
    return data;
  }

  ReaderOptions Options() {
    ReaderOptions o;
    o.store = (tmp_ / "store").string();
    o.cache_dir = (tmp_ / "cache").string();
    o.manifest_store = manifests_;
    return o;
  }

  // Whether the reader holds `data`'s snapshot: its first row is found at distance 0 with id 0.
  static bool Serves(ShardedVectorReader& reader, const Matrix& data) {
    std::vector<float> q(data.data.begin(), data.data.begin() + data.cols);
    SearchOptions all;
    all.shard_ids = std::vector<int64_t>{0, 1, 2};
    auto hits = reader.Search(q, 1, all);
    return hits.ok() && !hits->results.empty() && hits->results[0].score == 0.0 &&
           std::get<int64_t>(hits->results[0].id) == 0;
  }

  testing::TempDir tmp_;
  std::shared_ptr<ObjectStore> objects_;
  std::shared_ptr<MemoryManifestStore> manifests_ = std::make_shared<MemoryManifestStore>();
};

TEST_F(ManifestStoreReaderTest, TheWriterPublishesThroughTheStoreAndLeavesNoManifestOrPointerInTheObjects) {
  Write("A", 1);
  ASSERT_FALSE(HasFailure());
  EXPECT_EQ(objects_->Head(kCurrentKey).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(objects_->List(kManifestsPrefix)->objects.empty());
  EXPECT_FALSE(objects_->List(RunShardsPrefix("A"))->objects.empty()) << "the shards stay in the object store";
  auto listed = manifests_->ListManifests(0);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].run_id, "A");
  EXPECT_EQ(manifests_->LoadManifest((*listed)[0].ref)->run_id, "A");

  ReaderOptions plain = Options();
  plain.manifest_store = nullptr;
  auto without = ShardedVectorReader::Open(plain);
  ASSERT_FALSE(without.ok());
  EXPECT_EQ(without.status().kind(), ErrorKind::kNoCurrentPointer);
}

TEST_F(ManifestStoreReaderTest, TheReaderOpensAndRefreshesWhenTheStoresPointerMoves) {
  const Matrix a = Write("A", 1);
  auto reader = ShardedVectorReader::Open(Options());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE(Serves(**reader, a));
  EXPECT_THAT((*reader)->Info().manifest_ref, StartsWith("mem://"));
  EXPECT_FALSE(*(*reader)->Refresh());

  const Matrix b = Write("B", 2);
  auto moved = (*reader)->Refresh();
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_TRUE(*moved);
  EXPECT_TRUE(Serves(**reader, b));
  EXPECT_EQ((*reader)->Info().run_id, "B");

  // The store's pointer moved back (a rollback in the store): the reader follows.
  auto listed = manifests_->ListManifests(0);
  ASSERT_TRUE(manifests_->SetCurrent((*listed)[1].ref, std::nullopt).ok());
  ASSERT_TRUE(*(*reader)->Refresh());
  EXPECT_TRUE(Serves(**reader, a));
}

TEST_F(ManifestStoreReaderTest, AManifestThatDoesNotParseFallsBackToTheOlderOneTheStoreLists) {
  const Matrix a = Write("A", 1);
  Write("B", 2);
  manifests_->Corrupt((*manifests_->LoadCurrent())->ref);
  auto reader = ShardedVectorReader::Open(Options());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE(Serves(**reader, a));

  ReaderOptions no_fallback = Options();
  no_fallback.max_fallback_attempts = 0;
  auto refused = ShardedVectorReader::Open(no_fallback);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().kind(), ErrorKind::kManifestParse);
}

TEST_F(ManifestStoreReaderTest, HistoryRollbackAndCleanupGoThroughTheStore) {
  Write("A", 1);
  Write("B", 2);
  Write("C", 3);
  auto rolled = RollbackSnapshot(*objects_, *manifests_, RollbackTarget{.previous = true});
  ASSERT_TRUE(rolled.ok()) << rolled.status().ToString();
  EXPECT_EQ(rolled->run_id, "B");
  EXPECT_EQ((*manifests_->LoadCurrent())->run_id, "B");
  EXPECT_EQ(objects_->Head(kCurrentKey).status().code(), StatusCode::kNotFound) << "nothing written beside the shards";

  auto history = ListSnapshots(*manifests_);
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].run_id, "C");
  EXPECT_FALSE((*history)[0].current);
  EXPECT_TRUE((*history)[1].current);
  ASSERT_TRUE((*history)[2].manifest.has_value()) << (*history)[2].manifest_error;
  EXPECT_EQ((*history)[2].manifest->total_vectors, 60);
  EXPECT_EQ((*ReadCurrentSnapshot(*manifests_))->run_id, "B");

  auto by_ref = RollbackSnapshot(*objects_, *manifests_, RollbackTarget{.ref = (*history)[0].ref});
  ASSERT_TRUE(by_ref.ok()) << by_ref.status().ToString();
  EXPECT_EQ(by_ref->run_id, "C");
  auto unknown = RollbackSnapshot(*objects_, *manifests_, RollbackTarget{.ref = std::string("mem://9/Z")});
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("mem://9/Z"));

  // Keep the newest (C, also current): A's and B's shards go, C's stay.
  auto report = Cleanup(*objects_, *manifests_, CleanupOptions{.keep_last = 1});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed_runs, (std::vector<std::string>{"A", "B"}));
  EXPECT_TRUE(objects_->List(RunShardsPrefix("A"))->objects.empty());
  EXPECT_FALSE(objects_->List(RunShardsPrefix("C"))->objects.empty());
  auto reader = ShardedVectorReader::Open(Options());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->Info().run_id, "C");

  // Rolling back to a snapshot whose shards cleanup removed is refused; the pointer stays.
  auto gone = RollbackSnapshot(*objects_, *manifests_, RollbackTarget{.run_id = std::string("A")});
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound) << gone.status().ToString();
  EXPECT_EQ((*manifests_->LoadCurrent())->run_id, "C");
}

}  // namespace
}  // namespace shardvec
