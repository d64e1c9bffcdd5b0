// The reader's shard cache folder: a per-user private default, folders others could write or own
// refused, partial downloads of killed readers removed at open, and search threads the system
// refuses reported as an error.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "store/local_store.h"
#include "support/forwarding_store.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A uid no test file belongs to: `nobody`.
constexpr uid_t kOtherUid = 65534;

unsigned ModeOf(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<unsigned>(st.st_mode & 07777);
}

class PrivateCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteConfig c;
    c.store = Store();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = data_.cols;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 2;
    VectorRecordSource source(testing::MakeRecords(data_, false));
    auto built = WriteSharded(c, source);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
  }
  std::string Store() const { return (tmp_ / "store").string(); }
  Result<std::unique_ptr<ShardedVectorReader>> Open(const std::string& cache_dir, int64_t max_workers = 0) {
    ReaderOptions o;
    o.store = Store();
    o.cache_dir = cache_dir;
    o.max_workers = max_workers;
    // Through a wrapper the folder store is read as a remote one, its shards downloaded into the
    // cache folder (a folder store itself is read in place).
    return ShardedVectorReader::Open(o, std::make_shared<testing::ForwardingStore>(std::make_shared<LocalStore>(Store())));
  }
  void ExpectAnswers(ShardedVectorReader& reader) {
    SearchOptions all;
    all.shard_ids = std::vector<int64_t>{0, 1};
    auto r = reader.Search(std::span<const float>(data_.row(7), static_cast<size_t>(data_.cols)), 1, all);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->results.at(0).id, RecordId(int64_t{21}));
  }
  Matrix data_ = testing::RandomMatrix(60, 6, 3);
  testing::TempDir tmp_;
};

TEST_F(PrivateCacheTest, TheDefaultCacheIsThisUsersPrivateFolder) {
  testing::ScopedEnv xdg("XDG_CACHE_HOME", (tmp_ / "xdg").string());
  auto reader = Open("");
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  ExpectAnswers(**reader);
  const fs::path root = tmp_ / "xdg" / "shardvec";
  for (const fs::path& level : {root, root / "shards"}) EXPECT_EQ(ModeOf(level), 0700u) << level;
  bool cached = false;
  for (const std::string& f : testing::ListFiles(root / "shards")) cached = cached || f.ends_with("/shard.db");
  EXPECT_TRUE(cached) << "no shard under " << root / "shards";

  // Without XDG_CACHE_HOME: ~/.cache/shardvec.
  testing::ScopedEnv no_xdg("XDG_CACHE_HOME", "");
  testing::ScopedEnv home("HOME", (tmp_ / "home").string());
  auto second = Open("");
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ExpectAnswers(**second);
  EXPECT_EQ(ModeOf(tmp_ / "home" / ".cache" / "shardvec"), 0700u);
}

TEST_F(PrivateCacheTest, ACacheFolderOthersCanWriteIsRefused) {
  for (const auto& [mode, who] : {std::pair{0777u, "others"}, std::pair{0770u, "its group"}}) {
    const fs::path dir = tmp_ / ("open" + std::to_string(mode));
    fs::create_directories(dir);
    ASSERT_EQ(::chmod(dir.c_str(), mode), 0);
    auto reader = Open(dir.string());
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);
    const std::string message = reader.status().message();
    EXPECT_THAT(message, HasSubstr("shard cache folder (cache_dir) '" + dir.string() + "' is not private"));
    EXPECT_THAT(message, HasSubstr(fmt::format("mode {:04o} lets {} write it", mode, who)));
    EXPECT_THAT(message, HasSubstr("chmod 700"));
    EXPECT_TRUE(testing::ListFiles(dir).empty());  // nothing was downloaded into it
  }
  // The default's own levels are checked too.
  testing::ScopedEnv xdg("XDG_CACHE_HOME", (tmp_ / "xdg").string());
  fs::create_directories(tmp_ / "xdg" / "shardvec" / "shards");
  ASSERT_EQ(::chmod((tmp_ / "xdg" / "shardvec" / "shards").c_str(), 0777), 0);
  auto reader = Open("");
  ASSERT_FALSE(reader.ok());
  EXPECT_THAT(reader.status().message(), HasSubstr("default shard cache folder '" +
                                                   (tmp_ / "xdg" / "shardvec" / "shards").string()));
}

TEST_F(PrivateCacheTest, ACacheFolderOwnedBySomeoneElseIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "making a folder another user owns needs root";
  const fs::path dir = tmp_ / "theirs";
  fs::create_directories(dir);
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  ASSERT_EQ(::chown(dir.c_str(), kOtherUid, kOtherUid), 0);
  auto reader = Open(dir.string());
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(reader.status().message(),
              HasSubstr(fmt::format("'{}' is not private: it is owned by uid {}, not by this user (uid {})",
                                    dir.string(), kOtherUid, ::geteuid())));
  EXPECT_TRUE(testing::ListFiles(dir).empty());
}

TEST_F(PrivateCacheTest, PartialDownloadsOfKilledReadersGoAtOpen) {
  const fs::path cache = tmp_ / "cache";
  const fs::path folder = cache / "db=00000-left";
  fs::create_directories(folder);
  testing::WriteText(folder / ".shard.db.tmp.0123456789ab", "a killed reader's partial download");
  auto reader = Open(cache.string());
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_FALSE(fs::exists(folder / ".shard.db.tmp.0123456789ab"));
  ExpectAnswers(**reader);
}

TEST_F(PrivateCacheTest, WorkerCountsAreBoundedAndRefusedThreadsAreAnError) {
  for (int64_t bad : {int64_t{-1}, int64_t{1025}}) {
    auto reader = Open((tmp_ / "cache").string(), bad);
    ASSERT_FALSE(reader.ok());
    EXPECT_EQ(reader.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(reader.status().message(), HasSubstr("max_workers must be in 0..1024"));
    EXPECT_THAT(reader.status().message(), HasSubstr("got " + std::to_string(bad)));
  }
  if (testing::SanitizedBuild()) GTEST_SKIP() << "sanitizer shadow memory does not fit an address-space cap";
  const std::string cache = (tmp_ / "cache").string();
  const std::string outcome = testing::RunWithAddressSpaceCap(256 << 20, [&] {
    auto reader = Open(cache, 1000);
    if (reader.ok()) return std::string("1000 search threads started under the cap");
    const std::string message = reader.status().ToString();
    if (message.find("cannot start a thread for the reader's searches (max_workers)") == std::string::npos ||
        message.find("1000 threads asked for") == std::string::npos) {
      return "unexpected error: " + message;
    }
    return std::string();
  });
  EXPECT_EQ(outcome, "");
}

}  // namespace
}  // namespace shardvec
