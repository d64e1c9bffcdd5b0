// History, rollback and cleanup over a LocalStore holding hand-made snapshots, so timestamps,
// attempts and run records are exactly what each test needs.
#include "snapshot/history.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "format/current_pointer.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "format/run_record.h"
#include "store/local_store.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

constexpr char kT1[] = "2026-01-01T00:00:00.000001Z";
constexpr char kT2[] = "2026-01-02T00:00:00.000002Z";
constexpr char kT3[] = "2026-01-03T00:00:00.000003Z";
constexpr char kT4[] = "2026-01-04T00:00:00.000004Z";

SystemTime At(const std::string& text) {
  auto t = ParseTimestamp(text);
  EXPECT_TRUE(t.has_value()) << text;
  return *t;
}

// A store wrapper that lets another "writer" move _CURRENT right before our compare-and-swap.
class RacingStore : public ObjectStore {
 public:
  RacingStore(ObjectStore& inner, std::string racer_pointer)
      : inner_(inner), racer_pointer_(std::move(racer_pointer)) {}

  std::string Url(std::string_view key) const override { return inner_.Url(key); }
  std::string PrefixUrl() const override { return inner_.PrefixUrl(); }
  using ObjectStore::Get;
  using ObjectStore::GetVersioned;
  Result<std::string> Get(std::string_view key, int64_t max_bytes) override { return inner_.Get(key, max_bytes); }
  Result<std::string> GetRange(std::string_view key, int64_t offset, int64_t length) override {
    return inner_.GetRange(key, offset, length);
  }
  Result<VersionedObject> GetVersioned(std::string_view key, int64_t max_bytes) override {
    return inner_.GetVersioned(key, max_bytes);
  }
  Result<ObjectInfo> Head(std::string_view key) override { return inner_.Head(key); }
  Status GetToFile(std::string_view key, const fs::path& dest, int64_t max_bytes) override {
    return inner_.GetToFile(key, dest, max_bytes);
  }
  Status Put(std::string_view key, std::string_view data) override { return inner_.Put(key, data); }
  Status PutFile(std::string_view key, const fs::path& source) override {
    return inner_.PutFile(key, source);
  }
  Status PutIfAbsent(std::string_view key, std::string_view data) override {
    return inner_.PutIfAbsent(key, data);
  }
  Result<std::string> CompareAndSwap(std::string_view key, std::string_view data,
                                     const std::optional<std::string>& expected) override {
    if (key == kCurrentKey) {
      Status raced = inner_.Put(kCurrentKey, racer_pointer_);
      if (!raced.ok()) return raced;
    }
    return inner_.CompareAndSwap(key, data, expected);
  }
  Result<ListResult> List(std::string_view prefix, std::string_view delimiter) override {
    return inner_.List(prefix, delimiter);
  }
  Status Delete(std::string_view key) override { return inner_.Delete(key); }

 private:
  ObjectStore& inner_;
  std::string racer_pointer_;
};

class SnapshotStoreTest : public ::testing::Test {
 protected:
  // Writes shard files, a centroids file and a manifest dated `timestamp` naming those shards.
  ManifestEntry Publish(const std::string& timestamp, const std::string& run_id,
                        std::map<int64_t, int> attempt_by_db = {{0, 0}, {1, 0}}, const KeyLayout& layout = {}) {
    Manifest m;
    m.shard_prefix = layout.shard_prefix;
    m.db_path_template = layout.db_path_template;
    m.run_id = run_id;
    m.created_at = timestamp;
    m.num_dbs = 2;
    m.s3_prefix = store_.PrefixUrl();
    m.custom = {{"vector", {{"dim", 4}, {"metric", "l2"}}}};
    for (const auto& [db_id, attempt] : attempt_by_db) {
      Put(ShardKey(run_id, db_id, attempt, layout), "shard " + run_id);
      ManifestShard s;
      s.db_id = db_id;
      s.attempt = attempt;
      s.db_url = store_.Url(ShardDirKey(run_id, db_id, attempt, layout));
      m.shards.push_back(s);
    }
    Put(VectorMetaKey(run_id, "centroids.npy"), "centroids");
    auto bytes = SerializeManifest(m);
    EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
    const std::string key = ManifestKey(timestamp, run_id);
    Put(key, *bytes);
    return ManifestEntry{store_.Url(key), key, run_id, timestamp};
  }

