#include "routing/kmeans.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::MakeMatrix;


Matrix RandomSample(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  Matrix m = MakeMatrix(rows, cols, {});
  m.data.resize(static_cast<size_t>(rows * cols));
  for (float& value : m.data) value = normal(rng);
  return m;
}

bool SameRow(const float* a, const float* b, int64_t dim) {
  return std::equal(a, a + dim, b);
}

bool IsSampleRow(const Matrix& sample, const float* row) {
  for (int64_t r = 0; r < sample.rows; ++r) {
    if (SameRow(sample.row(r), row, sample.cols)) return true;
  }
  return false;
}

int64_t NearestRow(const Matrix& centroids, const float* v) {
  int64_t best = 0;
  double best_distance = INFINITY;
  for (int64_t c = 0; c < centroids.rows; ++c) {
    double distance = 0.0;
    for (int64_t d = 0; d < centroids.cols; ++d) {
      const double diff = static_cast<double>(centroids.row(c)[d]) - v[d];
      distance += diff * diff;
    }
    if (distance < best_distance) {
      best = c;
      best_distance = distance;
    }
  }
  return best;
}

// Trains `sample` with each thread count and expects bit-identical centroids.
void ExpectSameCentroidsForThreadCounts(const Matrix& sample, int64_t k, KMeansOptions options,
                                        std::initializer_list<int> thread_counts) {
  std::vector<float> first;
  for (int threads : thread_counts) {
    options.num_threads = threads;
    Result<Matrix> centroids = TrainKMeans(sample, k, options);
    ASSERT_TRUE(centroids.ok()) << centroids.status().ToString();
    if (first.empty()) first = centroids->data;
    EXPECT_EQ(centroids->data, first) << threads << " threads";
  }
}

TEST(RoutingKMeansTest, RejectsNonPositiveK) {
  const Matrix sample = RandomSample(10, 2, 1);
  for (int64_t k : {0, -3}) {
    Result<Matrix> result = TrainKMeans(sample, k);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(result.status().message(), "num_dbs must be > 0, got " + std::to_string(k));
  }
}

TEST(RoutingKMeansTest, RejectsFewerRowsThanCentroids) {
  Result<Matrix> result = TrainKMeans(RandomSample(3, 4, 1), 16);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "Need at least 16 vectors to train 16 centroids, got 3");
}

TEST(RoutingKMeansTest, RejectsEmptySample) {
  Result<Matrix> result = TrainKMeans(MakeMatrix(0, 4, {}), 2);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(), "cannot train centroids from an empty sample");
}

TEST(RoutingKMeansTest, RejectsMalformedSamples) {
  Result<Matrix> short_data = TrainKMeans(MakeMatrix(2, 2, {1, 2, 3}), 1);
  ASSERT_FALSE(short_data.ok());
  EXPECT_EQ(short_data.status().message(), "sample holds 3 values, expected 2 x 2 = 4");

  Result<Matrix> nan = TrainKMeans(MakeMatrix(2, 2, {1, 2, 3, NAN}), 1);
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.status().message(), "sample row 1 has a non-finite value (nan) at index 1");

  Result<Matrix> no_dim = TrainKMeans(MakeMatrix(2, 0, {}), 1);
  ASSERT_FALSE(no_dim.ok());
  EXPECT_EQ(no_dim.status().message(), "sample dim must be > 0, got 0");

  KMeansOptions options;
  options.max_iter = -1;
  Result<Matrix> bad_iter = TrainKMeans(MakeMatrix(2, 1, {1, 2}), 1, options);
  ASSERT_FALSE(bad_iter.ok());
  EXPECT_EQ(bad_iter.status().message(), "max_iter must be >= 0, got -1");
}

TEST(RoutingKMeansTest, SameSeedGivesBitIdenticalCentroids) {
  const Matrix sample = RandomSample(2000, 16, 7);
  Result<Matrix> first = TrainKMeans(sample, 8);
  Result<Matrix> second = TrainKMeans(sample, 8);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->rows, 8);
  EXPECT_EQ(first->cols, 16);
  EXPECT_EQ(first->data, second->data);
}

