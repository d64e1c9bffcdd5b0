// Query latency and QPS of ShardedVectorReader against an exact brute-force scan of the same data.
//   build/search_bench                       (synthetic 100k x 384 clustered, l2, 16 shards)
//   build/search_bench --benchmark_filter=Fashion   (Fashion-MNIST 60k x 784 if installed)
// Each search benchmark reports recall@10 against the brute force as a counter.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "shardvec/input_files.h"
#include "shardvec/reader.h"
#include "shardvec/writer.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kK = 10;

struct Dataset {
  std::string name;
  Matrix data;
  Matrix queries;
  std::vector<std::vector<int64_t>> truth;  // exact top-k row ids per query
  std::unique_ptr<ShardedVectorReader> reader;
  fs::path root;
};

Matrix Clustered(int64_t rows, int64_t dim, int64_t clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centers(static_cast<size_t>(clusters * dim));
  for (float& c : centers) c = normal(rng) * 4.0f;
  Matrix m{rows, dim, std::vector<float>(static_cast<size_t>(rows * dim))};
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t c = static_cast<int64_t>(rng() % static_cast<uint64_t>(clusters));
    for (int64_t j = 0; j < dim; ++j) m.row(i)[j] = centers[c * dim + j] + normal(rng);
  }
  return m;
}

double SquaredL2(const float* a, const float* b, int64_t dim) {
  float sum[8] = {};
  int64_t j = 0;
  for (; j + 8 <= dim; j += 8)
    for (int l = 0; l < 8; ++l) sum[l] += (a[j + l] - b[j + l]) * (a[j + l] - b[j + l]);
  double total = 0;
  for (float s : sum) total += s;
  for (; j < dim; ++j) total += (a[j] - b[j]) * (a[j] - b[j]);
  return total;
}

std::vector<int64_t> BruteForce(const Matrix& data, const float* q) {
  std::vector<std::pair<double, int64_t>> d(static_cast<size_t>(data.rows));
  for (int64_t i = 0; i < data.rows; ++i) d[i] = {SquaredL2(data.row(i), q, data.cols), i};
  std::partial_sort(d.begin(), d.begin() + kK, d.end());
  std::vector<int64_t> out;
  for (int64_t i = 0; i < kK; ++i) out.push_back(d[i].second);
  return out;
}

Dataset* Prepare(const std::string& name, Matrix data, Matrix queries) {
  auto* ds = new Dataset{name, std::move(data), std::move(queries), {}, nullptr,
                         fs::temp_directory_path() / ("shardvec-search-bench-" + name)};
  fs::remove_all(ds->root);
  WriteConfig c;
  c.store = (ds->root / "store").string();
  c.local_root = (ds->root / "build").string();
  c.index.dim = ds->data.cols;
  c.index.metric = Metric::kL2;
  c.sharding.num_dbs = 16;
  c.sharding.train_centroids = true;
  c.sharding.centroids_training_sample_size = 20000;
  const RecordBatch rows{ds->data.rows, ds->data.cols, ds->data.data.data()};
  auto built = WriteSharded(c, rows);
  if (!built.ok()) { fprintf(stderr, "build failed: %s\n", built.status().ToString().c_str()); std::exit(1); }
  ReaderOptions o;
  o.store = c.store;
  o.cache_dir = (ds->root / "cache").string();
  o.preload_shards = true;
  auto reader = ShardedVectorReader::Open(o);
  if (!reader.ok()) { fprintf(stderr, "open failed: %s\n", reader.status().ToString().c_str()); std::exit(1); }
  ds->reader = std::move(reader).value();
  for (int64_t q = 0; q < ds->queries.rows; ++q) ds->truth.push_back(BruteForce(ds->data, ds->queries.row(q)));
  return ds;
}

Dataset& Synthetic() {
  static Dataset* ds = Prepare("synthetic-100k-384", Clustered(100000, 384, 64, 1), Clustered(200, 384, 64, 2));
  return *ds;
}

Dataset* Fashion() {
  static Dataset* ds = [] () -> Dataset* {
    const std::string dir = "/usr/share/datasets/fashion-mnist/";
    auto train = LoadVectorInput(dir + "train-images-idx3-ubyte.gz");
    auto test = LoadVectorInput(dir + "t10k-images-idx3-ubyte.gz");
    if (!train.ok() || !test.ok()) return nullptr;
    Matrix queries{200, test->vectors.cols, {}};
    queries.data.assign(test->vectors.data.begin(), test->vectors.data.begin() + 200 * test->vectors.cols);
    return Prepare("fashion-mnist", std::move(train->vectors), std::move(queries));
  }();
  return ds;
}

double Recall(const Dataset& ds, int64_t q, const SearchResponse& r) {
  int64_t hits = 0;
  for (const auto& h : r.results) {
    const int64_t id = std::get<int64_t>(h.id);
    hits += std::count(ds.truth[q].begin(), ds.truth[q].end(), id);
  }
  return static_cast<double>(hits) / kK;
}

void RunSearch(benchmark::State& state, Dataset* ds) {
  if (ds == nullptr) { state.SkipWithError("dataset not installed"); return; }
  SearchOptions o;
  o.num_probes = state.range(0);
  double recall = 0;
  int64_t n = 0;
  for (auto _ : state) {
    const int64_t q = n % ds->queries.rows;
    auto r = ds->reader->Search(std::span<const float>(ds->queries.row(q), ds->queries.cols), kK, o);
    if (!r.ok()) { state.SkipWithError(r.status().ToString().c_str()); break; }
    recall += Recall(*ds, q, *r);
    ++n;
  }
  state.counters["recall@10"] = n ? recall / n : 0;
  state.counters["QPS"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

void RunBatch(benchmark::State& state, Dataset* ds) {
  if (ds == nullptr) { state.SkipWithError("dataset not installed"); return; }
  SearchOptions o;
  o.num_probes = state.range(0);
  int64_t n = 0;
  for (auto _ : state) {
    auto r = ds->reader->BatchSearch(ds->queries, kK, o);
    if (!r.ok()) { state.SkipWithError(r.status().ToString().c_str()); break; }
    n += ds->queries.rows;
  }
  state.counters["QPS"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

void RunBrute(benchmark::State& state, Dataset* ds) {
  if (ds == nullptr) { state.SkipWithError("dataset not installed"); return; }
  int64_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(BruteForce(ds->data, ds->queries.row(n % ds->queries.rows)));
    ++n;
  }
  state.counters["QPS"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsRate);
}

void BM_Synthetic_Search(benchmark::State& s) { RunSearch(s, &Synthetic()); }
void BM_Synthetic_BatchSearch(benchmark::State& s) { RunBatch(s, &Synthetic()); }
void BM_Synthetic_BruteForce1Thread(benchmark::State& s) { RunBrute(s, &Synthetic()); }
void BM_Fashion_Search(benchmark::State& s) { RunSearch(s, Fashion()); }
void BM_Fashion_BatchSearch(benchmark::State& s) { RunBatch(s, Fashion()); }
void BM_Fashion_BruteForce1Thread(benchmark::State& s) { RunBrute(s, Fashion()); }

BENCHMARK(BM_Synthetic_Search)->ArgName("probes")->Arg(1)->Arg(2)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Synthetic_BatchSearch)->ArgName("probes")->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_Synthetic_BruteForce1Thread)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Fashion_Search)->ArgName("probes")->Arg(1)->Arg(2)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Fashion_BatchSearch)->ArgName("probes")->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
BENCHMARK(BM_Fashion_BruteForce1Thread)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace shardvec

BENCHMARK_MAIN();