  void SetCurrent(const ManifestEntry& entry) {
    CurrentPointer p;
    p.manifest_ref = entry.ref;
    p.run_id = entry.run_id;
    p.updated_at = entry.published_at;
    Put(std::string(kCurrentKey), EncodeCurrentPointer(p));
  }

  void WriteRunRecord(const std::string& run_id, const std::string& status,
                      const std::string& lease_expires_at, const std::string& registry_prefix = "runs") {
    RunRecord r;
    r.run_id = run_id;
    r.status = status;
    r.started_at = kT1;
    r.updated_at = kT1;
    r.lease_expires_at = lease_expires_at;
    Put(RunRecordKey(kT1, run_id, "0123456789abcdef0123456789abcdef", registry_prefix), EncodeRunRecord(r));
  }

  // Plain file writes: the store's fsyncs would make setup slower than the code under test.
  void Put(const std::string& key, const std::string& data) {
    const fs::path file = root() / key;
    fs::create_directories(file.parent_path());
    testing::WriteText(file, data);
  }
  bool Exists(const std::string& key) const { return fs::exists(root() / key); }
  std::string Current() const { return testing::ReadText(root() / "_CURRENT"); }
  std::vector<std::string> AllFiles() const { return testing::ListFiles(root()); }
  fs::path root() const { return tmp_.path() / "store"; }

  testing::TempDir tmp_;
  LocalStore store_{tmp_.path() / "store"};
};

class HistoryTest : public SnapshotStoreTest {};
class RollbackTest : public SnapshotStoreTest {};
class CleanupTest : public SnapshotStoreTest {};

ManifestSelector ByRunId(std::string run_id) {
  ManifestSelector s;
  s.run_id = std::move(run_id);
  return s;
}
ManifestSelector ByRef(std::string ref) {
  ManifestSelector s;
  s.ref = std::move(ref);
  return s;
}
ManifestSelector ByOffset(int64_t offset) {
  ManifestSelector s;
  s.offset = offset;
  return s;
}

std::vector<std::string> RunIds(const std::vector<ManifestEntry>& entries) {
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.run_id);
  return ids;
}

TEST_F(HistoryTest, ListsNewestFirstIgnoresForeignFoldersAndHonoursTheLimit) {
  Publish(kT2, "B");
  Publish(kT1, "A");
  const ManifestEntry c = Publish(kT3, "C");
  Put("manifests/notes/readme.txt", "not a manifest");
  Put("manifests/2026-01-05T00:00:00Z_run_id=short/manifest", "timestamp without micros");

  auto all = ListManifests(store_, 0);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(RunIds(*all), (std::vector<std::string>{"C", "B", "A"}));
  EXPECT_EQ((*all)[0].ref, c.ref);
  EXPECT_EQ((*all)[0].key, c.key);
  EXPECT_EQ((*all)[0].published_at, kT3);
  EXPECT_EQ((*all)[0].ref, "file://" + (root() / c.key).string());

  auto two = ListManifests(store_, 2);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(RunIds(*two), (std::vector<std::string>{"C", "B"}));
  EXPECT_EQ(ListManifests(store_, -1)->size(), 3u);
}

TEST_F(HistoryTest, AnEmptyStoreHasNoManifests) {
  auto none = ListManifests(store_, 10);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
}