TEST(RoutingKMeansTest, DifferentSeedGivesDifferentCentroids) {
  const Matrix sample = RandomSample(2000, 16, 7);
  KMeansOptions other;
  other.seed = 43;
  Result<Matrix> default_seed = TrainKMeans(sample, 8);
  Result<Matrix> other_seed = TrainKMeans(sample, 8, other);
  ASSERT_TRUE(default_seed.ok());
  ASSERT_TRUE(other_seed.ok());
  EXPECT_NE(default_seed->data, other_seed->data);
}

// Large enough that both the assignment and the centroid update split across threads.
TEST(RoutingKMeansTest, ThreadCountDoesNotChangeCentroids) {
  KMeansOptions options;
  options.max_iter = 3;
  ExpectSameCentroidsForThreadCounts(RandomSample(32768, 256, 3), 4, options, {1, 3, 8});
}

// The distance kernels come in three instruction sets with the same lane order; a sample must train
// the same centroids on each (a dimension with a tail, k with a remainder after groups of 4).
TEST(RoutingKMeansTest, EveryInstructionSetTrainsTheSameCentroids) {
  const Matrix sample = RandomSample(3000, 37, 5);
  KMeansOptions options;
  options.max_iter = 6;
  options.isa = ScanIsa::kScalar;
  Result<Matrix> scalar = TrainKMeans(sample, 7, options);
  ASSERT_TRUE(scalar.ok());
  int compared = 0;
  for (ScanIsa isa : {ScanIsa::kAvx2, ScanIsa::kAvx512}) {
    if (!ScanIsaSupported(isa)) continue;
    options.isa = isa;
    Result<Matrix> other = TrainKMeans(sample, 7, options);
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(other->data, scalar->data) << ScanIsaName(isa);
    ++compared;
  }
  if (compared == 0) GTEST_SKIP() << "no AVX2 on this CPU: nothing to compare";
}

// Pins the random draws (integer and double from mt19937_64) so any change to them is noticed:
// centroids are persisted, but a rebuild with the same sample must give the same shards.
TEST(RoutingKMeansTest, SeedingAndResultArePinnedForSeed42) {
  Matrix squares = MakeMatrix(10, 1, {});
  for (int i = 0; i < 10; ++i) squares.data.push_back(static_cast<float>(i * i));

  KMeansOptions seeding_only;
  seeding_only.max_iter = 0;
  Result<Matrix> seeds = TrainKMeans(squares, 3, seeding_only);
  ASSERT_TRUE(seeds.ok());
  EXPECT_EQ(seeds->data, (std::vector<float>{36, 64, 9}));

  Result<Matrix> trained = TrainKMeans(squares, 3);
  ASSERT_TRUE(trained.ok());
  // {25, 36, 49}, {64, 81} and {0, 1, 4, 9, 16}, in seeding order.
  EXPECT_EQ(trained->data, (std::vector<float>{static_cast<float>(110.0 / 3), 72.5f, 6.0f}));
}

TEST(RoutingKMeansTest, RecoversWellSeparatedGaussianClusters) {
  constexpr int kClusters = 5;
  constexpr int kPerCluster = 200;
  constexpr int kDim = 8;
  std::mt19937 rng(11);
  std::normal_distribution<float> noise(0.0f, 0.5f);
  Matrix sample = MakeMatrix(kClusters * kPerCluster, kDim, {});
  std::vector<int> truth;
  for (int c = 0; c < kClusters; ++c) {
    for (int i = 0; i < kPerCluster; ++i) {
      for (int d = 0; d < kDim; ++d) {
        // Centre c sits at 20 on axis c (and 0 elsewhere), far beyond the noise.
        sample.data.push_back((d == c ? 20.0f : 0.0f) + noise(rng));
      }
      truth.push_back(c);
    }
  }

  for (uint64_t seed : {42, 1, 2, 3}) {
    KMeansOptions options;
    options.seed = seed;
    Result<Matrix> centroids = TrainKMeans(sample, kClusters, options);
    ASSERT_TRUE(centroids.ok());
    std::vector<int64_t> centroid_of_cluster(kClusters, -1);
    for (int64_t r = 0; r < sample.rows; ++r) {
      const int64_t nearest = NearestRow(*centroids, sample.row(r));
      int64_t& expected = centroid_of_cluster[truth[r]];
      if (expected < 0) expected = nearest;
      ASSERT_EQ(nearest, expected) << "true cluster " << truth[r] << " split, seed " << seed;
    }
    std::vector<int64_t> distinct = centroid_of_cluster;
    std::sort(distinct.begin(), distinct.end());
    EXPECT_EQ(std::unique(distinct.begin(), distinct.end()), distinct.end())
        << "two true clusters share a centroid, seed " << seed;
    for (int c = 0; c < kClusters; ++c) {
      EXPECT_NEAR(centroids->row(centroid_of_cluster[c])[c], 20.0f, 0.2f);
    }
  }
}

