#include "routing/distance.h"

#include <cmath>

namespace shardvec {
namespace {

// The reference adds this to the norm product so a zero vector divides safely.
constexpr double kCosineEpsilon = 1e-10;

double SquaredL2(const float* a, const float* b, int64_t dim) {
  double sum = 0.0;
  for (int64_t i = 0; i < dim; ++i) {
    const double diff = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    sum += diff * diff;
  }
  return sum;
}

double CosineDistance(const float* a, const float* b, int64_t dim) {
  double dot = 0.0;
  double norm_a = 0.0;
  double norm_b = 0.0;
  for (int64_t i = 0; i < dim; ++i) {
    const double x = a[i];
    const double y = b[i];
    dot += x * y;
    norm_a += x * x;
    norm_b += y * y;
  }
  return 1.0 - dot / (std::sqrt(norm_a) * std::sqrt(norm_b) + kCosineEpsilon);
}

}  // namespace

double RoutingDistance(Metric m, const float* a, const float* b, int64_t dim) {
  return m == Metric::kL2 ? SquaredL2(a, b, dim) : CosineDistance(a, b, dim);
}

}  // namespace shardvec