TEST_F(RollbackTest, FindsTheTargetByRunIdRefAndOffset) {
  const ManifestEntry a1 = Publish(kT1, "A");
  const ManifestEntry b = Publish(kT2, "B");
  const ManifestEntry a3 = Publish(kT3, "A");

  auto by_run = FindManifest(store_, ByRunId("A"));
  ASSERT_TRUE(by_run.ok()) << by_run.status().ToString();
  EXPECT_EQ(by_run->key, a3.key) << "the newest manifest of the run";

  for (const std::string& ref : {a1.ref, a1.key, (root() / a1.key).string(),
                                 "manifests/" + std::string(kT1) + "_run_id=A"}) {
    auto by_ref = FindManifest(store_, ByRef(ref));
    ASSERT_TRUE(by_ref.ok()) << ref << ": " << by_ref.status().ToString();
    EXPECT_EQ(by_ref->ref, a1.ref) << ref;
    EXPECT_EQ(by_ref->run_id, "A");
  }

  auto by_offset = FindManifest(store_, ByOffset(1));
  ASSERT_TRUE(by_offset.ok());
  EXPECT_EQ(by_offset->ref, b.ref);
  EXPECT_EQ(FindManifest(store_, ByOffset(2))->ref, a1.ref);
}

TEST_F(RollbackTest, EverySelectorErrorNamesTheValue) {
  Publish(kT1, "A");
  struct Case {
    ManifestSelector selector;
    StatusCode code;
    std::string expect;
  };
  const std::string missing = "manifests/" + std::string(kT4) + "_run_id=A/manifest";
  ManifestSelector both = ByRunId("A");
  both.offset = 0;
  const std::vector<Case> cases = {
      {ByRunId("nope"), StatusCode::kNotFound, "No manifest found with run_id=nope"},
      {ByRef(missing), StatusCode::kNotFound, missing},
      {ByRef("manifests/garbage"), StatusCode::kInvalidArgument, "manifests/garbage"},
      {ByRef("file:///elsewhere/" + missing), StatusCode::kInvalidArgument, "/elsewhere/"},
      {ByOffset(1), StatusCode::kNotFound, "offset 1"},
      {ByOffset(-2), StatusCode::kInvalidArgument, "(got -2)"},
      {ManifestSelector{}, StatusCode::kInvalidArgument, "Exactly one"},
      {both, StatusCode::kInvalidArgument, "Exactly one"},
  };
  for (const Case& tc : cases) {
    auto found = FindManifest(store_, tc.selector);
    ASSERT_FALSE(found.ok()) << tc.expect;
    EXPECT_EQ(found.status().code(), tc.code) << found.status().ToString();
    EXPECT_NE(found.status().message().find(tc.expect), std::string::npos)
        << found.status().message();
  }
}

TEST_F(RollbackTest, PointsCurrentAtTheTargetWithAFreshTimestamp) {
  const ManifestEntry a = Publish(kT1, "A");
  SetCurrent(Publish(kT2, "B"));

  auto ref = Rollback(store_, a);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(*ref, a.ref);
  auto pointer = ParseCurrentPointer(Current());
  ASSERT_TRUE(pointer.ok());
  EXPECT_EQ(pointer->manifest_ref, a.ref);
  EXPECT_EQ(pointer->run_id, "A");
  EXPECT_GT(pointer->updated_at, std::string(kT2)) << "updated_at is the rollback's time";
  EXPECT_EQ(Current(), EncodeCurrentPointer(*pointer)) << "sorted compact JSON";
}

TEST_F(RollbackTest, RefusesAMissingOrUnparsableManifestAndLeavesCurrentAlone) {
  SetCurrent(Publish(kT2, "B"));
  const std::string before = Current();
  Put(ManifestKey(kT1, "bad"), "not sqlite");
  const std::string bad_key = ManifestKey(kT1, "bad");

  auto corrupt = Rollback(store_, ManifestEntry{store_.Url(bad_key), bad_key, "bad", kT1});
  EXPECT_EQ(corrupt.status().code(), StatusCode::kCorruption) << corrupt.status().ToString();
  EXPECT_NE(corrupt.status().message().find(bad_key), std::string::npos);

  const std::string gone_key = ManifestKey(kT3, "gone");
  auto missing = Rollback(store_, ManifestEntry{store_.Url(gone_key), gone_key, "gone", kT3});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  EXPECT_EQ(Current(), before);
}

