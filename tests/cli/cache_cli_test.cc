// `shardvec cache ls|prune`, `--cache-max-bytes` and `build --allow-schema-change`, run as a child
// process; the cache folder is inspected as plain files, and a live reader's use of a shard folder is
// played by this process holding its use lock.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/file_lock.h"
#include "support/test_util.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using testing::RunCli;
using testing::ShellQuote;

class CacheCliTest : public ::testing::Test {
 protected:
  // A shard folder holding `bytes` bytes, last used `age_seconds` ago.
  void Plant(const std::string& name, int64_t bytes, int age_seconds) {
    const fs::path folder = Cache() / name;
    fs::create_directories(folder);
    testing::WriteText(folder / "shard.db", std::string(static_cast<size_t>(bytes), 'x'));
    const auto when = fs::file_time_type::clock::now() - std::chrono::seconds(age_seconds);
    fs::last_write_time(folder, when);
  }
  fs::path Cache() const { return tmp_ / "cache"; }
  std::vector<json> Ls() {
    auto r = RunCli("cache ls --json --cache-dir " + ShellQuote(Cache().string()));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<json> out;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) out.push_back(json::parse(line));
    return out;
  }
  testing::TempDir tmp_;
};

TEST_F(CacheCliTest, LsListsSizesAndPruneKeepsWhatALiveReaderUses) {
  fs::create_directories(Cache());
  fs::permissions(Cache(), fs::perms::owner_all, fs::perm_options::replace);
  Plant("db=00000-old", 1000, 300);
  Plant("db=00001-older", 3000, 400);
  Plant("db=00002-live", 2000, 500);  // the oldest, but in use
  auto live = FileLock::Acquire(Cache() / "db=00002-live" / ".use.lock", FileLock::Mode::kShared, false);
  ASSERT_TRUE(live.ok() && live->has_value());
  // Creating the lock file touched the folder: it is made the oldest again.
  fs::last_write_time(Cache() / "db=00002-live", fs::file_time_type::clock::now() - std::chrono::seconds(500));

  std::vector<json> listed = Ls();
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0]["name"], "db=00002-live");  // least recently used first
  EXPECT_EQ(listed[0]["bytes"], 2000);
  EXPECT_EQ(listed[0]["in_use"], true);
  EXPECT_EQ(listed[1]["name"], "db=00001-older");
  EXPECT_EQ(listed[1]["in_use"], false);
  auto text = RunCli("cache ls --bytes --cache-dir " + ShellQuote(Cache().string()));
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("3 shard folder(s), 6000 bytes"), std::string::npos) << text.out;
  // Without --bytes, sizes read in IEC units.
  auto iec = RunCli("cache ls --cache-dir " + ShellQuote(Cache().string()));
  EXPECT_EQ(iec.exit_code, 0) << iec.err;
  EXPECT_NE(iec.out.find("db=00002-live\t2.0 KiB\tin use"), std::string::npos) << iec.out;
  EXPECT_NE(iec.out.find("3 shard folder(s), 5.9 KiB"), std::string::npos) << iec.out;

  // 6000 bytes down to 3500: the older unused folder goes, the in-use one stays though older.
  auto pruned = RunCli("cache prune --json --max-bytes 3500 --cache-dir " + ShellQuote(Cache().string()));
  ASSERT_EQ(pruned.exit_code, 0) << pruned.err;
  const json result = json::parse(pruned.out);
  EXPECT_EQ(result["removed_folders"], 1);
  EXPECT_EQ(result["removed_bytes"], 3000);
  EXPECT_EQ(result["kept_bytes"], 3000);
  EXPECT_EQ(result["in_use_bytes"], 2000);
  EXPECT_FALSE(fs::exists(Cache() / "db=00001-older"));
  EXPECT_TRUE(fs::exists(Cache() / "db=00000-old" / "shard.db"));

  auto all = RunCli("cache prune --all --cache-dir " + ShellQuote(Cache().string()));
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_FALSE(fs::exists(Cache() / "db=00000-old"));
  EXPECT_TRUE(fs::exists(Cache() / "db=00002-live" / "shard.db"));
  live->reset();
  ASSERT_EQ(RunCli("cache prune --all --cache-dir " + ShellQuote(Cache().string())).exit_code, 0);
  EXPECT_FALSE(fs::exists(Cache() / "db=00002-live"));
}

TEST_F(CacheCliTest, BadUsesAreErrorsNamingWhatIsWrong) {
  fs::create_directories(Cache());
  fs::permissions(Cache(), fs::perms::owner_all, fs::perm_options::replace);
  const std::string dir = " --cache-dir " + ShellQuote(Cache().string());
  auto neither = RunCli("cache prune" + dir);
  EXPECT_EQ(neither.exit_code, 2);
  EXPECT_NE(neither.err.find("give --max-bytes N or --all"), std::string::npos) << neither.err;
  EXPECT_EQ(RunCli("cache prune --all --max-bytes 5" + dir).exit_code, 2);
  EXPECT_EQ(RunCli("cache prune --max-bytes -1" + dir).exit_code, 2);
  EXPECT_EQ(RunCli("cache ls").exit_code, 2);
  auto missing = RunCli("cache ls --cache-dir " + ShellQuote((tmp_ / "nope").string()));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << missing.err;
  fs::permissions(Cache(), fs::perms::others_write, fs::perm_options::add);
  auto open_to_others = RunCli("cache prune --all" + dir);
  EXPECT_EQ(open_to_others.exit_code, 1);
  EXPECT_NE(open_to_others.err.find("is not private"), std::string::npos) << open_to_others.err;
}

TEST_F(CacheCliTest, BuildRefusesAnotherSchemaUnlessAllowedAndRangeRefusesACacheBudget) {
  testing::WriteNpy(tmp_ / "v4.npy", testing::RandomMatrix(30, 4, 1));
  testing::WriteNpy(tmp_ / "v8.npy", testing::RandomMatrix(30, 8, 2));
  const std::string store = ShellQuote((tmp_ / "store").string());
  auto build = [&](const std::string& input, const std::string& extra) {
    return RunCli("build --quiet --store " + store + " --local-root " + ShellQuote((tmp_ / "lr").string()) +
                  " --input " + ShellQuote((tmp_ / input).string()) + " --metric l2 --strategy lsh --num-dbs 2" + extra);
  };
  ASSERT_EQ(build("v4.npy", "").exit_code, 0);
  auto refused = build("v8.npy", "");
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("dim 8 (current: 4)"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--allow-schema-change"), std::string::npos) << refused.err;
  auto allowed = build("v8.npy", " --allow-schema-change");
  EXPECT_EQ(allowed.exit_code, 0) << allowed.err;

  auto ranged = RunCli("info --store " + store + " --reader-mode range --cache-max-bytes 100");
  EXPECT_EQ(ranged.exit_code, 1);
  EXPECT_NE(ranged.err.find("max_cache_bytes (100) applies to the download tier"), std::string::npos) << ranged.err;
  auto budget = RunCli("info --store " + store + " --cache-max-bytes 100 --cache-dir " +
                       ShellQuote((tmp_ / "c2").string()));
  EXPECT_EQ(budget.exit_code, 0) << budget.err;
}

}  // namespace
}  // namespace shardvec