// Every row equals a chosen centroid after two picks, so the third is drawn uniformly and repeats
// one of them; the repeat loses every tie, stays empty, and must keep its seeded value (not 0/0 =
// NaN, not zero). So training ends exactly on the seeds.
TEST(RoutingKMeansTest, EmptyClusterKeepsItsCentroid) {
  const Matrix sample = MakeMatrix(4, 2, {0, 0, 0, 0, 0, 0, 10, 10});
  int repeats_of_ten = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    KMeansOptions options;
    options.seed = seed;
    options.max_iter = 0;
    Result<Matrix> seeds = TrainKMeans(sample, 3, options);
    options.max_iter = 100;
    Result<Matrix> trained = TrainKMeans(sample, 3, options);
    ASSERT_TRUE(seeds.ok());
    ASSERT_TRUE(trained.ok());
    ASSERT_NE(seeds->row(0)[0], seeds->row(1)[0]) << "seed " << seed;
    EXPECT_EQ(trained->data, seeds->data) << "seed " << seed;
    repeats_of_ten += seeds->row(2)[0] == 10.0f;
  }
  // The case that tells "keep" from "reset to zero" must have come up.
  EXPECT_GT(repeats_of_ten, 0);
}

// With seeds 0 and 2, the row 1 is exactly as far from both and must join the lower index.
TEST(RoutingKMeansTest, LloydTiesGoToTheLowestIndex) {
  const Matrix sample = MakeMatrix(3, 1, {0, 1, 2});
  int tied_cases = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    KMeansOptions options;
    options.seed = seed;
    options.max_iter = 0;
    Result<Matrix> seeds = TrainKMeans(sample, 2, options);
    ASSERT_TRUE(seeds.ok());
    if (std::abs(seeds->data[0] - seeds->data[1]) != 2.0f) continue;
    ++tied_cases;
    options.max_iter = 1;
    Result<Matrix> once = TrainKMeans(sample, 2, options);
    ASSERT_TRUE(once.ok());
    const std::vector<float> expected = {(seeds->data[0] + 1.0f) / 2.0f, seeds->data[1]};
    EXPECT_EQ(once->data, expected) << "seed " << seed;
  }
  EXPECT_GT(tied_cases, 0);
}

TEST(RoutingKMeansTest, KEqualToRowsReturnsEveryRow) {
  const Matrix sample = RandomSample(6, 3, 5);
  Result<Matrix> centroids = TrainKMeans(sample, 6);
  ASSERT_TRUE(centroids.ok());
  for (int64_t r = 0; r < sample.rows; ++r) {
    bool found = false;
    for (int64_t c = 0; c < centroids->rows; ++c) {
      found = found || SameRow(sample.row(r), centroids->row(c), sample.cols);
    }
    EXPECT_TRUE(found) << "sample row " << r << " is not a centroid";
  }
}

// The first update moves each centroid by less than the tolerance, so training stops there and
// returns the centroids from before that update: sample rows, not the means.
TEST(RoutingKMeansTest, ConvergenceReturnsCentroidsBeforeTheLastUpdate) {
  const float nudge = std::ldexp(1.0f, -20);  // ~9.5e-7, inside atol + rtol * |value|
  const Matrix sample = MakeMatrix(4, 1, {0.0f, nudge, 1.0f, 1.0f + nudge});
  Result<Matrix> centroids = TrainKMeans(sample, 2);
  ASSERT_TRUE(centroids.ok());
  for (int64_t c = 0; c < centroids->rows; ++c) {
    EXPECT_TRUE(IsSampleRow(sample, centroids->row(c))) << "centroid " << centroids->row(c)[0];
  }
}

