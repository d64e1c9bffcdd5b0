// Readers under load: 8 threads search one reader while this thread publishes a new snapshot and
// refresh()es it every few hundred ms, with cleanup removing old snapshots' shards as it goes. Every
// generation has its own data and ids that encode it; every search must succeed and give exactly
// the answer of one generation's snapshot (nothing mixed from two), and memory
// and open files must stay flat after warm-up. 5 s by default; SHARDVEC_SOAK_SECONDS lengthens it
// (bench/soak.sh runs 60 s).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "shardvec/reader.h"
#include "shardvec/writer.h"
#include "store/local_store.h"
#include "support/test_util.h"
#include "snapshot/history.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kGenerationStride = 1'000'000;  // id = generation * stride + row
constexpr int64_t kRows = 300;
constexpr int64_t kDim = 8;
constexpr int64_t kNumDbs = 3;
constexpr int64_t kTopK = 5;
constexpr int kSearchThreads = 8;
constexpr auto kPublishEvery = std::chrono::milliseconds(250);
constexpr int64_t kMaxRssGrowthKib = 64 * 1024;
// ThreadSanitizer's shadow memory and history grow with every access, and AddressSanitizer keeps
// freed memory resident in its quarantine, so VmRSS says nothing about our memory under either;
// open files still do.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kRssMeaningful = false;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kRssMeaningful = false;
#else
constexpr bool kRssMeaningful = true;
#endif
#else
constexpr bool kRssMeaningful = true;
#endif
constexpr int64_t kMaxFdGrowth = 16;

int64_t VmRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  ADD_FAILURE() << "no VmRSS in /proc/self/status";
  return 0;
}

