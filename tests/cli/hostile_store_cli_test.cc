// The CLI against a folder store someone else tampered with, and against sizes no memory holds:
// symlinks and sparse 100 GiB files where objects should be, a symlinked run folder under cleanup,
// --num-dbs 1000000000 and a sparse .npy. Each must end with exit 1 or 2 and a message naming the
// object or flag and the limit: never exit 134 (std::bad_alloc), a hang, a leak or a file deleted
// outside the store.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "format/keys.h"
#include "shardvec/limits.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCli;
using testing::ShellQuote;

constexpr char kOutsideText[] = "outside-the-store: secret line 1\n";
constexpr int64_t k100GiB = int64_t{100} << 30;

void MakeSparse(const fs::path& path, int64_t size) {
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(::ftruncate(fd, size), 0);  // no disk used
  ::close(fd);
}

class HostileStoreCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteNpy(tmp_ / "v.npy", testing::RandomMatrix(40, 4, 7));
    testing::WriteText(tmp_ / "outside.txt", kOutsideText);
  }
  testing::CommandResult Build(const std::string& run_id, const std::string& num_dbs = "2",
                                const std::string& strategy = "lsh") {
    return RunCli("build --quiet --store " + ShellQuote(root().string()) + " --local-root " +
                  ShellQuote((tmp_ / "lr").string()) + " --input " + ShellQuote((tmp_ / "v.npy").string()) +
                  " --metric l2 --strategy " + strategy + " --num-dbs " + num_dbs + " --run-id " + run_id);
  }
  // A command on the store; the reading ones (search, info) get the test's cache folder.
  testing::CommandResult Run(const std::string& command, const std::string& flags = "") {
    const bool reads = command.rfind("search", 0) == 0 || command.rfind("info", 0) == 0;
    return RunCli(command + " --store " + ShellQuote(root().string()) +
                  (reads ? " --cache-dir " + ShellQuote((tmp_ / "cache").string()) : std::string()) + " " + flags);
  }
  fs::path ManifestPath() {
    const json pointer = json::parse(testing::ReadText(root() / "_CURRENT"));
    return pointer["manifest_ref"].get<std::string>().substr(7);
  }
  // A clean failure: exit 1 or 2, never an abort, with every expected piece in stderr.
  void ExpectCleanFailure(const testing::CommandResult& r, const std::vector<std::string>& pieces) {
    EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 2) << "exit " << r.exit_code << ": " << r.err;
    for (const std::string& piece : pieces) EXPECT_NE(r.err.find(piece), std::string::npos) << piece << " in: " << r.err;
    EXPECT_EQ((r.out + r.err).find("secret line"), std::string::npos) << r.out << r.err;
  }
  fs::path root() const { return tmp_.path() / "store"; }

  testing::TempDir tmp_;
};

TEST_F(HostileStoreCliTest, NumDbsAboveTheLimitIsAClearError) {
  // CLUSTER: under LSH so many shards are first a usage error (8 hash bits reach 256 of them).
  const auto r = Build("R1", "1000000000", "cluster --train-centroids");
  ExpectCleanFailure(r, {"num_dbs must be <= " + std::to_string(kMaxNumDbs), "1000000000"});
  EXPECT_FALSE(fs::exists(root() / "_CURRENT"));
}

TEST_F(HostileStoreCliTest, SparseHugeCurrentAndManifestAreClearErrors) {
  ASSERT_EQ(Build("R1").exit_code, 0);
  const std::string pointer = testing::ReadText(root() / "_CURRENT");
  const fs::path manifest = ManifestPath();

  fs::remove(root() / "_CURRENT");
  MakeSparse(root() / "_CURRENT", k100GiB);
  for (const char* command : {"info", "search --query 1,2,3,4"}) {
    ExpectCleanFailure(Run(command), {"_CURRENT", std::to_string(k100GiB)});
  }
  // history still lists the manifests, and warns that none can be marked current.
  const auto history = Run("history");
  EXPECT_EQ(history.exit_code, 0) << history.err;
  EXPECT_NE(history.err.find("more than the " + std::to_string(kMaxCurrentPointerBytes) + " bytes"), std::string::npos)
      << history.err;
  ExpectCleanFailure(Run("rollback", "--offset 0"), {"_CURRENT", std::to_string(k100GiB)});

  testing::WriteText(root() / "_CURRENT", pointer);
  MakeSparse(manifest, k100GiB);  // grows the real manifest to 100 GiB
  ExpectCleanFailure(Run("info"), {manifest.filename().string(), std::to_string(kMaxManifestBytes)});
}

