#include "routing/distance.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "routing/float_lanes.h"

namespace shardvec {
namespace {

// The reference adds this to the norm product so a zero vector divides safely.
constexpr double kCosineEpsilon = 1e-10;

// Eight double lanes as a GCC vector: each instruction set's wrapper below compiles the same
// element-wise arithmetic to its own registers (SSE2 pairs, AVX2 quads, one AVX-512 register).
// This file is built with -ffp-contract=off, so no wrapper fuses a multiply-add: the bits agree.
constexpr int64_t kLanes = 8;
using Doubles8 = double __attribute__((vector_size(kLanes * sizeof(double))));
using Floats8 = float __attribute__((vector_size(kLanes * sizeof(float))));

#define SHARDVEC_INLINE inline __attribute__((always_inline))

SHARDVEC_INLINE Doubles8 Load8(const float* p) {
  Floats8 f;
  std::memcpy(&f, p, sizeof f);
  return __builtin_convertvector(f, Doubles8);
}

SHARDVEC_INLINE double SumLanes(Doubles8 lanes) {
  double sum = 0.0;
  for (int64_t l = 0; l < kLanes; ++l) sum += lanes[l];
  return sum;
}

// The bodies score `N` vectors `bs` against `a` in one pass: N independent sums keep the adder busy
// (one lane-sum alone waits on its own latency), and a's values are converted once for all N.
template <int N>
SHARDVEC_INLINE void SquaredL2Body(const float* a, const float* const* bs, int64_t dim, double* out) {
  Doubles8 acc[N] = {};
  int64_t i = 0;
  for (; i + kLanes <= dim; i += kLanes) {
    const Doubles8 x = Load8(a + i);
    for (int j = 0; j < N; ++j) {
      const Doubles8 diff = x - Load8(bs[j] + i);
      acc[j] += diff * diff;
    }
  }
  for (; i < dim; ++i) {
    for (int j = 0; j < N; ++j) {
      const double diff = static_cast<double>(a[i]) - static_cast<double>(bs[j][i]);
      acc[j][0] += diff * diff;
    }
  }
  for (int j = 0; j < N; ++j) out[j] = SumLanes(acc[j]);
}

SHARDVEC_INLINE double SumSquaresBody(const float* a, int64_t dim) {
  Doubles8 acc = {};
  int64_t i = 0;
  for (; i + kLanes <= dim; i += kLanes) {
    const Doubles8 x = Load8(a + i);
    acc += x * x;
  }
  for (; i < dim; ++i) acc[0] += static_cast<double>(a[i]) * a[i];
  return SumLanes(acc);
}

// a.b and b.b for each b: the per-centroid parts of a cosine distance.
template <int N>
SHARDVEC_INLINE void DotAndSumSquaresBody(const float* a, const float* const* bs, int64_t dim, double* dots,
                                          double* b_squares) {
  Doubles8 dot[N] = {}, squares[N] = {};
  int64_t i = 0;
  for (; i + kLanes <= dim; i += kLanes) {
    const Doubles8 x = Load8(a + i);
    for (int j = 0; j < N; ++j) {
      const Doubles8 y = Load8(bs[j] + i);
      dot[j] += x * y;
      squares[j] += y * y;
    }
  }
  for (; i < dim; ++i) {
    for (int j = 0; j < N; ++j) {
      dot[j][0] += static_cast<double>(a[i]) * bs[j][i];
      squares[j][0] += static_cast<double>(bs[j][i]) * bs[j][i];
    }
  }
  for (int j = 0; j < N; ++j) {
    dots[j] = SumLanes(dot[j]);
    b_squares[j] = SumLanes(squares[j]);
  }
}

constexpr int kGroup = 4;  // vectors per pass in the grouped kernels

// The float pass of ClusterAssign (float_lanes.h's 16 lanes; the dot product's tail goes to lane 0),
// a quarter of the double kernels' work. Its results differ by instruction set and are only ever
// used with the error bound of RoutingDistanceFrom::ApproxToEach.
template <int N>
SHARDVEC_INLINE void ApproxDotAndSumSquaresBody(const float* a, const float* const* bs, int64_t dim, float* dots,
                                                float* b_squares) {
  Floats16 dot[N] = {}, squares[N] = {};
  int64_t i = 0;
  for (; i + kFloatLanes <= dim; i += kFloatLanes) {
    const Floats16 x = LoadFloats16(a + i);
    for (int j = 0; j < N; ++j) {
      const Floats16 y = LoadFloats16(bs[j] + i);
      dot[j] += x * y;
      squares[j] += y * y;
    }
  }
  for (; i < dim; ++i) {
    for (int j = 0; j < N; ++j) {
      dot[j][0] += a[i] * bs[j][i];
      squares[j][0] += bs[j][i] * bs[j][i];
    }
  }
  for (int j = 0; j < N; ++j) {
    dots[j] = SumFloatLanes(dot[j]);
    b_squares[j] = SumFloatLanes(squares[j]);
  }
}

#define SHARDVEC_ROUTING_KERNELS(suffix, attribute)                                                         \
  attribute void SquaredL2One##suffix(const float* a, const float* const* bs, int64_t dim, double* out) {   \
    SquaredL2Body<1>(a, bs, dim, out);                                                                      \
  }                                                                                                         \
  attribute void SquaredL2Group##suffix(const float* a, const float* const* bs, int64_t dim, double* out) { \
    SquaredL2Body<kGroup>(a, bs, dim, out);                                                                 \
  }                                                                                                         \
  attribute double SumSquares##suffix(const float* a, int64_t dim) { return SumSquaresBody(a, dim); }       \
  attribute void DotAndSumSquaresOne##suffix(const float* a, const float* const* bs, int64_t dim,          \
                                             double* dots, double* b_squares) {                             \
    DotAndSumSquaresBody<1>(a, bs, dim, dots, b_squares);                                                   \
  }                                                                                                         \
  attribute void DotAndSumSquaresGroup##suffix(const float* a, const float* const* bs, int64_t dim,        \
                                               double* dots, double* b_squares) {                           \
    DotAndSumSquaresBody<kGroup>(a, bs, dim, dots, b_squares);                                              \
  }                                                                                                         \
  attribute void ApproxSquaredL2Group##suffix(const float* a, const float* const* bs, int64_t dim,         \
                                              float* out) {                                                 \
    FloatSquaredL2Body<kGroup>(a, bs, dim, out);                                                              \
  }                                                                                                         \
  attribute void ApproxSquaredL2One##suffix(const float* a, const float* const* bs, int64_t dim, float* out) { \
    FloatSquaredL2Body<1>(a, bs, dim, out);                                                                   \
  }                                                                                                         \
  attribute void ApproxDotGroup##suffix(const float* a, const float* const* bs, int64_t dim, float* dots,  \
                                        float* b_squares) {                                                 \
    ApproxDotAndSumSquaresBody<kGroup>(a, bs, dim, dots, b_squares);                                        \
  }                                                                                                         \
  attribute void ApproxDotOne##suffix(const float* a, const float* const* bs, int64_t dim, float* dots,    \
                                      float* b_squares) {                                                   \
    ApproxDotAndSumSquaresBody<1>(a, bs, dim, dots, b_squares);                                             \
  }

