// A folder store written by someone else: symlinks, FIFOs, devices and folders where objects should
// be, symlinked key folders and oversized (sparse) files. None may leak a file from outside the
// store, hang a read, fill the disk or memory, or let Delete remove anything outside the store.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <future>

#include "format/keys.h"
#include "read/snapshot_loader.h"
#include "store/local_store.h"
#include "support/test_util.h"
#include "snapshot/publisher.h"

namespace shardvec {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr char kSecret[] = "root:x:0:0:secret-line-from-outside-the-store";
constexpr char kShardKey[] = "shards/run_id=r/db=00000/attempt=00/shard.db";

class LocalStoreHostileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(root_ / "shards/run_id=r/db=00000/attempt=00");
    testing::WriteText(outside_, kSecret);
  }

  // Every read of `key` fails with Corruption naming the key and `kind`, without the outside file's
  // bytes or size, and leaves no downloaded file.
  void ExpectEveryReadRefused(const std::string& key, const std::string& kind) {
    const std::string secret_size = std::to_string(sizeof(kSecret) - 1);
    const fs::path dest = tmp_ / "dl/copy.db";
    std::vector<std::pair<std::string, Status>> reads = {
        {"Get", store_.Get(key).status()},
        {"GetVersioned", store_.GetVersioned(key).status()},
        {"GetRange", store_.GetRange(key, 0, 10).status()},
        {"Head", store_.Head(key).status()},
        {"GetToFile", store_.GetToFile(key, dest, 1 << 20)},
    };
    for (const auto& [what, st] : reads) {
      EXPECT_EQ(st.code(), StatusCode::kCorruption) << what << ": " << st.ToString();
      EXPECT_NE(st.message().find(store_.Url(key)), std::string::npos) << what << ": " << st.message();
      EXPECT_NE(st.message().find(kind), std::string::npos) << what << ": " << st.message();
      EXPECT_EQ(st.message().find("secret-line"), std::string::npos) << what << ": " << st.message();
      EXPECT_EQ(st.message().find(secret_size + " bytes"), std::string::npos) << what << ": " << st.message();
    }
    EXPECT_FALSE(fs::exists(dest));
    ExpectNoDownload();
  }

  // Nothing was left where downloads go: no copy, no staged temp file.
  void ExpectNoDownload() {
    if (fs::exists(tmp_ / "dl")) {
      EXPECT_EQ(testing::ListFiles(tmp_ / "dl"), std::vector<std::string>{});
    }
  }

  // Runs `read` on a thread; a read that waits on a FIFO is released by opening its writer end
  // (and the test fails) instead of hanging the suite.
  Status WithoutHanging(const fs::path& fifo, const std::function<Status()>& read) {
    auto done = std::async(std::launch::async, read);
    if (done.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
      ADD_FAILURE() << "the read waited on the FIFO " << fifo;
      const int fd = ::open(fifo.c_str(), O_WRONLY);  // gives the blocked reader its EOF
      if (fd >= 0) ::close(fd);
    }
    return done.get();
  }

  TempDir tmp_;
  fs::path root_ = tmp_ / "store";
  fs::path outside_ = tmp_ / "passwd";
  LocalStore store_{root_};
};

TEST_F(LocalStoreHostileTest, ShardSymlinkedToAFileOutsideIsRefusedAndNeverCopied) {
  fs::create_symlink(outside_, root_ / kShardKey);
  ExpectEveryReadRefused(kShardKey, "symbolic link");
}

TEST_F(LocalStoreHostileTest, ShardSymlinkedToDevZeroFailsWithoutFillingTheDisk) {
  fs::create_symlink("/dev/zero", root_ / kShardKey);
  ExpectEveryReadRefused(kShardKey, "symbolic link");
}

TEST_F(LocalStoreHostileTest, DeviceNodeAsShardIsRefused) {
  if (::mknod((root_ / kShardKey).c_str(), S_IFCHR | 0600, makedev(1, 5)) != 0) {
    GTEST_SKIP() << "cannot create a device node here (needs CAP_MKNOD)";
  }
  ExpectEveryReadRefused(kShardKey, "character device");
}

TEST_F(LocalStoreHostileTest, FolderAsObjectIsRefused) {
  fs::create_directories(root_ / kShardKey);
  ExpectEveryReadRefused(kShardKey, "folder");
}

TEST_F(LocalStoreHostileTest, FifoAsShardFailsAtOnce) {
  ASSERT_EQ(::mkfifo((root_ / kShardKey).c_str(), 0600), 0);
  const Status st = WithoutHanging(root_ / kShardKey, [&] {
    return store_.GetToFile(kShardKey, tmp_ / "dl/copy.db", 1 << 20);
  });
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("FIFO"), std::string::npos) << st.message();
  ExpectEveryReadRefused(kShardKey, "FIFO");
}

TEST_F(LocalStoreHostileTest, FifoAsCurrentFailsAtOnceForReadersAndPublishers) {
  ASSERT_EQ(::mkfifo((root_ / std::string(kCurrentKey)).c_str(), 0600), 0);
  const Status read = WithoutHanging(root_ / std::string(kCurrentKey),
                                     [&] { return LoadCurrentPointer(store_).status(); });
  EXPECT_EQ(read.code(), StatusCode::kCorruption) << read.ToString();
  EXPECT_NE(read.message().find("FIFO"), std::string::npos) << read.message();
  const Status swap = WithoutHanging(root_ / std::string(kCurrentKey), [&] {
    return store_.CompareAndSwap(kCurrentKey, "{}", std::nullopt).status();
  });
  EXPECT_EQ(swap.code(), StatusCode::kCorruption) << swap.ToString();
  struct stat st {};
  ASSERT_EQ(::lstat((root_ / std::string(kCurrentKey)).c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));  // not replaced behind the reader's back
}

