#include "common/half_float.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>

namespace shardvec {
namespace {

// Every one of the 65536 half values against its definition: (-1)^s * 2^(e-15) * (1 + m/1024) for
// normals, (-1)^s * 2^-14 * (m/1024) for subnormals (computed in double, exact for halves), and
// infinities / NaNs (the NaN payload kept in the top mantissa bits).
TEST(HalfFloatTest, EveryHalfValueWidensToTheFloatOfTheSameValue) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const uint16_t half = static_cast<uint16_t>(bits);
    const bool negative = (half & 0x8000) != 0;
    const int exponent = (half >> 10) & 0x1f;
    const int mantissa = half & 0x3ff;
    const float got = HalfToFloat(half);
    if (exponent == 0x1f) {
      if (mantissa == 0) {
        EXPECT_TRUE(std::isinf(got) && std::signbit(got) == negative) << bits;
      } else {
        EXPECT_TRUE(std::isnan(got)) << bits;
        EXPECT_EQ(std::bit_cast<uint32_t>(got) & 0x7fffffu, static_cast<uint32_t>(mantissa) << 13) << bits;
      }
      continue;
    }
    const double magnitude = exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
    const double want = negative ? -magnitude : magnitude;
    EXPECT_EQ(static_cast<double>(got), want) << bits;
    EXPECT_EQ(std::signbit(got), negative) << bits;  // -0 stays -0
  }
}

}  // namespace
}  // namespace shardvec