SHARDVEC_ROUTING_KERNELS(Scalar, )
SHARDVEC_ROUTING_KERNELS(Avx2, __attribute__((target("avx2"))))
SHARDVEC_ROUTING_KERNELS(Avx512, __attribute__((target("avx512f"))))

}  // namespace

struct RoutingKernels {
  using SquaredL2 = void (*)(const float*, const float* const*, int64_t, double*);
  using DotAndSumSquares = void (*)(const float*, const float* const*, int64_t, double*, double*);
  using ApproxSquaredL2 = void (*)(const float*, const float* const*, int64_t, float*);
  using ApproxDot = void (*)(const float*, const float* const*, int64_t, float*, float*);
  SquaredL2 squared_l2_one, squared_l2_group;
  double (*sum_squares)(const float*, int64_t);
  DotAndSumSquares dot_and_sum_squares_one, dot_and_sum_squares_group;
  ApproxSquaredL2 approx_squared_l2_one, approx_squared_l2_group;
  ApproxDot approx_dot_one, approx_dot_group;
};

namespace {

#define SHARDVEC_KERNEL_TABLE(suffix)                                                  \
  RoutingKernels {                                                                     \
    SquaredL2One##suffix, SquaredL2Group##suffix, SumSquares##suffix,                  \
        DotAndSumSquaresOne##suffix, DotAndSumSquaresGroup##suffix,                    \
        ApproxSquaredL2One##suffix, ApproxSquaredL2Group##suffix,                      \
        ApproxDotOne##suffix, ApproxDotGroup##suffix                                   \
  }
const RoutingKernels kScalar = SHARDVEC_KERNEL_TABLE(Scalar);
const RoutingKernels kAvx2 = SHARDVEC_KERNEL_TABLE(Avx2);
const RoutingKernels kAvx512 = SHARDVEC_KERNEL_TABLE(Avx512);

const RoutingKernels* KernelsFor(ScanIsa isa) { return &ForIsa(isa, kScalar, kAvx2, kAvx512); }

}  // namespace