TEST_F(RollbackTest, APointerMovedMidwayIsAConflictAndTheOtherWriterWins) {
  const ManifestEntry a = Publish(kT1, "A");
  SetCurrent(Publish(kT2, "B"));
  CurrentPointer racer;
  racer.manifest_ref = Publish(kT3, "C").ref;
  racer.run_id = "C";
  racer.updated_at = kT3;
  RacingStore racing(store_, EncodeCurrentPointer(racer));

  auto ref = Rollback(racing, a);
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().code(), StatusCode::kConflict) << ref.status().ToString();
  EXPECT_NE(ref.status().message().find(a.ref), std::string::npos);
  EXPECT_EQ(Current(), EncodeCurrentPointer(racer));
}

TEST_F(RollbackTest, ReplacesACorruptPointer) {
  const ManifestEntry a = Publish(kT1, "A");
  Put(std::string(kCurrentKey), "{not json");
  auto ref = Rollback(store_, a);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  EXPECT_EQ(ParseCurrentPointer(Current())->manifest_ref, a.ref);
}

TEST_F(CleanupTest, DryRunDeletesNothingAndReportsWhatItWould) {
  SetCurrent(Publish(kT1, "A"));
  Put(ShardKey("orphan", 0, 0), "12345");
  Put(VectorMetaKey("orphan", "centroids.npy"), "123");
  const auto before = AllFiles();

  CleanupOptions options;
  options.dry_run = true;
  auto report = Cleanup(store_, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(AllFiles(), before);
  EXPECT_EQ(report->deleted_keys,
            (std::vector<std::string>{ShardKey("orphan", 0, 0),
                                      VectorMetaKey("orphan", "centroids.npy")}));
  EXPECT_EQ(report->removed_runs, std::vector<std::string>{"orphan"});
  EXPECT_EQ(report->objects, 2);
  EXPECT_EQ(report->bytes, 8);
}

TEST_F(CleanupTest, ByDefaultRemovesOnlyRunsWithoutAnyManifest) {
  Publish(kT1, "A");
  SetCurrent(Publish(kT2, "B"));
  Put(ShardKey("orphan", 0, 0), "x");
  Put(ShardKey("orphan", 1, 0), "y");
  Put(VectorMetaKey("orphan", "hyperplanes.npy"), "z");
  WriteRunRecord("orphan", "failed", kT1);
  auto before = AllFiles();

  auto report = Cleanup(store_, CleanupOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed_runs, std::vector<std::string>{"orphan"});
  EXPECT_EQ(report->kept_runs, (std::vector<std::string>{"A", "B"}));
  EXPECT_EQ(report->objects, 3);
  std::vector<std::string> expected;
  for (const auto& f : before) {
    if (f.find("run_id=orphan/") == std::string::npos || f.rfind("runs/", 0) == 0) {
      expected.push_back(f);
    }
  }
  EXPECT_EQ(AllFiles(), expected) << "only the orphan's shards and vector_meta go";
  EXPECT_FALSE(fs::exists(root() / "shards/run_id=orphan")) << "no empty skeleton left";
}

TEST_F(CleanupTest, KeepLastKeepsTheNewestAndTheCurrentRunsAndEveryManifest) {
  const ManifestEntry a = Publish(kT1, "A");
  const ManifestEntry b = Publish(kT2, "B");
  Publish(kT3, "C");
  SetCurrent(a);  // rolled back to the oldest

  CleanupOptions options;
  options.keep_last = 1;
  auto report = Cleanup(store_, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed_runs, std::vector<std::string>{"B"});
  EXPECT_FALSE(Exists(ShardKey("B", 0, 0)));
  EXPECT_FALSE(Exists(VectorMetaKey("B", "centroids.npy")));
  EXPECT_TRUE(Exists(b.key)) << "manifests are never deleted";
  EXPECT_TRUE(Exists(ShardKey("A", 1, 0)));
  EXPECT_TRUE(Exists(ShardKey("C", 1, 0)));
  EXPECT_EQ(ListManifests(store_, 0)->size(), 3u);

  // B's manifest is still listed, but its shards are gone: it must not become current.
  const std::string before = Current();
  auto rollback = Rollback(store_, b);
  EXPECT_EQ(rollback.status().code(), StatusCode::kNotFound) << rollback.status().ToString();
  EXPECT_NE(rollback.status().message().find(ShardKey("B", 0, 0)), std::string::npos);
  EXPECT_EQ(Current(), before);
}

TEST_F(CleanupTest, OlderThanKeepsYoungManifestsAndUnitesWithKeepLast) {
  Publish(kT1, "A");
  Publish(kT2, "B");
  SetCurrent(Publish(kT4, "D"));

  CleanupOptions dry;
  dry.dry_run = true;
  dry.now = At("2026-01-04T12:00:00Z");
  dry.older_than = std::chrono::hours(24 * 3);  // cutoff 2026-01-01T12:00Z: only A is older
  auto report = Cleanup(store_, dry);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed_runs, std::vector<std::string>{"A"});

  dry.older_than = std::chrono::hours(1);  // nothing is that young; D stays as the current run
  EXPECT_EQ(Cleanup(store_, dry)->removed_runs, (std::vector<std::string>{"A", "B"}));

  dry.keep_last = 2;  // kept: D (current) or B (second newest), so a union, not an intersection
  EXPECT_EQ(Cleanup(store_, dry)->removed_runs, std::vector<std::string>{"A"});
}