TEST_F(LocalStoreHostileTest, ShardLargerThanAllowedFailsBeforeCopying) {
  testing::WriteText(root_ / kShardKey, std::string(5000, 's'));
  const fs::path dest = tmp_ / "dl/copy.db";
  const Status st = store_.GetToFile(kShardKey, dest, 4096);
  EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
  EXPECT_NE(st.message().find("5000 bytes"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("4096"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(dest));
  ExpectNoDownload();
  EXPECT_EQ(store_.Get(kShardKey, 4999).status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(store_.GetToFile(kShardKey, dest, 5000).ok());
}

TEST_F(LocalStoreHostileTest, SparseHugeObjectsAreRefusedWithoutAllocating) {
  for (const std::string& key : {std::string(kCurrentKey), std::string("manifests/m/manifest")}) {
    fs::create_directories((root_ / key).parent_path());
    {
      const int fd = ::open((root_ / key).c_str(), O_CREAT | O_WRONLY, 0644);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::ftruncate(fd, int64_t{100} << 30), 0);  // 100 GiB, no disk used
      ::close(fd);
    }
    const auto got = store_.Get(key);
    EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << got.status().ToString();
    EXPECT_NE(got.status().message().find(std::to_string(int64_t{100} << 30)), std::string::npos);
    EXPECT_NE(got.status().message().find(std::to_string(kMaxMetadataObjectBytes)), std::string::npos);
  }
  const auto pointer = LoadCurrentPointer(store_);
  EXPECT_EQ(pointer.status().code(), StatusCode::kCorruption);
  EXPECT_NE(pointer.status().message().find(std::to_string(kMaxCurrentPointerBytes)), std::string::npos)
      << pointer.status().message();
  const auto manifest = ReadManifest(store_, "manifests/m/manifest", "manifests/m/manifest");
  EXPECT_EQ(manifest.status().code(), StatusCode::kCorruption);
  EXPECT_NE(manifest.status().message().find(std::to_string(kMaxManifestBytes)), std::string::npos)
      << manifest.status().message();
}

TEST_F(LocalStoreHostileTest, SymlinkedKeyFolderIsNeitherListedNorDeletedThroughNorWrittenThrough) {
  // shards/ points at a folder outside the store that looks like a run's shards.
  const fs::path elsewhere = tmp_ / "elsewhere";
  fs::create_directories(elsewhere / "run_id=old/db=00000/attempt=00");
  testing::WriteText(elsewhere / "run_id=old/db=00000/attempt=00/shard.db", "precious");
  fs::remove_all(root_ / "shards");
  fs::create_directory_symlink(elsewhere, root_ / "shards");
  const std::string key = "shards/run_id=old/db=00000/attempt=00/shard.db";

  auto listed = store_.List("shards/", "");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(listed->objects.empty());
  auto all = store_.List("", "");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->objects.empty());

  const Status deleted = store_.Delete(key);
  EXPECT_EQ(deleted.code(), StatusCode::kCorruption) << deleted.ToString();
  EXPECT_NE(deleted.message().find("symbolic link"), std::string::npos) << deleted.message();
  EXPECT_TRUE(store_.DeleteMany({key}).code() == StatusCode::kCorruption);
  EXPECT_EQ(testing::ReadText(elsewhere / "run_id=old/db=00000/attempt=00/shard.db"), "precious");

  EXPECT_EQ(store_.Put("shards/run_id=new/x", "data").code(), StatusCode::kCorruption);
  EXPECT_EQ(store_.PutIfAbsent("shards/run_id=new/x", "data").code(), StatusCode::kCorruption);
  EXPECT_FALSE(fs::exists(elsewhere / "run_id=new"));
  EXPECT_EQ(store_.Get(key).status().code(), StatusCode::kCorruption);
}

TEST_F(LocalStoreHostileTest, ListingSkipsSpecialFilesAndDeleteRemovesOnlyRegularFiles) {
  testing::WriteText(root_ / "shards/run_id=r/db=00000/attempt=00/real.db", "x");
  fs::create_symlink(outside_, root_ / "shards/run_id=r/db=00000/attempt=00/link.db");
  ASSERT_EQ(::mkfifo((root_ / "shards/run_id=r/db=00000/attempt=00/fifo.db").c_str(), 0600), 0);
  auto listed = store_.List("shards/", "");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->objects.size(), 1u);
  EXPECT_EQ(listed->objects[0].key, "shards/run_id=r/db=00000/attempt=00/real.db");

  EXPECT_EQ(store_.Delete("shards/run_id=r/db=00000/attempt=00/link.db").code(), StatusCode::kCorruption);
  EXPECT_EQ(testing::ReadText(outside_), kSecret);
  EXPECT_TRUE(store_.Delete("shards/run_id=r/db=00000/attempt=00/real.db").ok());
  EXPECT_FALSE(fs::exists(root_ / "shards/run_id=r/db=00000/attempt=00/real.db"));
}

}  // namespace
}  // namespace shardvec
