#include "routing/cluster.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "routing/distance.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::MakeMatrix;


std::vector<float> RandomVector(std::mt19937& rng, int64_t dim) {
  std::normal_distribution<float> normal;
  std::vector<float> v(static_cast<size_t>(dim));
  for (float& value : v) value = normal(rng);
  return v;
}

TEST(RoutingDistanceTest, L2IsSquaredEuclidean) {
  const float a[] = {1, 2, 3};
  const float b[] = {4, 6, 3};
  EXPECT_EQ(RoutingDistance(Metric::kL2, a, b, 3), 25.0);
  EXPECT_EQ(RoutingDistance(Metric::kL2, a, a, 3), 0.0);
}

TEST(RoutingDistanceTest, CosineIsOneMinusCosineSimilarity) {
  const float x[] = {1, 0};
  const float y[] = {0, 1};
  const float twice_x[] = {2, 0};
  const float minus_x[] = {-1, 0};
  const float diagonal[] = {1, 1};
  const float zero[] = {0, 0};
  EXPECT_NEAR(RoutingDistance(Metric::kCosine, x, y, 2), 1.0, 1e-12);
  EXPECT_NEAR(RoutingDistance(Metric::kCosine, x, twice_x, 2), 0.0, 1e-9);
  EXPECT_NEAR(RoutingDistance(Metric::kCosine, x, minus_x, 2), 2.0, 1e-9);
  EXPECT_NEAR(RoutingDistance(Metric::kCosine, x, diagonal, 2), 1.0 - 1.0 / std::sqrt(2.0), 1e-9);
  // The epsilon keeps a zero vector finite: distance exactly 1 to everything.
  EXPECT_EQ(RoutingDistance(Metric::kCosine, zero, x, 2), 1.0);
  EXPECT_EQ(RoutingDistance(Metric::kCosine, zero, zero, 2), 1.0);
}

TEST(RoutingDistanceTest, AccumulatesInDouble) {
  // 1e8 + 1 is not a float, but the squared difference of these floats is exact in double.
  const float a[] = {1e4f, 1.0f};
  const float b[] = {0.0f, 0.0f};
  EXPECT_EQ(RoutingDistance(Metric::kL2, a, b, 2), 1e8 + 1.0);
}

// A long double reference, summed in plain order: agreement to 1e-12 says every lane was counted.
long double ReferenceDistance(Metric m, const std::vector<float>& a, const std::vector<float>& b) {
  long double dot = 0, aa = 0, bb = 0, l2 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const long double x = a[i], y = b[i];
    dot += x * y;
    aa += x * x;
    bb += y * y;
    l2 += (x - y) * (x - y);
  }
  return m == Metric::kL2 ? l2 : 1.0L - dot / (std::sqrt(aa) * std::sqrt(bb) + 1e-10L);
}