TEST_F(HostileStoreCliTest, SparseHugeQueryFileIsAClearError) {
  ASSERT_EQ(Build("R1").exit_code, 0);
  MakeSparse(tmp_ / "q.npy", k100GiB);
  ExpectCleanFailure(Run("search", "--query-file " + ShellQuote((tmp_ / "q.npy").string())),
                     {"q.npy", std::to_string(kMaxNpyFileBytes)});
}

TEST_F(HostileStoreCliTest, SparseHugeInputAndCentroidsAreClearErrors) {
  MakeSparse(tmp_ / "huge.npy", k100GiB);
  const std::string huge = ShellQuote((tmp_ / "huge.npy").string());
  ExpectCleanFailure(RunCli("build --quiet --store " + ShellQuote(root().string()) + " --input " + huge +
                            " --metric l2 --strategy lsh --num-dbs 2"),
                     {"--input", "huge.npy", std::to_string(k100GiB)});
  ExpectCleanFailure(RunCli("build --quiet --store " + ShellQuote(root().string()) + " --input " +
                            ShellQuote((tmp_ / "v.npy").string()) + " --metric l2 --strategy cluster --centroids " +
                            huge),
                     {"--centroids", "huge.npy", std::to_string(kMaxNpyFileBytes)});
  EXPECT_FALSE(fs::exists(root() / "_CURRENT"));
}

TEST_F(HostileStoreCliTest, ShardSymlinkedOutsideIsRefusedAndNeverCached) {
  ASSERT_EQ(Build("R1").exit_code, 0);
  for (const fs::path& target : {tmp_ / "outside.txt", fs::path("/dev/zero")}) {
    for (auto& entry : fs::recursive_directory_iterator(root() / "shards")) {
      if (entry.path().filename().string() == std::string(kShardFileName)) {
        fs::remove(entry.path());
        fs::create_symlink(target, entry.path());
      }
    }
    ExpectCleanFailure(Run("search", "--query 1,2,3,4 --num-probes 2"), {"symbolic link", "shard.db"});
    for (const std::string& file : testing::ListFiles(tmp_ / "cache")) {
      EXPECT_EQ(testing::ReadText(tmp_ / "cache" / file).find("secret line"), std::string::npos) << file;
    }
  }
}

// cleanup --keep-last 1 would delete R1's shards; reached through a symlinked folder (the whole
// `shards/`, or R1's run folder) they live outside the store and must survive.
TEST_F(HostileStoreCliTest, CleanupNeverDeletesThroughASymlinkedFolder) {
  for (const std::string linked : {"shards", "shards/run_id=R1"}) {
    SCOPED_TRACE(linked);
    fs::remove_all(root());
    ASSERT_EQ(Build("R1").exit_code, 0);
    ASSERT_EQ(Build("R2").exit_code, 0);
    const fs::path moved = tmp_ / "moved";
    fs::remove_all(moved);
    fs::rename(root() / linked, moved);
    fs::create_directory_symlink(moved, root() / linked);
    const std::vector<std::string> outside_before = testing::ListFiles(moved);
    ASSERT_FALSE(outside_before.empty());

    const auto r = Run("cleanup", "--keep-last 1");
    EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.exit_code << ": " << r.err;
    EXPECT_EQ(testing::ListFiles(moved), outside_before);
    EXPECT_TRUE(fs::is_symlink(root() / linked));
    // The snapshot's shards are not served through the symlink either.
    if (linked == "shards") ExpectCleanFailure(Run("search", "--query 1,2,3,4"), {"symbolic link"});
  }
}

}  // namespace
}  // namespace shardvec
