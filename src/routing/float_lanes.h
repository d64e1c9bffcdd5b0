// Squared L2 in float over 16 lanes in a fixed order, shared by k-means (whose centroids must be the
// same bits everywhere) and routing's float pre-pass: lane l sums elements i + l, the r tail elements
// go to lanes 0..r-1, the lanes are added in order. Each instruction set's wrapper runs this same
// element-wise arithmetic in its own registers; the including file is built with -ffp-contract=off
// (no fused multiply-adds), so the value does not depend on the instruction set.
#pragma once

#include <cstdint>
#include <cstring>

namespace shardvec {

inline constexpr int64_t kFloatLanes = 16;
using Floats16 = float __attribute__((vector_size(kFloatLanes * sizeof(float))));

inline __attribute__((always_inline)) Floats16 LoadFloats16(const float* p) {
  Floats16 f;
  std::memcpy(&f, p, sizeof f);
  return f;
}

inline __attribute__((always_inline)) float SumFloatLanes(Floats16 lanes) {
  float sum = 0.0f;
  for (int64_t l = 0; l < kFloatLanes; ++l) sum += lanes[l];
  return sum;
}

// out[j] = squared L2 from `a` to each of the N vectors `bs` (dim floats each), a's loads shared.
template <int N>
inline __attribute__((always_inline)) void FloatSquaredL2Body(const float* a, const float* const* bs, int64_t dim,
                                                              float* out) {
  Floats16 acc[N] = {};
  int64_t i = 0;
  for (; i + kFloatLanes <= dim; i += kFloatLanes) {
    const Floats16 x = LoadFloats16(a + i);
    for (int j = 0; j < N; ++j) {
      const Floats16 diff = x - LoadFloats16(bs[j] + i);
      acc[j] += diff * diff;
    }
  }
  for (int lane = 0; i < dim; ++i, ++lane) {
    for (int j = 0; j < N; ++j) {
      const float diff = a[i] - bs[j][i];
      acc[j][lane] += diff * diff;
    }
  }
  for (int j = 0; j < N; ++j) out[j] = SumFloatLanes(acc[j]);
}

}  // namespace shardvec