TEST(RoutingDistanceTest, EveryInstructionSetGivesTheSameBits) {
  // Routing decides a row's shard: a Spark executor with AVX-512 and one without must agree.
  std::mt19937 rng(7);
  int compared = 0;
  for (int64_t dim : {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 383, 384, 784, 1536}) {
    for (int trial = 0; trial < 20; ++trial) {
      const std::vector<float> a = RandomVector(rng, dim), b = RandomVector(rng, dim);
      for (Metric m : {Metric::kL2, Metric::kCosine}) {
        const double scalar = RoutingDistance(m, a.data(), b.data(), dim, ScanIsa::kScalar);
        const long double reference = ReferenceDistance(m, a, b);
        EXPECT_NEAR(scalar, static_cast<double>(reference), 1e-12 * std::max(1.0L, std::abs(reference)))
            << "dim " << dim;
        for (ScanIsa isa : {ScanIsa::kAvx2, ScanIsa::kAvx512}) {
          if (!ScanIsaSupported(isa)) continue;
          EXPECT_EQ(RoutingDistance(m, a.data(), b.data(), dim, isa), scalar)
              << ScanIsaName(isa) << " dim " << dim << " metric " << static_cast<int>(m);
          ++compared;
        }
      }
    }
  }
  if (!ScanIsaSupported(ScanIsa::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU: nothing to compare";
  EXPECT_GT(compared, 0);
}

TEST(RoutingDistanceTest, OneVectorToManyEqualsPairwise) {
  std::mt19937 rng(11);
  const int64_t dim = 97;
  const std::vector<float> from = RandomVector(rng, dim);
  for (Metric m : {Metric::kL2, Metric::kCosine}) {
    std::vector<std::vector<float>> to;
    std::vector<const float*> pointers;
    for (int i = 0; i < 11; ++i) to.push_back(RandomVector(rng, dim));
    for (const auto& v : to) pointers.push_back(v.data());
    for (ScanIsa isa : {ScanIsa::kScalar, ScanIsa::kAvx2, ScanIsa::kAvx512}) {
      if (!ScanIsaSupported(isa)) continue;
      const RoutingDistanceFrom distances(m, from.data(), dim, isa);
      std::vector<double> each(to.size());
      distances.ToEach(pointers.data(), static_cast<int64_t>(to.size()), each.data());  // 2 groups of 4, 3 single
      for (size_t i = 0; i < to.size(); ++i) {
        const double pairwise = RoutingDistance(m, from.data(), to[i].data(), dim, ScanIsa::kScalar);
        EXPECT_EQ(distances.To(to[i].data()), pairwise) << ScanIsaName(isa);
        EXPECT_EQ(each[i], pairwise) << ScanIsaName(isa) << " " << i;
      }
    }
  }
}

TEST(RoutingClusterTest, CosineAndL2CanDisagree) {
  // (2, 1) is nearer (0, 1) in space but points more along (10, 0).
  const Matrix centroids = MakeMatrix(2, 2, {10, 0, 0, 1});
  const float v[] = {2, 1};
  EXPECT_EQ(ClusterAssign(v, centroids, Metric::kL2), 1);
  EXPECT_EQ(ClusterAssign(v, centroids, Metric::kCosine), 0);
  EXPECT_EQ(ClusterProbe(v, centroids, Metric::kL2, 2), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(ClusterProbe(v, centroids, Metric::kCosine, 2), (std::vector<int64_t>{0, 1}));
}

TEST(RoutingClusterTest, DuplicateCentroidsTieToTheLowestIndex) {
  // Rows 1 and 2 are the same point; rows 0 and 3 are mirror images, exactly as far from v.
  const Matrix centroids = MakeMatrix(4, 2, {0, 2, 1, 1, 1, 1, 2, 0});
  const float v[] = {1, 1};
  for (Metric m : {Metric::kL2, Metric::kCosine}) {
    EXPECT_EQ(ClusterAssign(v, centroids, m), 1);
    EXPECT_EQ(ClusterProbe(v, centroids, m, 4), (std::vector<int64_t>{1, 2, 0, 3}));
    EXPECT_EQ(ClusterProbe(v, centroids, m, 1), (std::vector<int64_t>{1}));
  }
}

// Under cosine the 1e-10 in the denominator breaks "ties" between parallel centroids of
// different lengths: the longer one is slightly nearer. The reference does the same.
TEST(RoutingClusterTest, CosineEpsilonFavoursLongerParallelCentroids) {
  const Matrix centroids = MakeMatrix(3, 2, {1, 1, 3, 3, 5, 5});
  const float v[] = {1, 1};
  EXPECT_EQ(ClusterAssign(v, centroids, Metric::kCosine), 2);
  EXPECT_EQ(ClusterProbe(v, centroids, Metric::kCosine, 3), (std::vector<int64_t>{2, 1, 0}));
}

TEST(RoutingClusterTest, EquidistantCentroidsKeepIndexOrder) {
  const Matrix centroids = MakeMatrix(4, 2, {0, 3, 1, 0, 0, 1, -1, 0});
  const float origin[] = {0, 0};
  EXPECT_EQ(ClusterAssign(origin, centroids, Metric::kL2), 1);
  EXPECT_EQ(ClusterProbe(origin, centroids, Metric::kL2, 3), (std::vector<int64_t>{1, 2, 3}));
  // A zero query is at cosine distance 1 from everything: shard 0, then index order.
  EXPECT_EQ(ClusterAssign(origin, centroids, Metric::kCosine), 0);
  EXPECT_EQ(ClusterProbe(origin, centroids, Metric::kCosine, 4),
            (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(RoutingClusterTest, ProbeCountEdges) {
  const Matrix centroids = MakeMatrix(3, 1, {0, 10, 20});
  const float v[] = {12};
  EXPECT_TRUE(ClusterProbe(v, centroids, Metric::kL2, 0).empty());
  EXPECT_TRUE(ClusterProbe(v, centroids, Metric::kL2, -1).empty());
  EXPECT_EQ(ClusterProbe(v, centroids, Metric::kL2, 1), (std::vector<int64_t>{1}));
  EXPECT_EQ(ClusterProbe(v, centroids, Metric::kL2, 3), (std::vector<int64_t>{1, 2, 0}));
  EXPECT_EQ(ClusterProbe(v, centroids, Metric::kL2, 100), (std::vector<int64_t>{1, 2, 0}));
}

TEST(RoutingClusterTest, NoCentroids) {
  const Matrix none = MakeMatrix(0, 2, {});
  const float v[] = {1, 2};
  EXPECT_EQ(ClusterAssign(v, none, Metric::kL2), -1);
  EXPECT_TRUE(ClusterProbe(v, none, Metric::kL2, 3).empty());
}

TEST(RoutingClusterTest, NanQueryStillProbesItsAssignmentFirst) {
  const Matrix centroids = MakeMatrix(3, 2, {5, 5, 1, 1, 3, 3});
  const float v[] = {NAN, 1};
  for (Metric m : {Metric::kL2, Metric::kCosine}) {
    const std::vector<int64_t> probe = ClusterProbe(v, centroids, m, 3);
    ASSERT_EQ(probe.size(), 3u);
    EXPECT_EQ(probe.front(), ClusterAssign(v, centroids, m));
  }
}

// The routing contract (docs/routing.md#the-routing-contract): for every vector the writer's shard is the reader's probe 0,
// and probe lists are duplicate-free, in range, sorted by distance and min(num_probes, num_dbs)
// long. Half the centroid sets repeat rows so ties are common.
TEST(RoutingClusterTest, ContractHoldsForRandomVectors) {
  std::mt19937 rng(2024);
  for (int64_t dim : {1, 3, 16, 64}) {
    for (int64_t num_dbs : {1, 2, 5, 16}) {
      for (bool with_duplicates : {false, true}) {
        Matrix centroids = MakeMatrix(num_dbs, dim, {});
        for (int64_t c = 0; c < num_dbs; ++c) {
          std::vector<float> row = RandomVector(rng, dim);
          if (with_duplicates && c > 0 && rng() % 2 == 0) {
            const float* earlier = centroids.row(static_cast<int64_t>(rng() % c));
            row.assign(earlier, earlier + dim);
          }
          centroids.data.insert(centroids.data.end(), row.begin(), row.end());
        }
        for (int trial = 0; trial < 200; ++trial) {
          const std::vector<float> v = RandomVector(rng, dim);
          for (Metric m : {Metric::kL2, Metric::kCosine}) {
            const int64_t assigned = ClusterAssign(v.data(), centroids, m);
            ASSERT_GE(assigned, 0);
            ASSERT_LT(assigned, num_dbs);
            for (int64_t d = 0; d < num_dbs; ++d) {
              const double other = RoutingDistance(m, v.data(), centroids.row(d), dim);
              const double mine = RoutingDistance(m, v.data(), centroids.row(assigned), dim);
              ASSERT_TRUE(mine < other || (mine == other && assigned <= d));
            }
            for (int64_t num_probes : {int64_t{1}, int64_t{2}, int64_t{3}, num_dbs, num_dbs + 3}) {
              const std::vector<int64_t> probe = ClusterProbe(v.data(), centroids, m, num_probes);
              ASSERT_EQ(static_cast<int64_t>(probe.size()), std::min(num_probes, num_dbs));
              ASSERT_EQ(probe.front(), assigned);
              ASSERT_EQ(std::set<int64_t>(probe.begin(), probe.end()).size(), probe.size());
              for (size_t i = 0; i < probe.size(); ++i) {
                ASSERT_GE(probe[i], 0);
                ASSERT_LT(probe[i], num_dbs);
                if (i == 0) continue;
                const float* previous = centroids.row(probe[i - 1]);
                const double before = RoutingDistance(m, v.data(), previous, dim);
                const double here = RoutingDistance(m, v.data(), centroids.row(probe[i]), dim);
                ASSERT_TRUE(before < here || (before == here && probe[i - 1] < probe[i]));
              }
            }
          }
        }
      }
    }
  }
}

// The exact nearest centroid, straight from the double distances: the reference ClusterAssign's
// float pass must never contradict.
int64_t NearestByDoubles(const float* v, const Matrix& centroids, Metric m) {
  int64_t best = 0;
  double best_distance = RoutingDistance(m, v, centroids.row(0), centroids.cols);
  for (int64_t c = 1; c < centroids.rows; ++c) {
    const double d = RoutingDistance(m, v, centroids.row(c), centroids.cols);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

// ClusterAssign decides most rows with float estimates and their error bound. Near ties are where a
// wrong bound would show: points on (and a few ulps off) the bisector of two centroids, and
// centroids that differ in one ulp, in dimensions that are and are not multiples of 16.
TEST(RoutingClusterTest, FloatPassAgreesWithDoublesOnNearTies) {
  std::mt19937 rng(7);
  int64_t checked = 0;
  for (int64_t dim : {1, 7, 16, 33, 384, 785}) {
    for (Metric m : {Metric::kL2, Metric::kCosine}) {
      const int64_t num_dbs = 9;
      Matrix centroids = MakeMatrix(num_dbs, dim, {});
      for (int64_t c = 0; c < num_dbs; ++c) {
        std::vector<float> row = RandomVector(rng, dim);
        if (c == 1) {  // centroid 1 is centroid 0 one ulp away in one coordinate
          row.assign(centroids.row(0), centroids.row(0) + dim);
          row[0] = std::nextafter(row[0], 10.0f);
        }
        centroids.data.insert(centroids.data.end(), row.begin(), row.end());
      }
      for (int trial = 0; trial < 300; ++trial) {
        const int64_t a = static_cast<int64_t>(rng() % num_dbs), b = static_cast<int64_t>(rng() % num_dbs);
        std::vector<float> v(static_cast<size_t>(dim));
        const float t = 0.5f + static_cast<float>(static_cast<int>(rng() % 7) - 3) * 1e-7f;
        for (int64_t i = 0; i < dim; ++i) {
          v[i] = t * centroids.row(a)[i] + (1.0f - t) * centroids.row(b)[i];
          if (rng() % 4 == 0) v[i] = std::nextafter(v[i], (rng() % 2) ? 10.0f : -10.0f);
        }
        if (trial % 3 == 0) v = RandomVector(rng, dim);  // and ordinary rows
        const int64_t nearest = NearestByDoubles(v.data(), centroids, m);
        for (ScanIsa isa : {ScanIsa::kScalar, ScanIsa::kAvx2, ScanIsa::kAvx512}) {
          if (!ScanIsaSupported(isa)) continue;
          ASSERT_EQ(ClusterAssign(v.data(), centroids, m, isa), nearest)
              << "dim " << dim << " metric " << MetricName(m) << " trial " << trial << " isa " << static_cast<int>(isa);
          ++checked;
        }
      }
    }
  }
  EXPECT_GE(checked, 6 * 2 * 300 * 2);  // scalar and at least one vector instruction set
}

// Values whose squares overflow float (but not double) or underflow it: the float pass has no
// bound there and the doubles decide.
TEST(RoutingClusterTest, FloatPassStepsAsideOnOverflowAndUnderflow) {
  for (float scale : {1e25f, 1e-25f}) {
    const Matrix centroids = MakeMatrix(3, 2, {0, 0, 3 * scale, 0, 0, 2 * scale});
    const float v[] = {1.4f * scale, 1.1f * scale};
    for (Metric m : {Metric::kL2, Metric::kCosine}) {
      EXPECT_EQ(ClusterAssign(v, centroids, m), NearestByDoubles(v, centroids, m)) << scale;
    }
  }
  // Squared l2 to the centroids: 0 is 3.17 s^2, 1 is 3.77 s^2, 2 is 2.77 s^2 (2 wins).
  const float scale = 1e25f;
  const Matrix centroids = MakeMatrix(3, 2, {0, 0, 3 * scale, 0, 0, 2 * scale});
  const float v[] = {1.4f * scale, 1.1f * scale};
  EXPECT_EQ(ClusterAssign(v, centroids, Metric::kL2), 2);
}

}  // namespace
}  // namespace shardvec
