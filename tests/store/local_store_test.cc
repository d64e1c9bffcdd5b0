#include "store/local_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::TempDir;

class LocalStoreTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  LocalStore store_{tmp_.path() / "store"};
};

TEST_F(LocalStoreTest, PutThenGetReturnsTheBytesAndUrlsAreFileUrls) {
  ASSERT_TRUE(store_.Put("a/b/c.bin", std::string("x\0y", 3)).ok());
  auto got = store_.Get("a/b/c.bin");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, std::string("x\0y", 3));
  EXPECT_EQ(store_.Url("a/b/c.bin"), "file://" + (tmp_.path() / "store/a/b/c.bin").string());
  EXPECT_EQ(store_.PrefixUrl(), "file://" + (tmp_.path() / "store").string());
  EXPECT_EQ(testing::ReadText(tmp_.path() / "store/a/b/c.bin"), std::string("x\0y", 3));
}

TEST_F(LocalStoreTest, MissingObjectIsNotFound) {
  auto got = store_.Get("nope");
  EXPECT_EQ(got.status().code(), StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find("nope"), std::string::npos);
  EXPECT_EQ(store_.Head("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(LocalStoreTest, KeysThatEscapeTheRootAreRejected) {
  EXPECT_EQ(store_.Put("../evil", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.Put("/abs", "x").code(), StatusCode::kInvalidArgument);
}

TEST_F(LocalStoreTest, GetRangeReadsASlice) {
  ASSERT_TRUE(store_.Put("k", "0123456789").ok());
  EXPECT_EQ(*store_.GetRange("k", 3, 4), "3456");
  EXPECT_EQ(*store_.GetRange("k", 8, 10), "89");
  EXPECT_EQ(store_.Head("k")->size, 10);
}

TEST_F(LocalStoreTest, PutIfAbsentNeverOverwrites) {
  ASSERT_TRUE(store_.PutIfAbsent("m", "first").ok());
  Status second = store_.PutIfAbsent("m", "second");
  EXPECT_EQ(second.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(*store_.Get("m"), "first");
}

TEST_F(LocalStoreTest, CompareAndSwapChecksTheVersion) {
  auto v1 = store_.CompareAndSwap("ptr", "one", std::nullopt);
  ASSERT_TRUE(v1.ok());
  // Expecting absence when the object exists loses.
  EXPECT_EQ(store_.CompareAndSwap("ptr", "x", std::nullopt).status().code(), StatusCode::kConflict);
  // A stale version loses and leaves the bytes alone.
  EXPECT_EQ(store_.CompareAndSwap("ptr", "x", "xxh3:0000000000000000").status().code(), StatusCode::kConflict);
  EXPECT_EQ(*store_.Get("ptr"), "one");
  auto v2 = store_.CompareAndSwap("ptr", "two", *v1);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(*store_.Get("ptr"), "two");
  EXPECT_EQ(store_.GetVersioned("ptr")->version, *v2);
}

// A writer killed mid-swap leaves its staged copy of the pointer (".<name>.tmp.<12 hex>") beside it:
// never listed, never read, and removed by the next swap of that key.
TEST_F(LocalStoreTest, TheNextSwapRemovesTheStagedCopyOfAWriterKilledMidSwap) {
  auto v1 = store_.CompareAndSwap("ptr", "one", std::nullopt);
  ASSERT_TRUE(v1.ok());
  const auto leftover = tmp_.path() / "store" / ".ptr.tmp.0123456789ab";
  testing::WriteText(leftover, "half-swapped");
  auto staged = store_.ListStaged();
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  ASSERT_EQ(staged->size(), 1u);
  EXPECT_EQ(store_.List("", "")->objects.size(), 1u) << "staged copies are not objects";
  EXPECT_EQ(*store_.Get("ptr"), "one");
  ASSERT_TRUE(store_.CompareAndSwap("ptr", "two", *v1).ok());
  EXPECT_FALSE(std::filesystem::exists(leftover));
  EXPECT_TRUE(store_.ListStaged()->empty());
  EXPECT_EQ(*store_.Get("ptr"), "two");
}

TEST_F(LocalStoreTest, ConcurrentCompareAndSwapLosesNoUpdate) {
  ASSERT_TRUE(store_.Put("counter", "0").ok());
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto cur = store_.GetVersioned("counter");
        ASSERT_TRUE(cur.ok());
        const int next = std::stoi(cur->data) + 1;
        if (store_.CompareAndSwap("counter", std::to_string(next), cur->version).ok()) ++wins;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(wins.load(), 0);
  EXPECT_EQ(std::stoi(*store_.Get("counter")), wins.load());
}

TEST_F(LocalStoreTest, ListWithDelimiterGroupsFoldersAndHidesStagingFiles) {
  ASSERT_TRUE(store_.Put("manifests/2026_a/manifest", "a").ok());
  ASSERT_TRUE(store_.Put("manifests/2026_b/manifest", "b").ok());
  ASSERT_TRUE(store_.Put("manifests/top", "t").ok());
  ASSERT_TRUE(store_.Put("other/x", "x").ok());
  testing::WriteText(tmp_.path() / "store/manifests/.top.tmp.123", "junk");
  auto listed = store_.List("manifests/", "/");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->common_prefixes.size(), 2u);
  EXPECT_EQ(listed->common_prefixes[0], "manifests/2026_a/");
  EXPECT_EQ(listed->common_prefixes[1], "manifests/2026_b/");
  ASSERT_EQ(listed->objects.size(), 1u);
  EXPECT_EQ(listed->objects[0].key, "manifests/top");
  auto all = store_.List("", "");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->objects.size(), 4u);
}

TEST_F(LocalStoreTest, DeleteRemovesTheObjectAndEmptyFolders) {
  ASSERT_TRUE(store_.Put("shards/run_id=r/db=00000/attempt=00/shard.db", "s").ok());
  ASSERT_TRUE(store_.Delete("shards/run_id=r/db=00000/attempt=00/shard.db").ok());
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() / "store/shards"));
  EXPECT_TRUE(store_.Delete("never-there").ok());
}

