// Build throughput: vectors/s for a whole WriteSharded run (route, build shards in parallel, upload
// to a local store, publish) on random N(0,1) float32 data.
//   build/build_bench --benchmark_filter=.   (args: rows, dim, num_dbs, strategy 0=lsh 1=cluster-trained,
//   input 0=a stream (spooled to local disk) 1=a RecordBatch in memory (read in place))
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "shardvec/writer.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

std::vector<float> RandomRows(int64_t rows, int64_t dim) {
  std::vector<float> data(static_cast<size_t>(rows * dim));
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : data) v = normal(rng);
  return data;
}

// Yields the same random rows on every pass without holding them as Records.
class RandomSource : public RecordSource {
 public:
  RandomSource(int64_t rows, int64_t dim) : rows_(rows), dim_(dim), data_(RandomRows(rows, dim)) {}
  Result<bool> Next(Record* out) override {
    if (next_ >= rows_) return false;
    out->id = next_;
    out->vector.assign(data_.begin() + next_ * dim_, data_.begin() + (next_ + 1) * dim_);
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
  std::vector<float> data_;
};

void BM_WriteSharded(benchmark::State& state) {
  const int64_t rows = state.range(0), dim = state.range(1), num_dbs = state.range(2);
  const bool cluster = state.range(3) == 1;
  const bool in_memory = state.range(4) == 1;
  RandomSource source(rows, dim);
  const std::vector<float> data = in_memory ? RandomRows(rows, dim) : std::vector<float>{};
  const RecordBatch batch{rows, dim, data.data()};
  const fs::path root = fs::temp_directory_path() / "shardvec-bench";
  for (auto _ : state) {
    fs::remove_all(root);
    WriteConfig c;
    c.store = (root / "store").string();
    c.local_root = (root / "build").string();
    c.index.dim = dim;
    c.index.metric = Metric::kL2;
    c.sharding.num_dbs = num_dbs;
    if (cluster) {
      c.sharding.train_centroids = true;
    } else {
      c.sharding.strategy = Strategy::kLsh;
    }
    auto result = in_memory ? WriteSharded(c, batch) : WriteSharded(c, source);
    if (!result.ok()) {
      state.SkipWithError(result.status().ToString().c_str());
      break;
    }
  }
  fs::remove_all(root);
  state.SetItemsProcessed(state.iterations() * rows);
  state.counters["MB_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * rows * dim * 4) / 1e6,
                                                  benchmark::Counter::kIsRate);
}

BENCHMARK(BM_WriteSharded)
    ->ArgNames({"rows", "dim", "num_dbs", "cluster", "in_memory"})
    ->Args({100000, 384, 8, 0, 0})
    ->Args({100000, 384, 16, 1, 0})
    ->Args({100000, 1536, 8, 0, 0})
    ->Args({100000, 384, 8, 0, 1})
    ->Args({100000, 384, 16, 1, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);

}  // namespace
}  // namespace shardvec

BENCHMARK_MAIN();