TEST_F(CleanupTest, NeverRemovesARunWhoseWriterHoldsALiveLease) {
  SetCurrent(Publish(kT1, "A"));
  const SystemTime now = At("2026-02-01T00:00:00Z");
  for (const std::string run : {"inflight", "expired", "failed"}) Put(ShardKey(run, 0, 0), run);
  WriteRunRecord("inflight", "running", "2026-02-01T00:05:00.000000Z");
  WriteRunRecord("expired", "running", "2026-01-31T23:55:00.000000Z");
  WriteRunRecord("failed", "failed", "2026-02-01T00:05:00.000000Z");

  CleanupOptions options;
  options.now = now;
  options.keep_last = 1;
  auto report = Cleanup(store_, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed_runs, (std::vector<std::string>{"expired", "failed"}));
  EXPECT_TRUE(Exists(ShardKey("inflight", 0, 0)));
  EXPECT_FALSE(Exists(ShardKey("expired", 0, 0)));
  EXPECT_NE(std::find(report->kept_runs.begin(), report->kept_runs.end(), "inflight"),
            report->kept_runs.end());
}

TEST_F(CleanupTest, WorksUnderACustomLayoutAndHonoursLiveRunsOfAnotherRegistry) {
  const KeyLayout layout{"blobs", "shard-{db_id:03d}", "registry"};
  const ManifestEntry old_snapshot = Publish(kT1, "A", {{0, 0}, {1, 0}}, layout);
  SetCurrent(Publish(kT2, "K", {{0, 0}, {1, 0}}, layout));
  Put(ShardKey("K", 0, 1, layout), "a lost retry");
  for (const std::string run : {"orphan", "inflight", "elsewhere"}) Put(ShardKey(run, 0, 0, layout), run);
  WriteRunRecord("inflight", "running", "2026-02-01T00:05:00.000000Z", "registry");

  CleanupOptions defaults;  // shards/ and runs/: nothing of this layout is considered
  defaults.now = At("2026-02-01T00:00:00Z");
  auto untouched = Cleanup(store_, defaults);
  ASSERT_TRUE(untouched.ok()) << untouched.status().ToString();
  EXPECT_TRUE(untouched->deleted_keys.empty());

  CleanupOptions options = defaults;
  options.shard_prefix = "blobs";
  options.run_registry_prefix = "registry";
  options.live_runs = {"elsewhere"};
  options.keep_last = 1;
  auto report = Cleanup(store_, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->removed_runs, (std::vector<std::string>{"A", "orphan"}));
  EXPECT_EQ(report->deleted_keys,
            (std::vector<std::string>{ShardKey("A", 0, 0, layout), ShardKey("A", 1, 0, layout),
                                      "blobs/run_id=K/shard-000/attempt=01/shard.db",
                                      ShardKey("orphan", 0, 0, layout), VectorMetaKey("A", "centroids.npy")}));
  EXPECT_TRUE(Exists("blobs/run_id=K/shard-000/attempt=00/shard.db"));
  EXPECT_TRUE(Exists(ShardKey("inflight", 0, 0, layout)));
  EXPECT_TRUE(Exists(ShardKey("elsewhere", 0, 0, layout)));
  // A rollback reads the shard keys from the manifest's own layout, so it sees A's are gone.
  auto rollback = Rollback(store_, old_snapshot);
  EXPECT_EQ(rollback.status().code(), StatusCode::kNotFound);
  EXPECT_NE(rollback.status().message().find(ShardKey("A", 0, 0, layout)), std::string::npos)
      << rollback.status().message();

  options.shard_prefix = "a/b";
  EXPECT_EQ(Cleanup(store_, options).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(CleanupTest, RemovesAttemptFoldersTheManifestDoesNotName) {
  SetCurrent(Publish(kT1, "A", {{0, 1}, {1, 0}}));
  Put(ShardKey("A", 0, 0), "a lost retry");
  Put(ShardKey("A", 0, 2), "another");

  auto report = Cleanup(store_, CleanupOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->deleted_keys,
            (std::vector<std::string>{ShardKey("A", 0, 0), ShardKey("A", 0, 2)}));
  EXPECT_TRUE(report->removed_runs.empty());
  EXPECT_TRUE(Exists(ShardKey("A", 0, 1)));
  EXPECT_TRUE(Exists(ShardKey("A", 1, 0)));
  EXPECT_TRUE(Exists(VectorMetaKey("A", "centroids.npy")));
}

// A distributed task's id index part is merged into the run's index at publish; one its driver failed
// to delete goes at cleanup even from a shard folder the manifest names, and the run's index stays.
TEST_F(CleanupTest, RemovesIdIndexPartsLeftInTheShardFoldersOfAKeptRun) {
  SetCurrent(Publish(kT1, "A", {{0, 1}, {1, 0}}));
  Put(ShardIdIndexPartKey("A", 0, 1), "a part the driver failed to delete");
  Put(VectorMetaKey("A", "id_index.bin"), "the run's index");

  auto report = Cleanup(store_, CleanupOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->deleted_keys, std::vector<std::string>{ShardIdIndexPartKey("A", 0, 1)});
  EXPECT_TRUE(Exists(ShardKey("A", 0, 1)));
  EXPECT_TRUE(Exists(VectorMetaKey("A", "id_index.bin")));
}

TEST_F(CleanupTest, KeepsEveryObjectOfARunWhoseManifestDoesNotParse) {
  SetCurrent(Publish(kT2, "B"));
  Put(ManifestKey(kT1, "A"), "not sqlite");
  Put(ShardKey("A", 0, 0), "data");

  auto report = Cleanup(store_, CleanupOptions{});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->deleted_keys.empty());
  EXPECT_TRUE(Exists(ShardKey("A", 0, 0)));
}

TEST_F(CleanupTest, RefusesBadOptionsAndAnUnreadableCurrent) {
  Put(ShardKey("orphan", 0, 0), "x");
  CleanupOptions zero;
  zero.keep_last = 0;
  auto bad = Cleanup(store_, zero);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("keep_last must be >= 1 (got 0)"), std::string::npos);

  Put(std::string(kCurrentKey), "{broken");
  auto corrupt = Cleanup(store_, CleanupOptions{});
  EXPECT_EQ(corrupt.status().code(), StatusCode::kCorruption) << corrupt.status().ToString();
  EXPECT_TRUE(Exists(ShardKey("orphan", 0, 0)));
}

}  // namespace
}  // namespace shardvec
