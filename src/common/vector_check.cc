#include "common/vector_check.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace shardvec {
namespace {

constexpr uint32_t kExponentBits = 0x7f800000u;  // all ones: Inf or NaN
constexpr uint32_t kMagnitudeBits = 0x7fffffffu;  // zero only for +0 and -0

struct ValueSummary {
  bool any_non_finite = false;
  bool any_nonzero = false;
};

// One pass without branches, 8 values at a time, so every row of a large write is checked at
// memory speed; the slow loop below runs only to name the first bad value.
ValueSummary Summarise(std::span<const float> vector) {
  using Bits8 = uint32_t __attribute__((vector_size(32)));
  Bits8 non_finite = {}, magnitude = {};
  size_t i = 0;
  for (; i + 8 <= vector.size(); i += 8) {
    Bits8 bits;
    std::memcpy(&bits, vector.data() + i, sizeof bits);
    non_finite |= (Bits8)((bits & kExponentBits) == kExponentBits);
    magnitude |= bits & kMagnitudeBits;
  }
  uint32_t any_non_finite = 0, any_magnitude = 0;
  for (int lane = 0; lane < 8; ++lane) {
    any_non_finite |= non_finite[lane];
    any_magnitude |= magnitude[lane];
  }
  for (; i < vector.size(); ++i) {
    const auto bits = std::bit_cast<uint32_t>(vector[i]);
    any_non_finite |= (bits & kExponentBits) == kExponentBits;
    any_magnitude |= bits & kMagnitudeBits;
  }
  return {any_non_finite != 0, any_magnitude != 0};
}

}  // namespace

Status CheckVectorValues(std::span<const float> vector, Metric metric, std::string_view name) {
  const ValueSummary summary = Summarise(vector);
  if (summary.any_non_finite) {
    for (size_t i = 0; i < vector.size(); ++i) {
      if (!std::isfinite(vector[i])) {
        return Status::InvalidArgument(fmt::format("{}[{}] is {} (values must be finite)", name, i, vector[i]));
      }
    }
  }
  if (!summary.any_nonzero && metric == Metric::kCosine) {
    return Status::InvalidArgument(
        fmt::format("{} is all zeros, which has no direction under the cosine metric", name));
  }
  return Status::OK();
}

}  // namespace shardvec
