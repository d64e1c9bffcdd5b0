// CopySnapshots (shardvec/copy.h): a copy answers every query as the original does, names only DST in
// its manifests and pointer, resumes after a partial copy without uploading again, refuses a corrupt
// source object and never overwrites what DST already holds.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>

#include "shardvec/admin.h"
#include "shardvec/copy.h"
#include "snapshot/publisher.h"
#include "support/forwarding_store.h"
#include "support/id_index_check.h"
#include "support/relocation_support.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

// Fails every PutFile after the first `allowed` (a copy killed part way).
class PutFileBudgetStore final : public testing::ForwardingStore {
 public:
  PutFileBudgetStore(std::shared_ptr<ObjectStore> inner, int allowed)
      : ForwardingStore(std::move(inner)), allowed_(allowed) {}
  Status PutFile(std::string_view key, const std::filesystem::path& source) override {
    if (allowed_.fetch_sub(1) <= 0) return Status::IOError(fmt::format("injected: PutFile '{}' refused", key));
    return ForwardingStore::PutFile(key, source);
  }

 private:
  std::atomic<int> allowed_;
};

class CopyTest : public ::testing::Test {
 protected:
  std::shared_ptr<ObjectStore> Folder(const std::string& name) { return testing::OpenFolderStore(tmp_ / name); }
  // R1 then R2 in tmp/src; returns the answers of R2 (current).
  testing::Answers WriteSource() {
    src_ = Folder("src");
    testing::WriteRelocationRun(src_, "R1", tmp_ / "build");
    testing::WriteRelocationRun(src_, "R2", tmp_ / "build");
    return testing::SearchAnswers(src_, tmp_ / "cache-src");
  }
  CopyOptions Options(int64_t workers = 3) {
    CopyOptions o;
    o.max_workers = workers;
    o.staging_dir = (tmp_ / "staging").string();
    return o;
  }
  testing::Answers Answers(const std::shared_ptr<ObjectStore>& store) {
    return testing::SearchAnswers(store, tmp_ / ("cache-" + std::to_string(++caches_)));
  }
  // Every URL the store's manifests and pointer name is under its own prefix; the raw bytes of its
  // manifests and pointer do not name `other` anywhere.
  void ExpectOnlyOwnUrls(ObjectStore& store, const std::string& other) {
    const std::vector<std::string> urls = testing::SnapshotUrls(store);
    EXPECT_FALSE(urls.empty());
    for (const std::string& url : urls) {
      EXPECT_TRUE(url == store.PrefixUrl() || url.rfind(store.PrefixUrl() + "/", 0) == 0) << url;
    }
    std::vector<std::string> keys = testing::ManifestKeys(store);
    keys.push_back("_CURRENT");
    for (const std::string& key : keys) {
      auto bytes = store.Get(key);
      ASSERT_TRUE(bytes.ok()) << key;
      EXPECT_EQ(bytes->find(other), std::string::npos) << key << " names " << other;
    }
  }
  std::string CurrentRun(ObjectStore& store) {
    auto current = ReadCurrentSnapshot(store);
    EXPECT_TRUE(current.ok() && *current) << current.status().ToString();
    return current.ok() && *current ? (*current)->run_id : std::string();
  }
  testing::TempDir tmp_;
  std::shared_ptr<ObjectStore> src_;
  int caches_ = 0;
};

TEST_F(CopyTest, AFolderCopyAnswersAsTheOriginalAndNamesOnlyItsOwnUrls) {
  const testing::Answers before = WriteSource();
  auto dst = Folder("dst");
  auto report = CopySnapshots(*src_, *dst, Options());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  // The current snapshot (R2): 4 shards, its centroids and its id index.
  EXPECT_EQ(report->objects_copied, 6);
  EXPECT_EQ(report->objects_skipped, 0);
  EXPECT_EQ(report->run_id, "R2");
  EXPECT_EQ(report->manifests.size(), 1u);
  EXPECT_EQ(report->current_ref, report->manifests.back());
  EXPECT_EQ(Answers(dst), before);
  ExpectOnlyOwnUrls(*dst, src_->PrefixUrl());
  // The copy's manifest names the copied id index, which names the copy's shards right.
  auto manifest = ReadManifest(*dst, *KeyFromUrl(dst->PrefixUrl(), report->current_ref), report->current_ref);
  ASSERT_TRUE(manifest.ok()) << manifest.status().ToString();
  EXPECT_GT(testing::ExpectIdIndexMatchesShards(*dst, *manifest, tmp_ / "scratch"), 0);
  // Only R2's objects: R1's were not asked for.
  for (const std::string& file : testing::ListFiles(tmp_ / "dst")) EXPECT_THAT(file, ::testing::Not(HasSubstr("R1")));
}

