// The writer's local build folders: a per-user private default, a local_root others could write or
// own refused before anything is uploaded, the folders of killed builds reclaimed by the next build
// in the same root (a live build's kept), and build threads the system refuses reported as an error.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shardvec/writer.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr uid_t kOtherUid = 65534;  // nobody

class LocalRootTest : public ::testing::Test {
 protected:
  WriteConfig Config(const std::string& local_root, const std::string& run_id) const {
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = local_root;
    c.index.dim = data_.cols;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = 3;
    c.run_id = run_id;
    return c;
  }
  Result<BuildResult> Write(const WriteConfig& c) const {
    VectorRecordSource source(testing::MakeRecords(data_, false));
    return WriteSharded(c, source);
  }
  // The same rows as one in-memory batch: routed on max_parallel_shards threads.
  Result<BuildResult> WriteInMemory(const WriteConfig& c) const {
    return WriteSharded(c, RecordBatch{data_.rows, data_.cols, data_.data.data()});
  }
  std::vector<std::string> StoreFiles() const {
    return fs::exists(tmp_ / "store") ? testing::ListFiles(tmp_ / "store") : std::vector<std::string>{};
  }
  Matrix data_ = testing::RandomMatrix(90, 6, 4);
  testing::TempDir tmp_;
};

TEST_F(LocalRootTest, TheDefaultBuildFolderIsThisUsersPrivateFolderAndIsLeftEmpty) {
  auto built = [&] {
    testing::ScopedEnv xdg("XDG_CACHE_HOME", (tmp_ / "xdg").string());
    return Write(Config("", "D1"));
  }();
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  const fs::path build = tmp_ / "xdg" / "shardvec" / "build";
  struct stat st {};
  ASSERT_EQ(::stat(build.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(fs::is_empty(build));  // no run folder, no lock file
}

TEST_F(LocalRootTest, ALocalRootOthersCanWriteOrOwnIsRefusedBeforeAnyUpload) {
  const fs::path open = tmp_ / "open";
  fs::create_directories(open);
  ASSERT_EQ(::chmod(open.c_str(), 0777), 0);
  auto built = Write(Config(open.string(), "O1"));
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(built.status().message(),
              HasSubstr("build folder (local_root) '" + open.string() + "' is not private"));
  EXPECT_THAT(built.status().message(), HasSubstr("mode 0777 lets others write it"));
  EXPECT_TRUE(fs::is_empty(open));
  EXPECT_EQ(StoreFiles(), std::vector<std::string>{});

  if (::geteuid() != 0) GTEST_SKIP() << "making a folder another user owns needs root";
  const fs::path theirs = tmp_ / "theirs";
  fs::create_directories(theirs);
  ASSERT_EQ(::chmod(theirs.c_str(), 0700), 0);
  ASSERT_EQ(::chown(theirs.c_str(), kOtherUid, kOtherUid), 0);
  built = Write(Config(theirs.string(), "O2"));
  ASSERT_FALSE(built.ok());
  EXPECT_THAT(built.status().message(), HasSubstr(fmt::format("it is owned by uid {}", kOtherUid)));
  EXPECT_TRUE(fs::is_empty(theirs));
  EXPECT_EQ(StoreFiles(), std::vector<std::string>{});
}

// Killed builds leave run_id=… folders (and lock files); the next build in the root removes those
// whose lock no live process holds. A live build's folder, held here by a child process, stays.
TEST_F(LocalRootTest, KilledBuildsFoldersAreReclaimedLiveOnesKept) {
  const fs::path root = tmp_ / "lr";
  fs::create_directories(root / "run_id=dead" / "db=00000" / "attempt=00");
  testing::WriteText(root / "run_id=dead" / "db=00000" / "attempt=00" / "shard.db", "half a shard");
  testing::WriteText(root / ".run_id=dead.lock", "");
  fs::create_directories(root / "run_id=old-version" / "spool");  // no lock file at all
  testing::WriteText(root / "run_id=old-version" / "spool" / "db=00001.spool", "rows");
  testing::WriteText(root / ".run_id=lone.lock", "");
  fs::create_directories(root / "run_id=live" / "spool");
  testing::WriteText(root / "run_id=live" / "spool" / "db=00000.spool", "rows being written");
  testing::WriteText(root / "unrelated.txt", "not ours: kept");
  {
    testing::LockHolder live_build(root / ".run_id=live.lock");
    // The live build's run id cannot be reused meanwhile.
    auto same = Write(Config(root.string(), "live"));
    ASSERT_FALSE(same.ok());
    EXPECT_EQ(same.status().code(), StatusCode::kAlreadyExists);
    EXPECT_THAT(same.status().message(), HasSubstr("another live build with run_id 'live'"));

    auto built = Write(Config(root.string(), "R1"));
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    EXPECT_EQ(testing::ListFiles(root),
              (std::vector<std::string>{".run_id=live.lock", "run_id=live/spool/db=00000.spool", "unrelated.txt"}));
    EXPECT_FALSE(fs::exists(root / "run_id=dead"));
    EXPECT_FALSE(fs::exists(root / "run_id=old-version"));
  }
  // Its process gone, the next build reclaims it too.
  auto built = Write(Config(root.string(), "R2"));
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  EXPECT_EQ(testing::ListFiles(root), std::vector<std::string>{"unrelated.txt"});
  EXPECT_FALSE(fs::exists(root / "run_id=live"));
}

TEST_F(LocalRootTest, ParallelismIsBoundedAndRefusedThreadsAreAnError) {
  for (int64_t bad : {int64_t{-1}, int64_t{1025}}) {
    WriteConfig c = Config((tmp_ / "lr").string(), "P" + std::to_string(bad + 2));
    c.max_parallel_shards = bad;
    auto built = Write(c);
    ASSERT_FALSE(built.ok());
    EXPECT_EQ(built.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(built.status().message(), HasSubstr("max_parallel_shards must be in 0..1024"));
    EXPECT_THAT(built.status().message(), HasSubstr("got " + std::to_string(bad)));
  }
  if (testing::SanitizedBuild()) GTEST_SKIP() << "sanitizer shadow memory does not fit an address-space cap";
  WriteConfig c = Config((tmp_ / "lr").string(), "CAPPED");
  c.max_parallel_shards = 1000;
  const std::string outcome = testing::RunWithAddressSpaceCap(256 << 20, [&] {
    auto built = WriteInMemory(c);
    if (built.ok()) return std::string("1000 build threads started under the cap");
    const std::string message = built.status().ToString();
    if (message.find("cannot start a thread") == std::string::npos ||
        message.find("(max_parallel_shards)") == std::string::npos) {
      return "unexpected error: " + message;
    }
    return std::string();
  });
  EXPECT_EQ(outcome, "");
  EXPECT_FALSE(fs::exists(tmp_ / "store" / "_CURRENT"));  // nothing published
  EXPECT_EQ(testing::ListFiles(tmp_ / "lr"), std::vector<std::string>{});
}

}  // namespace
}  // namespace shardvec