TEST_F(LocalStoreTest, WritesRacingDeletesThatPruneTheirFolderNeverFail) {
  // Each thread puts and deletes its own objects in one shared folder two levels deep; every delete
  // that empties the folder prunes it while the other thread may be creating it again.
  std::atomic<int> failures{0};
  std::string first_failure;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        const std::string key = "markers/cleanups/" + std::to_string(t) + "_" + std::to_string(i);
        Status st = i % 2 ? store_.PutIfAbsent(key, "m") : store_.Put(key, "m");
        if (st.ok()) st = store_.Delete(key);
        if (!st.ok() && failures++ == 0) {
          std::lock_guard<std::mutex> lock(mu);
          first_failure = st.ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  EXPECT_FALSE(std::filesystem::exists(tmp_.path() / "store/markers"));
}

TEST_F(LocalStoreTest, PutFileAndGetToFileCopyWholeFiles) {
  const auto src = tmp_ / "src.bin";
  testing::WriteText(src, std::string(100000, 'z'));
  ASSERT_TRUE(store_.PutFile("big", src).ok());
  const auto dst = tmp_ / "dl" / "big.bin";
  ASSERT_TRUE(store_.GetToFile("big", dst, 100000).ok());
  EXPECT_EQ(testing::ReadText(dst), std::string(100000, 'z'));
  // A scratch download (not fsynced) has the same bytes, mode and bound.
  const auto scratch = tmp_ / "dl" / "scratch.bin";
  ASSERT_TRUE(store_.GetToScratchFile("big", scratch, 100000).ok());
  EXPECT_EQ(testing::ReadText(scratch), std::string(100000, 'z'));
  EXPECT_EQ(std::filesystem::status(scratch).permissions(), std::filesystem::status(dst).permissions());
  const Status over = store_.GetToScratchFile("big", tmp_ / "dl" / "over.bin", 99999);
  EXPECT_EQ(over.code(), StatusCode::kCorruption) << over.ToString();
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "dl" / "over.bin"));
}

// On one file system the sealed file is linked into place, not copied; it outlives its source.
TEST_F(LocalStoreTest, PutFileLinksASealedFileOnTheSameFileSystem) {
  const auto src = tmp_ / "sealed.db";
  testing::WriteText(src, "shard bytes");
  ASSERT_TRUE(store_.PutFile("shards/s.db", src).ok());
  const auto object = tmp_.path() / "store/shards/s.db";
  struct stat a {}, b {};
  ASSERT_EQ(::stat(src.c_str(), &a), 0);
  ASSERT_EQ(::stat(object.c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  std::filesystem::remove(src);
  EXPECT_EQ(testing::ReadText(object), "shard bytes");
  EXPECT_TRUE(testing::ListFiles(tmp_.path() / "store/shards") == std::vector<std::string>{"s.db"});  // no staged leftovers
}

TEST(LocalPathFromPrefixTest, AcceptsPathsAndFileUrlsRejectsOtherSchemes) {
  EXPECT_EQ(LocalPathFromPrefix("file:///tmp/x/")->string(), "/tmp/x");
  EXPECT_EQ(LocalPathFromPrefix("/tmp/x/../y")->string(), "/tmp/y");
  EXPECT_TRUE(LocalPathFromPrefix("relative/dir")->is_absolute());
  EXPECT_EQ(LocalPathFromPrefix("gs://bucket").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LocalPathFromPrefix("file://relative").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace shardvec