TEST_F(CopyTest, ARunIdCopiesThatSnapshotAndMakesItCurrent) {
  WriteSource();
  ASSERT_TRUE(RollbackSnapshot(*src_, RollbackTarget{.run_id = "R1"}).ok());
  const testing::Answers r1 = Answers(src_);
  ASSERT_TRUE(RollbackSnapshot(*src_, RollbackTarget{.run_id = "R2"}).ok());
  auto dst = Folder("dst");
  CopyOptions o = Options();
  o.run_id = "R1";
  auto report = CopySnapshots(*src_, *dst, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->run_id, "R1");
  EXPECT_EQ(CurrentRun(*dst), "R1");
  EXPECT_EQ(Answers(dst), r1);

  o.run_id = "NOPE";
  auto missing = CopySnapshots(*src_, *dst, o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("NOPE"));
}

TEST_F(CopyTest, AllHistoryCopiesEveryManifestAndServesWhatTheSourceServes) {
  WriteSource();
  ASSERT_TRUE(RollbackSnapshot(*src_, RollbackTarget{.run_id = "R1"}).ok());
  const testing::Answers r1 = Answers(src_);
  auto dst = Folder("dst");
  CopyOptions o = Options();
  o.all_history = true;
  auto report = CopySnapshots(*src_, *dst, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->objects_copied, 12);  // each run's shards, routing file and id index
  EXPECT_EQ(testing::ManifestKeys(*dst), testing::ManifestKeys(*src_));
  EXPECT_EQ(CurrentRun(*dst), "R1");
  EXPECT_EQ(Answers(dst), r1);
  ExpectOnlyOwnUrls(*dst, src_->PrefixUrl());
  // The copy is a store of its own: rolling it forward serves R2.
  ASSERT_TRUE(RollbackSnapshot(*dst, RollbackTarget{.run_id = "R2"}).ok());
  ASSERT_TRUE(RollbackSnapshot(*src_, RollbackTarget{.run_id = "R2"}).ok());
  EXPECT_EQ(Answers(dst), Answers(src_));
}

TEST_F(CopyTest, ACopyStoppedPartWayResumesWithoutUploadingAgain) {
  const testing::Answers before = WriteSource();
  auto dst = Folder("dst");
  auto failing = std::make_shared<PutFileBudgetStore>(dst, 2);
  auto stopped = CopySnapshots(*src_, *failing, Options(1));
  ASSERT_FALSE(stopped.ok());
  EXPECT_THAT(stopped.status().message(), HasSubstr("injected"));
  // Nothing published: no manifest, no pointer.
  EXPECT_EQ(testing::ManifestKeys(*dst), std::vector<std::string>{});
  EXPECT_FALSE(fs::exists(tmp_ / "dst" / "_CURRENT"));

  auto resumed = CopySnapshots(*src_, *dst, Options());
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  EXPECT_EQ(resumed->objects_skipped, 2);
  EXPECT_EQ(resumed->objects_copied, 4);
  EXPECT_EQ(Answers(dst), before);
  // Once more: everything is there, the manifest included; nothing is written.
  auto again = CopySnapshots(*src_, *std::make_shared<PutFileBudgetStore>(dst, 0), Options());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->objects_skipped, 6);
  EXPECT_EQ(again->objects_copied, 0);
  // The staging folder is left empty.
  EXPECT_EQ(testing::ListFiles(tmp_ / "staging"), std::vector<std::string>{});
}

TEST_F(CopyTest, ACorruptSourceObjectFailsTheCopyNamingItAndPublishesNothing) {
  WriteSource();
  std::string shard_file;
  for (const std::string& file : testing::ListFiles(tmp_ / "src")) {
    if (file.find("run_id=R2/db=00001/") != std::string::npos && file.ends_with("shard.db")) shard_file = file;
  }
  ASSERT_FALSE(shard_file.empty());
  std::string bytes = testing::ReadText(tmp_ / "src" / shard_file);
  bytes[bytes.size() / 2] ^= 0x5a;  // same size, one byte flipped
  testing::WriteText(tmp_ / "src" / shard_file, bytes);
  auto dst = Folder("dst");
  auto report = CopySnapshots(*src_, *dst, Options());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kCorruption);
  EXPECT_THAT(report.status().message(), HasSubstr(src_->Url(shard_file)));
  EXPECT_THAT(report.status().message(), HasSubstr("digest"));
  EXPECT_FALSE(fs::exists(tmp_ / "dst" / shard_file));
  EXPECT_EQ(testing::ManifestKeys(*dst), std::vector<std::string>{});
  EXPECT_FALSE(fs::exists(tmp_ / "dst" / "_CURRENT"));
}

