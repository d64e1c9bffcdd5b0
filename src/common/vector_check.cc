#include "common/vector_check.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace shardvec {
namespace {

constexpr uint32_t kExponentBits = 0x7f800000u;  // all ones: Inf or NaN
constexpr int32_t kMagnitudeBits = 0x7fffffff;    // zero only for +0 and -0
constexpr int32_t kLargestFinite = 0x7f7fffff;    // magnitudes above it are Inf or NaN

struct ValueSummary {
  bool any_non_finite = false;
  bool any_nonzero = false;
};

// One pass without branches, 8 values at a time (two SSE2-wide vectors: GCC splits wider generic
// vector compares into scalar code), so every row of a large write is checked at memory speed; the
// slow loop below runs only to name the first bad value. A magnitude's bits, as a signed integer,
// order like the value: one signed compare (pcmpgtd) finds Inf and NaN.
ValueSummary Summarise(std::span<const float> vector) {
  using Ints4 = int32_t __attribute__((vector_size(16)));
  Ints4 non_finite[2] = {}, magnitude[2] = {};
  size_t i = 0;
  for (; i + 8 <= vector.size(); i += 8) {
    for (int half = 0; half < 2; ++half) {
      Ints4 bits;
      std::memcpy(&bits, vector.data() + i + 4 * half, sizeof bits);
      const Ints4 m = bits & kMagnitudeBits;
      non_finite[half] |= m > kLargestFinite;
      magnitude[half] |= m;
    }
  }
  int32_t any_non_finite = 0, any_magnitude = 0;
  for (int lane = 0; lane < 4; ++lane) {
    any_non_finite |= non_finite[0][lane] | non_finite[1][lane];
    any_magnitude |= magnitude[0][lane] | magnitude[1][lane];
  }
  for (; i < vector.size(); ++i) {
    const auto bits = std::bit_cast<uint32_t>(vector[i]);
    any_non_finite |= (bits & kExponentBits) == kExponentBits;
    any_magnitude |= static_cast<int32_t>(bits & static_cast<uint32_t>(kMagnitudeBits));
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

Status CheckMatrix(const Matrix& m, std::string_view field, int64_t dim) {
  if (m.rows <= 0) return Status::InvalidArgument(fmt::format("{} must have at least one row (got {})", field, m.rows));
  if (m.cols != dim) {
    return Status::InvalidArgument(fmt::format("{} has {} columns but index_config.dim is {}", field, m.cols, dim));
  }
  if (static_cast<int64_t>(m.data.size()) != m.rows * m.cols) {
    return Status::InvalidArgument(fmt::format("{} holds {} values, expected {} x {}", field, m.data.size(), m.rows, m.cols));
  }
  for (size_t i = 0; i < m.data.size(); ++i) {
    if (!std::isfinite(m.data[i])) {
      return Status::InvalidArgument(fmt::format("{}[{}][{}] is {} (values must be finite)", field, i / m.cols,
                                 i % m.cols, m.data[i]));
    }
  }
  return Status::OK();
}

}  // namespace shardvec