RoutingDistanceFrom::RoutingDistanceFrom(Metric m, const float* from, int64_t dim, ScanIsa isa)
    : metric_(m), from_(from), dim_(dim), kernels_(KernelsFor(isa)) {
  if (metric_ == Metric::kCosine) from_sum_squares_ = kernels_->sum_squares(from_, dim_);
}

double RoutingDistanceFrom::To(const float* other) const {
  double distance = 0.0;
  ToEach(&other, 1, &distance);
  return distance;
}

void RoutingDistanceFrom::ToEach(const float* const* others, int64_t n, double* out) const {
  for (int64_t i = 0; i < n;) {
    const bool group = n - i >= kGroup;
    const int64_t count = group ? kGroup : 1;
    if (metric_ == Metric::kL2) {
      (group ? kernels_->squared_l2_group : kernels_->squared_l2_one)(from_, others + i, dim_, out + i);
    } else {
      double dots[kGroup], other_squares[kGroup];
      (group ? kernels_->dot_and_sum_squares_group : kernels_->dot_and_sum_squares_one)(from_, others + i, dim_,
                                                                                       dots, other_squares);
      for (int64_t j = 0; j < count; ++j) {
        out[i + j] = 1.0 - dots[j] / (std::sqrt(from_sum_squares_) * std::sqrt(other_squares[j]) + kCosineEpsilon);
      }
    }
    i += count;
  }
}

void RoutingDistanceFrom::ApproxToEach(const float* const* others, int64_t n, double* approx,
                                       double* error) const {
  // Float rounding: each lane sums dim/16 + 1 terms, then 16 lanes are added; every term and sum
  // takes at most a few relative roundings of 2^-24. kSlack covers the products, the final add of the
  // lanes, and the double reference's own (far smaller) error, with a factor of 2 to spare.
  constexpr int64_t kSlack = 48;
  const double gamma = 2.0 * static_cast<double>(dim_ / kFloatLanes + kSlack) * 0x1p-24;
  for (int64_t i = 0; i < n;) {
    const bool group = n - i >= kGroup;
    const int64_t count = group ? kGroup : 1;
    float values[kGroup], squares[kGroup];
    if (metric_ == Metric::kL2) {
      (group ? kernels_->approx_squared_l2_group : kernels_->approx_squared_l2_one)(from_, others + i, dim_, values);
      for (int64_t j = 0; j < count; ++j) {
        // A sum of non-negative terms: the error is relative to the sum itself (plus underflow).
        approx[i + j] = values[j];
        error[i + j] = gamma * values[j] + static_cast<double>(dim_ + kSlack) * 0x1p-126;
      }
    } else {
      (group ? kernels_->approx_dot_group : kernels_->approx_dot_one)(from_, others + i, dim_, values, squares);
      for (int64_t j = 0; j < count; ++j) {
        // |a.b error| <= gamma |a||b| (Cauchy-Schwarz), |b|^2 is within gamma of its own value, so the
        // similarity is within about 1.5 gamma. Tiny norms lose the relative bound to underflow.
        const double b_squares = squares[j];
        const bool normal = std::isfinite(values[j]) && std::isfinite(b_squares) && from_sum_squares_ > 0x1p-60 &&
                            b_squares > 0x1p-60;
        approx[i + j] = 1.0 - values[j] / (std::sqrt(from_sum_squares_) * std::sqrt(b_squares) + kCosineEpsilon);
        error[i + j] = normal ? 4.0 * gamma : std::numeric_limits<double>::infinity();
      }
    }
    i += count;
  }
}

double RoutingDistance(Metric m, const float* a, const float* b, int64_t dim, ScanIsa isa) {
  return RoutingDistanceFrom(m, a, dim, isa).To(b);
}

}  // namespace shardvec
