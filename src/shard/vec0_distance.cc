#include "shard/vec0_distance.h"

// Built with -ffp-contract=off (CMakeLists.txt): a multiply then an add stay two roundings, as in
// vec0.so, which has no fused multiply-add.
#include <cmath>

namespace shardvec {

float Vec0L2Distance(const float* stored, const float* query, int64_t dim) {
  float sum = 0;
  for (int64_t i = 0; i < dim; ++i) {
    const float t = stored[i] - query[i];
    sum += t * t;
  }
  return Vec0L2FromSum(sum);
}

float Vec0CosineDistance(const float* stored, const float* query, int64_t dim) {
  // vec0 sums the three in one loop; each is its own chain of additions, so apart they give the same bits.
  float dot = 0;
  for (int64_t i = 0; i < dim; ++i) dot += stored[i] * query[i];
  return Vec0CosineFromSums(dot, Vec0SquaredNorm(stored, dim), Vec0SquaredNorm(query, dim));
}

float Vec0SquaredNorm(const float* v, int64_t dim) {
  float sum = 0;
  for (int64_t i = 0; i < dim; ++i) sum += v[i] * v[i];
  return sum;
}

float Vec0L2FromSum(float sum) { return static_cast<float>(std::sqrt(static_cast<double>(sum))); }

float Vec0CosineFromSums(float dot, float stored_sq, float query_sq) {
  const double denominator = std::sqrt(static_cast<double>(stored_sq)) * std::sqrt(static_cast<double>(query_sq));
  return static_cast<float>(1 - (static_cast<double>(dot) / denominator));
}

float Vec0Distance(Metric metric, const float* stored, const float* query, int64_t dim) {
  return metric == Metric::kCosine ? Vec0CosineDistance(stored, query, dim) : Vec0L2Distance(stored, query, dim);
}

// The bound, with u = 2^-24 (float's unit roundoff), n = stride (terms summed: zero padding adds
// exact zeros) and g = n·u / (1 - n·u), for rows whose sums stay finite and whose products do not
// underflow (under cosine):
// - l2: any order of summing n non-negative rounded squares (fused or not) lands within g(n+2)·S of
//   the exact sum S; the square root and the rounding to float add 2u each, so vec0's distance and
//   the kernel's are each within (g/2 + 2u)·d of the true d, and vec0's is at least the kernel's ×
//   (1 - g - 4u). Products that underflow to subnormals add at most (n+1)·2^-149 to a sum, so at
//   most sqrt((n+1)·2^-148) to a distance.
// - cosine: a dot product summed in any order is within g·|a||b| of the true one, the norms within
//   g/2 (relative) each; vec0 divides and subtracts in double and rounds once (≤ 2u on a value in
//   [0, 2]), the kernel rounds a float product, quotient and difference (≤ 6u): each is within
//   2g + 6u of 1 - cos, so the two within 4g + 12u.
ScoreSlack KernelScoreSlack(Metric metric, int64_t stride) {
  const double u = 0x1p-24;
  const double n = static_cast<double>(stride) + 2;
  const double g = n * u / (1 - n * u);
  ScoreSlack slack;
  if (metric == Metric::kCosine) {
    slack.absolute = 2 * (4 * g + 12 * u);
  } else {
    slack.relative = 2 * (g + 4 * u);
    slack.absolute = 2 * std::sqrt((n + 1) * 0x1p-148);
  }
  return slack;
}

}  // namespace shardvec
