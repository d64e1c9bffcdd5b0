// Cold start and download speed against the S3 test server on 127.0.0.1 (moto, signatures checked):
//   .venv/bin/python scripts/s3_test_server.py -- build/s3_bench
// ColdStart/N: a reader with an empty cache opens the snapshot (pointer, manifest, routing artifacts)
// and answers its first query from N shards of a 100k x 384 snapshot (16 shards of ~9.6 MB).
// Download: one 96 MiB object to a local file, single stream vs parallel ranged GETs.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "common/random_id.h"
#include "s3_server_env.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kRows = 100000, kDim = 384, kShards = 16;

StoreOptions ServerOptions() { return S3ServerOptions("build/s3_bench"); }

std::string BucketUrl(const std::string& name) {
  return std::string("s3://") + std::getenv("SHARDVEC_TEST_S3_BUCKET") + "/bench/" + name;
}

Matrix Random(int64_t rows, int64_t dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  Matrix m{rows, dim, std::vector<float>(static_cast<size_t>(rows * dim))};
  for (float& v : m.data) v = normal(rng);
  return m;
}

const std::string& Snapshot() {
  static const std::string prefix = [] {
    const std::string url = BucketUrl("snapshot-" + NewUuidHex().substr(0, 8));
    Matrix data = Random(kRows, kDim, 1);
    std::vector<Record> records(static_cast<size_t>(kRows));
    for (int64_t i = 0; i < kRows; ++i) {
      records[i].id = i;
      records[i].vector.assign(data.row(i), data.row(i) + kDim);
    }
    WriteConfig c;
    c.store = url;
    c.store_options = ServerOptions();
    c.index.dim = kDim;
    c.index.metric = Metric::kL2;
    c.sharding.strategy = Strategy::kLsh;
    c.sharding.num_dbs = kShards;
    VectorRecordSource source(std::move(records));
    auto built = WriteSharded(c, source);
    if (!built.ok()) {
      std::fprintf(stderr, "build failed: %s\n", built.status().ToString().c_str());
      std::exit(1);
    }
    return url;
  }();
  return prefix;
}

void BM_ColdStartFirstQuery(benchmark::State& state) {
  const std::string& prefix = Snapshot();
  const Matrix query = Random(1, kDim, 7);
  SearchOptions search;  // exactly the first N shards, whatever the routing would pick
  search.shard_ids.emplace();
  for (int64_t db = 0; db < state.range(0); ++db) search.shard_ids->push_back(db);
  int64_t shards = 0;
  for (auto _ : state) {
    const fs::path cache = fs::temp_directory_path() / ("shardvec-bench-cache-" + NewUuidHex());
    ReaderOptions o;
    o.store = prefix;
    o.store_options = ServerOptions();
    o.cache_dir = cache.string();
    auto reader = ShardedVectorReader::Open(o);
    auto r = reader.ok() ? (*reader)->Search(std::span<const float>(query.row(0), kDim), 10, search)
                         : Result<SearchResponse>(reader.status());
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    shards = r->num_shards_queried;
    state.PauseTiming();
    reader->reset();
    fs::remove_all(cache);
    state.ResumeTiming();
  }
  state.counters["shards_downloaded"] = static_cast<double>(shards);
}
BENCHMARK(BM_ColdStartFirstQuery)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);

void BM_Download(benchmark::State& state) {
  static const std::string prefix = BucketUrl("download-" + NewUuidHex().substr(0, 8));
  constexpr int64_t kBytes = int64_t{96} << 20;
  StoreOptions options = ServerOptions();
  options.ranged_get_threshold_bytes = state.range(0) ? int64_t{8} << 20 : int64_t{1} << 40;
  options.part_size_bytes = int64_t{8} << 20;
  auto store = OpenStore(prefix, options);
  if (!store.ok()) return state.SkipWithError(store.status().ToString().c_str());
  static bool uploaded = false;
  if (!uploaded) {
    std::string data(static_cast<size_t>(kBytes), 'x');
    if (!(*store)->Put("blob", data).ok()) return state.SkipWithError("upload failed");
    uploaded = true;
  }
  const fs::path dest = fs::temp_directory_path() / ("shardvec-bench-blob-" + NewUuidHex());
  for (auto _ : state) {
    Status st = (*store)->GetToFile("blob", dest, kBytes);
    if (!st.ok()) return state.SkipWithError(st.ToString().c_str());
  }
  fs::remove(dest);
  state.SetBytesProcessed(state.iterations() * kBytes);
}
// 0: one GET stream; 1: parallel 8 MiB ranges.
BENCHMARK(BM_Download)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);

}  // namespace
}  // namespace shardvec

BENCHMARK_MAIN();