TEST(RoutingKMeansTest, MaxIterZeroReturnsSeedsAndOneIterationReturnsMeans) {
  const Matrix sample = MakeMatrix(6, 1, {0, 1, 2, 100, 101, 102});
  KMeansOptions options;
  options.max_iter = 0;
  Result<Matrix> seeds = TrainKMeans(sample, 2, options);
  ASSERT_TRUE(seeds.ok());
  for (int64_t c = 0; c < 2; ++c) EXPECT_TRUE(IsSampleRow(sample, seeds->row(c)));

  options.max_iter = 1;
  Result<Matrix> once = TrainKMeans(sample, 2, options);
  ASSERT_TRUE(once.ok());
  std::vector<float> sorted = once->data;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<float>{1.0f, 101.0f}));
}

}  // namespace
}  // namespace shardvec

namespace shardvec {
namespace {

// The progress callback sees every Lloyd iteration in order with its inertia, which never rises,
// and the centroids are those of a run without it.
TEST(RoutingKMeansTest, OnIterationReportsEachIterationAndAFallingInertiaWithoutChangingCentroids) {
  const Matrix sample = RandomSample(2000, 16, 7);
  std::vector<std::pair<int, double>> seen;
  KMeansOptions options;
  options.on_iteration = [&seen](int iteration, double inertia) { seen.emplace_back(iteration, inertia); };
  Result<Matrix> reported = TrainKMeans(sample, 8, options);
  Result<Matrix> silent = TrainKMeans(sample, 8);
  ASSERT_TRUE(reported.ok()) << reported.status().ToString();
  ASSERT_TRUE(silent.ok());
  EXPECT_EQ(reported->data, silent->data);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_LE(seen.size(), 100u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i].first, static_cast<int>(i) + 1);
    EXPECT_GT(seen[i].second, 0.0);
    if (i > 0) EXPECT_LE(seen[i].second, seen[i - 1].second * (1 + 1e-6)) << "iteration " << i + 1;
  }
  // The inertia is the sum of squared distances to the nearest centroid: with k = rows, after the
  // first assignment every row is its own centroid.
  const Matrix tiny = RandomSample(4, 3, 9);
  std::vector<double> inertias;
  options.on_iteration = [&inertias](int, double inertia) { inertias.push_back(inertia); };
  ASSERT_TRUE(TrainKMeans(tiny, 4, options).ok());
  ASSERT_FALSE(inertias.empty());
  EXPECT_EQ(inertias[0], 0.0);
}

}  // namespace
}  // namespace shardvec

