// The reader's two tiers on a cold first query against the S3 test server on 127.0.0.1 (moto):
//   .venv/bin/python scripts/s3_test_server.py -- build/range_bench [ROWS [DIM [SHARDS [PROBES [PAGES [folder]]]]]]
// (default 1000000 x 384, 16 LSH shards, 2 probes, the range tier's default 1024-page cache; each row
// has a small payload {"n": i}); "folder" puts the snapshot in a local temp folder instead.
// Builds the snapshot once, then for each tier opens a fresh reader with an empty cache and times
// its first query (open included) and the same query again (warm: its shards open). For the range tier it reports the bytes
// fetched beyond the vectors the query scanned, as a percent of the probed shards' bytes.
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>

#include "common/random_id.h"
#include "s3_server_env.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

StoreOptions ServerOptions() { return S3ServerOptions("build/range_bench"); }

std::vector<float> Row(int64_t row, int64_t dim) {
  std::mt19937_64 rng(static_cast<uint64_t>(row) * 7919 + 1);
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(dim));
  for (float& x : v) x = normal(rng);
  return v;
}

// Generated rows (the same every pass), so a million of them never sit in memory at once.
class GeneratedRows final : public RecordSource {
 public:
  GeneratedRows(int64_t rows, int64_t dim) : rows_(rows), dim_(dim) {}
  Result<bool> Next(Record* out) override {
    if (next_ == rows_) return false;
    out->id = next_;
    out->vector = Row(next_, dim_);
    out->payload_json = fmt::format("{{\"n\": {}}}", next_);
    ++next_;
    return true;
  }
  Status Rewind() override {
    next_ = 0;
    return Status::OK();
  }
  std::optional<int64_t> SizeHint() const override { return rows_; }

 private:
  int64_t rows_, dim_, next_ = 0;
};

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int Main(int argc, char** argv) {
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 1000000;
  const int64_t dim = argc > 2 ? std::atoll(argv[2]) : 384;
  const int64_t shards = argc > 3 ? std::atoll(argv[3]) : 16;
  const int64_t probes = argc > 4 ? std::atoll(argv[4]) : 2;
  const int64_t pages = argc > 5 ? std::atoll(argv[5]) : kDefaultPageCachePages;
  const bool folder = argc > 6 && std::string(argv[6]) == "folder";
  const StoreOptions server = folder ? StoreOptions{} : ServerOptions();
  const fs::path folder_store = fs::temp_directory_path() / ("shardvec-range-bench-store-" + NewUuidHex());
  const std::string prefix =
      folder ? folder_store.string()
             : fmt::format("s3://{}/bench/range-{}", std::getenv("SHARDVEC_TEST_S3_BUCKET"), NewUuidHex().substr(0, 8));

  WriteConfig c;
  c.store = prefix;
  c.store_options = server;
  c.index.dim = dim;
  c.index.metric = Metric::kL2;
  c.sharding.strategy = Strategy::kLsh;
  c.sharding.num_dbs = shards;
  c.sharding.num_probes = probes;
  GeneratedRows source(rows, dim);
  auto t0 = std::chrono::steady_clock::now();
  auto built = WriteSharded(c, source);
  if (!built.ok()) {
    std::fprintf(stderr, "build failed: %s\n", built.status().ToString().c_str());
    return 1;
  }
  std::printf("built %lld x %lld into %lld shards on %s in %.1f s; range tier cache %lld pages per shard\n",
              static_cast<long long>(rows), static_cast<long long>(dim), static_cast<long long>(shards), prefix.c_str(),
              Seconds(t0), static_cast<long long>(pages));

  const std::vector<float> query = Row(rows + 17, dim);
  std::printf("| tier | cold first query (open + search) s | warm query ms | bytes read | of which beyond vectors "
              "| beyond vectors / probed shards' bytes |\n|---|---|---|---|---|---|\n");
  for (ReaderMode mode : {ReaderMode::kDownload, ReaderMode::kRange}) {
    const fs::path cache = fs::temp_directory_path() / ("shardvec-range-bench-" + NewUuidHex());
    ReaderOptions o;
    o.store = prefix;
    o.store_options = server;
    o.cache_dir = cache.string();
    o.reader_mode = mode;
    if (mode == ReaderMode::kRange) o.page_cache_pages = pages;
    t0 = std::chrono::steady_clock::now();
    auto reader = ShardedVectorReader::Open(o);
    auto r = reader.ok() ? (*reader)->Search(query, 10) : Result<SearchResponse>(reader.status());
    if (!r.ok()) {
      std::fprintf(stderr, "%s: %s\n", std::string(ReaderModeName(mode)).c_str(), r.status().ToString().c_str());
      return 1;
    }
    const double cold = Seconds(t0);
    // What the query scanned: every vector of the shards it probed.
    auto routed = (*reader)->Route(query);
    std::set<int64_t> probed(routed->begin(), routed->end());
    int64_t probed_bytes = 0, probed_rows = 0;
    for (const ShardDetail& d : (*reader)->ShardDetails()) {
      if (probed.count(d.db_id) == 0) continue;
      probed_bytes += d.db_bytes;
      probed_rows += d.vector_count;
    }
    const int64_t vector_bytes = probed_rows * dim * static_cast<int64_t>(sizeof(float));
    const ReadStats stats = (*reader)->Stats();
    const int64_t read = mode == ReaderMode::kRange ? stats.range_bytes_fetched : stats.bytes_downloaded;
    t0 = std::chrono::steady_clock::now();
    constexpr int kWarm = 5;
    for (int i = 0; i < kWarm; ++i) (void)(*reader)->Search(query, 10);  // its shards now open
    const double warm_ms = Seconds(t0) * 1000 / kWarm;
    std::printf("| %s | %.2f | %.1f | %.1f MiB (%lld requests) | %.2f MiB | %.2f%% of %.1f MiB (%lld shards) |\n",
                std::string(ReaderModeName(mode)).c_str(), cold, warm_ms, read / 1048576.0,
                static_cast<long long>(stats.range_requests), (read - vector_bytes) / 1048576.0,
                100.0 * static_cast<double>(read - vector_bytes) / static_cast<double>(probed_bytes),
                probed_bytes / 1048576.0, static_cast<long long>(probed.size()));
    reader->reset();
    fs::remove_all(cache);
  }
  if (folder) fs::remove_all(folder_store);
  return 0;
}

}  // namespace
}  // namespace shardvec

int main(int argc, char** argv) { return shardvec::Main(argc, argv); }