TEST_F(CopyTest, WhatDstAlreadyHoldsIsNeverOverwritten) {
  WriteSource();
  auto dst = Folder("dst");
  ASSERT_TRUE(CopySnapshots(*src_, *dst, Options()).ok());
  // A different object under a key the copy writes.
  std::string shard_file;
  for (const std::string& file : testing::ListFiles(tmp_ / "dst")) {
    if (file.ends_with("shard.db")) shard_file = file;
  }
  std::string bytes = testing::ReadText(tmp_ / "dst" / shard_file);
  bytes[bytes.size() / 2] ^= 0x5a;
  testing::WriteText(tmp_ / "dst" / shard_file, bytes);
  auto report = CopySnapshots(*src_, *dst, Options());
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kConflict);
  EXPECT_THAT(report.status().message(), HasSubstr(dst->Url(shard_file)));
  EXPECT_EQ(testing::ReadText(tmp_ / "dst" / shard_file), bytes);

  // A DST serving a snapshot SRC does not hold.
  auto other = Folder("other");
  testing::WriteRelocationRun(other, "OTHER", tmp_ / "build");
  auto refused = CopySnapshots(*src_, *other, Options());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kConflict);
  EXPECT_THAT(refused.status().message(), HasSubstr("SRC does not hold"));
  EXPECT_EQ(CurrentRun(*other), "OTHER");
}

TEST_F(CopyTest, AMovedStoreCopiesToAStoreNamingOnlyItsOwnUrls) {
  const testing::Answers before = WriteSource();
  src_.reset();
  fs::rename(tmp_ / "src", tmp_ / "moved");
  auto moved = Folder("moved");
  auto dst = Folder("dst");
  CopyOptions o = Options();
  o.all_history = true;
  auto report = CopySnapshots(*moved, *dst, o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(Answers(dst), before);
  ExpectOnlyOwnUrls(*dst, "file://" + (tmp_ / "src").string());
}

TEST_F(CopyTest, BadOptionsAreRefusedNamingThem) {
  WriteSource();
  auto dst = Folder("dst");
  CopyOptions both = Options();
  both.run_id = "R1";
  both.all_history = true;
  auto r = CopySnapshots(*src_, *dst, both);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("all_history"));
  CopyOptions workers = Options(-1);
  r = CopySnapshots(*src_, *dst, workers);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("max_workers must be in 0..1024"));
  r = CopySnapshots(*src_, *src_, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("same store"));
  fs::create_directories(tmp_ / "empty");
  auto empty = Folder("empty");
  r = CopySnapshots(*empty, *dst, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("has no _CURRENT"));
  EXPECT_FALSE(fs::exists(tmp_ / "dst" / "_CURRENT"));
  EXPECT_FALSE(fs::exists(tmp_ / "dst" / "manifests"));
}

class S3CopyTest : public CopyTest {};

TEST_F(S3CopyTest, FolderToS3ToFolderAnswersAsTheOriginal) {
  const testing::Answers before = WriteSource();
  auto s3 = testing::OpenS3TestStore(testing::UniqueS3Prefix("copy"));
  ASSERT_TRUE(s3);
  CopyOptions o = Options();
  o.all_history = true;
  auto up = CopySnapshots(*src_, *s3, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->objects_copied, 12);  // each run's shards, routing file and id index
  EXPECT_EQ(Answers(s3), before);
  ExpectOnlyOwnUrls(*s3, src_->PrefixUrl());

  // S3 to S3, resumed: the first two objects were already there.
  auto s3b = testing::OpenS3TestStore(testing::UniqueS3Prefix("copy-b"));
  ASSERT_TRUE(s3b);
  ASSERT_FALSE(CopySnapshots(*s3, *std::make_shared<PutFileBudgetStore>(s3b, 2), Options(1)).ok());
  auto across = CopySnapshots(*s3, *s3b, o);
  ASSERT_TRUE(across.ok()) << across.status().ToString();
  EXPECT_EQ(across->objects_skipped, 2);
  EXPECT_EQ(across->objects_copied, 10);
  ExpectOnlyOwnUrls(*s3b, s3->PrefixUrl());

  auto down = Folder("down");
  auto back = CopySnapshots(*s3b, *down, o);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(Answers(down), before);
  ExpectOnlyOwnUrls(*down, s3b->PrefixUrl());
  EXPECT_EQ(testing::ManifestKeys(*down), testing::ManifestKeys(*src_));
}

}  // namespace
}  // namespace shardvec
