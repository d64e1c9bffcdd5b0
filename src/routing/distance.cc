#include "routing/distance.h"

#include <cmath>
#include <cstring>

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

SHARDVEC_INLINE double SquaredL2Body(const float* a, const float* b, int64_t dim) {
  Doubles8 acc = {};
  int64_t i = 0;
  for (; i + kLanes <= dim; i += kLanes) {
    const Doubles8 diff = Load8(a + i) - Load8(b + i);
    acc += diff * diff;
  }
  for (; i < dim; ++i) {
    const double diff = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    acc[0] += diff * diff;
  }
  return SumLanes(acc);
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

// a.b and b.b together: the centroid side of a cosine distance.
SHARDVEC_INLINE void DotAndSumSquaresBody(const float* a, const float* b, int64_t dim, double* dot,
                                          double* b_squares) {
  Doubles8 dots = {}, squares = {};
  int64_t i = 0;
  for (; i + kLanes <= dim; i += kLanes) {
    const Doubles8 x = Load8(a + i);
    const Doubles8 y = Load8(b + i);
    dots += x * y;
    squares += y * y;
  }
  for (; i < dim; ++i) {
    dots[0] += static_cast<double>(a[i]) * b[i];
    squares[0] += static_cast<double>(b[i]) * b[i];
  }
  *dot = SumLanes(dots);
  *b_squares = SumLanes(squares);
}

#define SHARDVEC_ROUTING_KERNELS(suffix, attribute)                                              \
  attribute double SquaredL2##suffix(const float* a, const float* b, int64_t dim) {              \
    return SquaredL2Body(a, b, dim);                                                             \
  }                                                                                              \
  attribute double SumSquares##suffix(const float* a, int64_t dim) { return SumSquaresBody(a, dim); } \
  attribute void DotAndSumSquares##suffix(const float* a, const float* b, int64_t dim, double* dot, \
                                          double* b_squares) {                                   \
    DotAndSumSquaresBody(a, b, dim, dot, b_squares);                                             \
  }

SHARDVEC_ROUTING_KERNELS(Scalar, )
SHARDVEC_ROUTING_KERNELS(Avx2, __attribute__((target("avx2"))))
SHARDVEC_ROUTING_KERNELS(Avx512, __attribute__((target("avx512f"))))

}  // namespace

struct RoutingKernels {
  double (*squared_l2)(const float*, const float*, int64_t);
  double (*sum_squares)(const float*, int64_t);
  void (*dot_and_sum_squares)(const float*, const float*, int64_t, double*, double*);
};

namespace {

const RoutingKernels kScalar{SquaredL2Scalar, SumSquaresScalar, DotAndSumSquaresScalar};
const RoutingKernels kAvx2{SquaredL2Avx2, SumSquaresAvx2, DotAndSumSquaresAvx2};
const RoutingKernels kAvx512{SquaredL2Avx512, SumSquaresAvx512, DotAndSumSquaresAvx512};

const RoutingKernels* KernelsFor(ScanIsa isa) {
  if (!ScanIsaSupported(isa)) isa = ScanIsa::kScalar;
  switch (isa) {
    case ScanIsa::kAvx512:
      return &kAvx512;
    case ScanIsa::kAvx2:
      return &kAvx2;
    case ScanIsa::kScalar:
      break;
  }
  return &kScalar;
}

}  // namespace

RoutingDistanceFrom::RoutingDistanceFrom(Metric m, const float* from, int64_t dim, ScanIsa isa)
    : metric_(m), from_(from), dim_(dim), kernels_(KernelsFor(isa)) {
  if (metric_ == Metric::kCosine) from_sum_squares_ = kernels_->sum_squares(from_, dim_);
}

double RoutingDistanceFrom::To(const float* other) const {
  if (metric_ == Metric::kL2) return kernels_->squared_l2(from_, other, dim_);
  double dot = 0.0, other_sum_squares = 0.0;
  kernels_->dot_and_sum_squares(from_, other, dim_, &dot, &other_sum_squares);
  return 1.0 - dot / (std::sqrt(from_sum_squares_) * std::sqrt(other_sum_squares) + kCosineEpsilon);
}

double RoutingDistance(Metric m, const float* a, const float* b, int64_t dim, ScanIsa isa) {
  return RoutingDistanceFrom(m, a, dim, isa).To(b);
}

}  // namespace shardvec