int64_t OpenFds() {
  int64_t n = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

int SoakSeconds() {
  const char* text = std::getenv("SHARDVEC_SOAK_SECONDS");
  if (text == nullptr || *text == '\0') return 5;
  const int seconds = std::atoi(text);
  EXPECT_GT(seconds, 0) << "SHARDVEC_SOAK_SECONDS='" << text << "' must be a positive integer";
  return seconds > 0 ? seconds : 5;
}

class ReaderSoakTest : public ::testing::Test {
 protected:
  // Each generation's data and exact answer rows; written before the generation is published.
  Matrix DataOf(int64_t generation) const { return testing::RandomMatrix(kRows, kDim, 1000 + static_cast<uint64_t>(generation)); }
  void ComputeExpected(int64_t generation) {
    const Matrix data = DataOf(generation);
    auto& rows = expected_rows_.at(static_cast<size_t>(generation));
    for (int64_t q = 0; q < queries_.rows; ++q) {
      rows.emplace_back();
      for (const auto& [d, row] : testing::BruteForce(data, queries_.row(q), Metric::kL2, kTopK)) rows.back().push_back(row);
    }
  }

  Result<BuildResult> Publish(int64_t generation) {
    ComputeExpected(generation);
    const Matrix data = DataOf(generation);
    WriteConfig c;
    c.store = (tmp_ / "store").string();
    c.local_root = (tmp_ / "build").string();
    c.index.dim = kDim;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = kNumDbs;
    c.max_parallel_shards = 1;  // leave the cores to the searchers
    c.run_id = "gen" + std::to_string(generation);
    std::vector<Record> records(static_cast<size_t>(kRows));
    for (int64_t row = 0; row < kRows; ++row) {
      Record& r = records[static_cast<size_t>(row)];
      r.id = RecordId(generation * kGenerationStride + row);
      r.vector.assign(data.row(row), data.row(row) + kDim);
    }
    VectorRecordSource source(std::move(records));
    return WriteSharded(c, source);
  }

  testing::TempDir tmp_;
  Matrix queries_ = testing::RandomMatrix(32, kDim, 6);
  std::vector<std::vector<std::vector<int64_t>>> expected_rows_;  // [generation][query] → rows
};

TEST_F(ReaderSoakTest, EightThreadsSearchWhileSnapshotsArePublishedAndRefreshed) {
  const int seconds = SoakSeconds();
  // Sized up front (at most one generation per publish period, with room to spare): searchers read it
  // while generations are added.
  expected_rows_.resize(static_cast<size_t>(seconds) * 1000 / kPublishEvery.count() * 2 + 16);
  ASSERT_TRUE(Publish(1).ok());
  ReaderOptions o;
  o.store = (tmp_ / "store").string();
  o.cache_dir = (tmp_ / "cache").string();
  auto opened = ShardedVectorReader::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  ShardedVectorReader& reader = **opened;

  std::atomic<int64_t> published{1};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> searches{0}, failed{0}, mixed{0}, wrong{0};
  std::mutex mu;
  std::vector<std::string> examples;  // the first few bad answers
  auto note = [&](std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    if (examples.size() < 5) examples.push_back(std::move(what));
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kSearchThreads; ++t) {
    threads.emplace_back([&, t] {
      SearchOptions all;
      all.shard_ids = std::vector<int64_t>{0, 1, 2};
      for (int64_t i = t; !stop.load(); ++i) {
        const int64_t q = i % queries_.rows;
        const int64_t newest = published.load();
        auto r = reader.Search(std::span<const float>(queries_.row(q), kDim), kTopK, all);
        ++searches;
        if (!r.ok() || r->results.size() != static_cast<size_t>(kTopK)) {
          ++failed;
          note(r.ok() ? "short answer" : r.status().ToString());
          continue;
        }
        const int64_t generation = std::get<int64_t>(r->results[0].id) / kGenerationStride;
        for (int64_t k = 0; k < kTopK; ++k) {
          const int64_t id = std::get<int64_t>(r->results[static_cast<size_t>(k)].id);
          if (id / kGenerationStride != generation) {
            ++mixed;
            note("answer mixes generations " + std::to_string(generation) + " and " + std::to_string(id / kGenerationStride));
            break;
          }
          if (generation < 1 || generation > published.load() ||
              id % kGenerationStride != expected_rows_[static_cast<size_t>(generation)][static_cast<size_t>(q)][static_cast<size_t>(k)]) {
            ++wrong;
            note("query " + std::to_string(q) + " rank " + std::to_string(k) + ": id " + std::to_string(id) +
                 " (newest published when it started: " + std::to_string(newest) + ")");
            break;
          }
        }
      }
    });
  }

  // Publish and refresh until the time is up; cleanup keeps the newest 4 snapshots' shards.
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::seconds(seconds);
  const auto warm_up_done = start + std::chrono::seconds(seconds) / 5;
  int64_t rss_after_warm_up = 0, fds_after_warm_up = 0, rss_max = 0, fds_max = 0;
  int64_t generation = 1;
  while (std::chrono::steady_clock::now() < end) {
    const auto cycle_end = std::chrono::steady_clock::now() + kPublishEvery;
    ++generation;
    ASSERT_LT(static_cast<size_t>(generation), expected_rows_.size());
    auto built = Publish(generation);
    ASSERT_TRUE(built.ok()) << built.status().ToString();
    published = generation;
    auto refreshed = reader.Refresh();
    ASSERT_TRUE(refreshed.ok()) << refreshed.status().ToString();
    EXPECT_TRUE(*refreshed) << "generation " << generation;
    CleanupOptions keep;
    keep.keep_last = 4;
    LocalStore store(tmp_ / "store");
    auto cleaned = Cleanup(store, keep);
    ASSERT_TRUE(cleaned.ok()) << cleaned.status().ToString();
    if (rss_after_warm_up == 0 && std::chrono::steady_clock::now() >= warm_up_done) {
      rss_after_warm_up = VmRssKib();
      fds_after_warm_up = OpenFds();
    } else if (rss_after_warm_up != 0) {
      rss_max = std::max(rss_max, VmRssKib());
      fds_max = std::max(fds_max, OpenFds());
    }
    std::this_thread::sleep_until(cycle_end);
  }
  stop = true;
  for (auto& t : threads) t.join();

  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(mixed.load(), 0);
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_TRUE(examples.empty()) << examples.front();
  EXPECT_GE(generation, 3) << "too few snapshots published to soak";
  EXPECT_GT(searches.load(), generation) << "the searchers barely ran";
  EXPECT_EQ(reader.Info().run_id, "gen" + std::to_string(generation));
  ASSERT_GT(rss_after_warm_up, 0);
  if (kRssMeaningful) EXPECT_LE(rss_max - rss_after_warm_up, kMaxRssGrowthKib) << "VmRSS grew after warm-up";
  EXPECT_LE(fds_max - fds_after_warm_up, kMaxFdGrowth) << "open files grew after warm-up";
  RecordProperty("seconds", seconds);
  RecordProperty("snapshots", static_cast<int>(generation));
  RecordProperty("searches", static_cast<int>(searches.load()));
  RecordProperty("rss_kib_after_warm_up", static_cast<int>(rss_after_warm_up));
  RecordProperty("rss_kib_max", static_cast<int>(rss_max));
  RecordProperty("fds_after_warm_up", static_cast<int>(fds_after_warm_up));
  RecordProperty("fds_max", static_cast<int>(fds_max));
}

}  // namespace
}  // namespace shardvec