namespace shardvec {
namespace {

// `clusters` Gaussian blobs (centres ~N(0, 4), noise N(0, 1)) in `cols` dimensions.
Matrix ClusteredSample(int64_t rows, int64_t cols, int clusters, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> centres(static_cast<size_t>(clusters * cols));
  for (float& value : centres) value = 4.0f * normal(rng);
  Matrix m = MakeMatrix(rows, cols, {});
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t c = static_cast<int64_t>(rng() % static_cast<uint32_t>(clusters));
    for (int64_t d = 0; d < cols; ++d) m.data.push_back(centres[c * cols + d] + normal(rng));
  }
  return m;
}

// The sum of the rows' squared L2 distances to their nearest centroid, in double.
double Inertia(const Matrix& sample, const Matrix& centroids) {
  double total = 0.0;
  for (int64_t r = 0; r < sample.rows; ++r) {
    const float* v = sample.row(r);
    const float* c = centroids.row(NearestRow(centroids, v));
    for (int64_t d = 0; d < sample.cols; ++d) total += (static_cast<double>(c[d]) - v[d]) * (c[d] - v[d]);
  }
  return total;
}

std::vector<double> Inertias(const Matrix& sample, int64_t k, KMeansOptions options) {
  std::vector<double> seen;
  options.on_iteration = [&seen](int, double inertia) { seen.push_back(inertia); };
  EXPECT_TRUE(TrainKMeans(sample, k, options).ok());
  return seen;
}

// Training stops at the first assignment that lowers the inertia by no more than inertia_tol of the
// previous one, well before the coordinate test (made unreachable here) or max_iter would stop it.
TEST(RoutingKMeansTest, InertiaToleranceStopsTrainingEarly) {
  const Matrix sample = RandomSample(3000, 8, 21);
  KMeansOptions options;
  options.warm_start_rows_per_centroid = 0;
  options.rtol = 0;
  options.atol = 0;
  options.max_iter = 60;
  options.inertia_tol = 0;
  const std::vector<double> full = Inertias(sample, 16, options);
  options.inertia_tol = 1e-3;
  const std::vector<double> early = Inertias(sample, 16, options);
  ASSERT_GE(early.size(), 2u);
  EXPECT_LT(early.size(), full.size());
  // The same iterations up to the stop, and the stop is where the rule says.
  for (size_t i = 0; i < early.size(); ++i) EXPECT_EQ(early[i], full[i]) << "iteration " << i + 1;
  for (size_t i = 1; i + 1 < early.size(); ++i) {
    EXPECT_GT(early[i - 1] - early[i], 1e-3 * early[i - 1]) << "iteration " << i + 1;
  }
  const size_t last = early.size() - 1;
  EXPECT_LE(early[last - 1] - early[last], 1e-3 * early[last - 1]);
}

// Quality on a clustered set against full Lloyd (whole sample from the seeding on, no early stop).
// The early stop alone costs under 0.1% of inertia for each seed. A sample larger than k x
// warm_start_rows_per_centroid trains first on a subsample: its result differs, and since the local
// optimum depends on the seeding far more than that (about 15% between seeds here), it is compared
// as the mean over four seeds, within 3% of full Lloyd's mean.
TEST(RoutingKMeansTest, EarlyStopAndWarmStartKeepTheInertiaOfFullLloyd) {
  const Matrix sample = ClusteredSample(40000, 24, 40, 5);
  double full_total = 0, fast_total = 0;
  for (uint64_t seed : {1, 2, 3, 42}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    KMeansOptions full;
    full.seed = seed;
    full.warm_start_rows_per_centroid = 0;
    full.inertia_tol = 0;
    KMeansOptions early_only = full;
    early_only.inertia_tol = KMeansOptions{}.inertia_tol;
    KMeansOptions fast;  // the defaults: warm start on 32 x 256 rows, early stop
    fast.seed = seed;
    Result<Matrix> reference = TrainKMeans(sample, 32, full);
    Result<Matrix> early = TrainKMeans(sample, 32, early_only);
    Result<Matrix> warm = TrainKMeans(sample, 32, fast);
    ASSERT_TRUE(reference.ok());
    ASSERT_TRUE(early.ok());
    ASSERT_TRUE(warm.ok());
    const double full_inertia = Inertia(sample, *reference);
    EXPECT_LE(Inertia(sample, *early), 1.001 * full_inertia);
    EXPECT_NE(warm->data, reference->data);
    full_total += full_inertia;
    fast_total += Inertia(sample, *warm);
  }
  EXPECT_LE(fast_total, 1.03 * full_total);
}

// The warm start gives the same centroids for every thread count, and only the whole-sample
// iterations are reported (their inertia never rises).
TEST(RoutingKMeansTest, WarmStartIsTheSameForEveryThreadCount) {
  const Matrix sample = ClusteredSample(40000, 24, 40, 5);
  KMeansOptions fast;  // the defaults: warm start on 32 x 256 rows, early stop
  ExpectSameCentroidsForThreadCounts(sample, 32, fast, {1, 2, 5});

  const std::vector<double> reported = Inertias(sample, 32, fast);
  ASSERT_FALSE(reported.empty());
  for (size_t i = 1; i < reported.size(); ++i) EXPECT_LE(reported[i], reported[i - 1] * (1 + 1e-6));
  // The first whole-sample assignment starts from trained centroids: already near the end.
  const std::vector<double> from_seeds = Inertias(sample, 32, KMeansOptions{.warm_start_rows_per_centroid = 0});
  EXPECT_LT(reported.size(), from_seeds.size());
}

TEST(RoutingKMeansTest, RejectsBadEarlyStopAndWarmStartOptions) {
  const Matrix sample = RandomSample(20, 2, 1);
  KMeansOptions options;
  options.inertia_tol = -0.5;
  Result<Matrix> negative = TrainKMeans(sample, 2, options);
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().message(), "inertia_tol must be >= 0, got -0.5");
  options.inertia_tol = std::nan("");
  Result<Matrix> nan = TrainKMeans(sample, 2, options);
  ASSERT_FALSE(nan.ok());
  EXPECT_EQ(nan.status().message(), "inertia_tol must be >= 0, got nan");
  options.inertia_tol = 0;
  options.warm_start_rows_per_centroid = -1;
  Result<Matrix> warm = TrainKMeans(sample, 2, options);
  ASSERT_FALSE(warm.ok());
  EXPECT_EQ(warm.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(warm.status().message(), "warm_start_rows_per_centroid must be >= 0, got -1");
}

}  // namespace
}  // namespace shardvec
