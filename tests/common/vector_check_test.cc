#include "common/vector_check.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace shardvec {
namespace {

TEST(CheckVectorValuesTest, NamesTheFirstNonFiniteValueAtEveryPosition) {
  // Positions inside the 8-wide blocks and in the tail, for lengths around the block size.
  const float bad_values[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity()};
  for (size_t dim : {1u, 7u, 8u, 9u, 16u, 17u, 31u}) {
    for (size_t at = 0; at < dim; ++at) {
      for (float bad : bad_values) {
        std::vector<float> v(dim, 1.5f);
        v[at] = bad;
        const Status st = CheckVectorValues(v, Metric::kL2, "vector");
        ASSERT_FALSE(st.ok()) << "dim " << dim << " at " << at;
        EXPECT_NE(st.message().find("vector[" + std::to_string(at) + "]"), std::string::npos) << st.message();
      }
    }
  }
}

TEST(CheckVectorValuesTest, ZeroVectorsAreRefusedOnlyUnderCosine) {
  for (size_t dim : {1u, 8u, 13u}) {
    std::vector<float> zeros(dim, 0.0f);
    zeros[dim / 2] = -0.0f;  // negative zero is zero too
    EXPECT_TRUE(CheckVectorValues(zeros, Metric::kL2, "v").ok());
    const Status st = CheckVectorValues(zeros, Metric::kCosine, "v");
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.message().find("all zeros"), std::string::npos);
    // The smallest denormal anywhere gives a direction.
    for (size_t at = 0; at < dim; ++at) {
      std::vector<float> tiny(dim, 0.0f);
      tiny[at] = std::numeric_limits<float>::denorm_min();
      EXPECT_TRUE(CheckVectorValues(tiny, Metric::kCosine, "v").ok()) << "dim " << dim << " at " << at;
    }
  }
}

TEST(CheckVectorValuesTest, FiniteExtremesPass) {
  std::vector<float> v = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::min(), 0.0f, 1.0f, -1.0f, 3.0f, 4.0f, 5.0f};
  EXPECT_TRUE(CheckVectorValues(v, Metric::kCosine, "v").ok());
}

}  // namespace
}  // namespace shardvec
