#include "routing/lsh.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>
#include "support/test_util.h"

namespace shardvec {
namespace {

using testing::MakeMatrix;


Matrix Identity(int64_t n) {
  Matrix m = MakeMatrix(n, n, std::vector<float>(static_cast<size_t>(n * n), 0.0f));
  for (int64_t i = 0; i < n; ++i) m.row(i)[i] = 1.0f;
  return m;
}

TEST(RoutingLshTest, IdentityHyperplanesReadTheSignBits) {
  const Matrix planes = Identity(4);
  const float v[] = {1, -1, 0, 2};
  // Bit 0 (1 > 0) and bit 3 (2 > 0); -1 and the zero projection give 0.
  EXPECT_EQ(LshCode(v, planes), 0b1001u);
  EXPECT_EQ(LshAssign(v, planes, 16), 9);
  EXPECT_EQ(LshAssign(v, planes, 4), 1);
  EXPECT_EQ(LshAssign(v, planes, 5), 4);
  EXPECT_EQ(LshAssign(v, planes, 1), 0);
}

TEST(RoutingLshTest, ZeroProjectionIsNotPositive) {
  const Matrix planes = Identity(3);
  const float zero[] = {0, 0, 0};
  const float negative_zero[] = {-0.0f, -0.0f, -0.0f};
  const float tiny[] = {1e-30f, 0, -1e-30f};
  EXPECT_EQ(LshCode(zero, planes), 0u);
  EXPECT_EQ(LshCode(negative_zero, planes), 0u);
  EXPECT_EQ(LshCode(tiny, planes), 0b001u);
}

TEST(RoutingLshTest, CodeFromHandComputedProjections) {
  const Matrix planes = MakeMatrix(3, 2, {1, 1, 1, -1, -1, 0});
  const float a[] = {2, 1};  // projections 3, 1, -2
  const float b[] = {1, 1};  // projections 2, 0, -1
  const float c[] = {-1, 3};  // projections 2, -4, 1
  EXPECT_EQ(LshCode(a, planes), 0b011u);
  EXPECT_EQ(LshCode(b, planes), 0b001u);
  EXPECT_EQ(LshCode(c, planes), 0b101u);
}

TEST(RoutingLshTest, ProjectionAccumulatesInDouble) {
  // In float, 1e8 + 1 - 1e8 rounds to 0; in double it is 1 > 0.
  const Matrix planes = MakeMatrix(1, 3, {1, 1, -1});
  const float v[] = {1e8f, 1.0f, 1e8f};
  EXPECT_EQ(LshCode(v, planes), 1u);
}

TEST(RoutingLshTest, ProbeFlipsBitsFromBitZero) {
  const Matrix planes = Identity(4);
  const float v[] = {1, -1, 0, 2};  // code 0b1001 = 9
  // 16 shards: 9, then 9^1 = 8, 9^2 = 11, 9^4 = 13, 9^8 = 1.
  EXPECT_EQ(LshProbe(v, planes, 16, 5), (std::vector<int64_t>{9, 8, 11, 13, 1}));
  EXPECT_EQ(LshProbe(v, planes, 16, 3), (std::vector<int64_t>{9, 8, 11}));
  EXPECT_EQ(LshProbe(v, planes, 16, 50), (std::vector<int64_t>{9, 8, 11, 13, 1}));
  // 4 shards: 1, then 8 % 4 = 0, 11 % 4 = 3; 13 % 4 and 1 % 4 repeat shard 1.
  EXPECT_EQ(LshProbe(v, planes, 4, 10), (std::vector<int64_t>{1, 0, 3}));
  EXPECT_EQ(LshProbe(v, planes, 4, 2), (std::vector<int64_t>{1, 0}));
  // 3 shards: 0, then 8 % 3 = 2, 11 % 3 = 2 (skipped), 13 % 3 = 1, 1 % 3 = 1 (skipped).
  EXPECT_EQ(LshProbe(v, planes, 3, 10), (std::vector<int64_t>{0, 2, 1}));
  EXPECT_EQ(LshProbe(v, planes, 1, 10), (std::vector<int64_t>{0}));
}

TEST(RoutingLshTest, ProbeEdges) {
  const Matrix planes = Identity(4);
  const float v[] = {1, 1, 1, 1};
  EXPECT_TRUE(LshProbe(v, planes, 16, 0).empty());
  EXPECT_TRUE(LshProbe(v, planes, 16, -2).empty());
  EXPECT_TRUE(LshProbe(v, planes, 0, 3).empty());
  EXPECT_EQ(LshAssign(v, planes, 0), -1);
  // No hyperplanes: every vector has code 0 and there is nothing to flip.
  const Matrix no_planes = MakeMatrix(0, 4, {});
  EXPECT_EQ(LshCode(v, no_planes), 0u);
  EXPECT_EQ(LshProbe(v, no_planes, 8, 4), (std::vector<int64_t>{0}));
}

TEST(RoutingLshTest, SixtyFourBitsFillTheCode) {
  const int64_t dim = 2;
  Matrix planes = MakeMatrix(64, dim, {});
  for (int64_t bit = 0; bit < 64; ++bit) {
    planes.data.push_back(1.0f);
    planes.data.push_back(0.0f);
  }
  const float v[] = {1, 0};
  EXPECT_EQ(LshCode(v, planes), ~uint64_t{0});
  // 2^64 - 1 = 3 * 5 * 17 * 257 * 641 * 65537 * 6700417 is 0 mod 5, so flipping bit 0 (giving
  // 2^64 - 2) lands on 4. Plain uint64 arithmetic, as Python's big ints give.
  EXPECT_EQ(LshAssign(v, planes, 5), 0);
  EXPECT_EQ(LshProbe(v, planes, 5, 2), (std::vector<int64_t>{0, 4}));
}

TEST(RoutingLshTest, HyperplanesAreDeterministicAndSeedDependent) {
  const Matrix a = GenerateHyperplanes(8, 32);
  const Matrix b = GenerateHyperplanes(8, 32, 42);
  const Matrix c = GenerateHyperplanes(8, 32, 43);
  EXPECT_EQ(a.rows, 8);
  EXPECT_EQ(a.cols, 32);
  ASSERT_EQ(a.data.size(), 256u);
  EXPECT_EQ(a.data, b.data);
  EXPECT_NE(a.data, c.data);
  // Fewer bits with the same seed give a prefix: rows are filled in order.
  const Matrix fewer = GenerateHyperplanes(3, 32);
  EXPECT_TRUE(std::equal(fewer.data.begin(), fewer.data.end(), a.data.begin()));
  EXPECT_EQ(GenerateHyperplanes(0, 32).data.size(), 0u);
}

// Pins the generator (mt19937_64, 53-bit doubles, Box-Muller, cos value first) for seed 42.
TEST(RoutingLshTest, HyperplanesArePinnedForSeed42) {
  const Matrix planes = GenerateHyperplanes(2, 3);
  const std::vector<float> expected = {-1.07717454f, -1.28606343f, 1.09451985f,
                                       1.26168561f,  1.79473162f,  1.20440042f};
  ASSERT_EQ(planes.data.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_FLOAT_EQ(planes.data[i], expected[i]);
}

TEST(RoutingLshTest, HyperplanesAreStandardNormal) {
  const Matrix planes = GenerateHyperplanes(64, 1000, 7);
  double sum = 0.0;
  double sum_squares = 0.0;
  int64_t beyond_two_sigma = 0;
  for (float value : planes.data) {
    ASSERT_TRUE(std::isfinite(value));
    sum += value;
    sum_squares += static_cast<double>(value) * value;
    beyond_two_sigma += std::abs(value) > 2.0f;
  }
  const double n = static_cast<double>(planes.data.size());
  const double mean = sum / n;
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(sum_squares / n - mean * mean, 1.0, 0.03);
  EXPECT_NEAR(static_cast<double>(beyond_two_sigma) / n, 0.0455, 0.005);  // P(|Z| > 2)
}

// Every shard LshProbe could ever list: the primary and each single-bit flip.
std::set<int64_t> Reachable(uint64_t code, int64_t bits, int64_t num_dbs) {
  std::set<int64_t> shards = {static_cast<int64_t>(code % num_dbs)};
  for (int64_t bit = 0; bit < bits; ++bit) {
    shards.insert(static_cast<int64_t>((code ^ (uint64_t{1} << bit)) % num_dbs));
  }
  return shards;
}

TEST(RoutingLshTest, ContractHoldsForRandomVectors) {
  std::mt19937 rng(99);
  std::normal_distribution<float> normal;
  for (int64_t dim : {1, 4, 32}) {
    for (int64_t bits : {0, 1, 4, 8, 16}) {
      const Matrix planes = GenerateHyperplanes(bits, dim, rng());
      for (int trial = 0; trial < 200; ++trial) {
        std::vector<float> v(static_cast<size_t>(dim));
        for (float& value : v) value = normal(rng);
        const uint64_t code = LshCode(v.data(), planes);
        ASSERT_LT(code, uint64_t{1} << bits);
        for (int64_t num_dbs : {1, 2, 3, 8, 100}) {
          const int64_t assigned = LshAssign(v.data(), planes, num_dbs);
          ASSERT_GE(assigned, 0);
          ASSERT_LT(assigned, num_dbs);
          const std::set<int64_t> reachable = Reachable(code, bits, num_dbs);
          const std::vector<int64_t> all = LshProbe(v.data(), planes, num_dbs, 1 + bits);
          ASSERT_EQ(std::set<int64_t>(all.begin(), all.end()), reachable);
          for (int64_t num_probes : {1, 2, 5, 20}) {
            const std::vector<int64_t> probe = LshProbe(v.data(), planes, num_dbs, num_probes);
            const int64_t expected_size =
                std::min<int64_t>(num_probes, static_cast<int64_t>(reachable.size()));
            ASSERT_EQ(static_cast<int64_t>(probe.size()), expected_size);
            ASSERT_EQ(probe.front(), assigned);
            ASSERT_EQ(std::set<int64_t>(probe.begin(), probe.end()).size(), probe.size());
            // A shorter probe list is a prefix of a longer one.
            ASSERT_TRUE(std::equal(probe.begin(), probe.end(), all.begin()));
            for (int64_t shard : probe) {
              ASSERT_GE(shard, 0);
              ASSERT_LT(shard, num_dbs);
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace shardvec
