// vec0's float32 distances with the very arithmetic of the sqlite-vec v0.1.9 extension this project
// pins (the PyPI wheel's Linux x86-64 vec0.so: built with gcc -O3 and no SIMD flags, so its plain C
// loops run, and no multiply-add is fused). The reader's scan kernel sums in another order (SIMD
// lanes, fused multiply-adds, reordered columns), which moves a distance by a few float ulps; these
// functions give vec0's bits, so a rescored hit has the score and rank `SELECT … MATCH` gives it.
#pragma once

#include <cmath>
#include <cstdint>

#include "shardvec/types.h"

namespace shardvec {

// l2: float t = stored[i] - query[i]; float sum += t * t in index order; then the square root in
// double, rounded to float.
float Vec0L2Distance(const float* stored, const float* query, int64_t dim);

// cosine: float sums of stored·query, stored·stored and query·query in index order; then
// 1 - dot / (sqrt(|stored|²) · sqrt(|query|²)) in double, rounded to float.
float Vec0CosineDistance(const float* stored, const float* query, int64_t dim);

float Vec0Distance(Metric metric, const float* stored, const float* query, int64_t dim);

// The steps the two distances share with a caller that sums elsewhere (vec0_lanes.h): a float sum
// of v[i] * v[i] in index order; l2's distance from its sum of squares; cosine's from its three sums.
float Vec0SquaredNorm(const float* v, int64_t dim);
float Vec0L2FromSum(float sum);
float Vec0CosineFromSums(float dot, float stored_sq, float query_sq);

// How far the scan kernel's distance for a row can be from vec0's, whatever the kernel's summation
// order (see vec0_distance.cc for the derivation): under l2 a relative bound plus an absolute term
// for float underflow, under cosine an absolute bound. Both are twice the derived bound.
struct ScoreSlack {
  double relative = 0;
  double absolute = 0;
  // The lowest vec0 distance a row whose kernel distance is `fast` can have.
  double LowestExact(double fast) const { return fast * (1 - relative) - absolute; }
  // A kernel distance every row whose vec0 distance is at most `exact` stays at or below.
  // (A little above the inverse of LowestExact, for the rounding of this double arithmetic.)
  double HighestFast(double exact) const {
    const double fast = (exact + absolute) / (1 - relative);
    return fast + std::abs(fast) * 0x1p-20;
  }
};
// `stride` is the kernel's padded row length (floats summed per row).
ScoreSlack KernelScoreSlack(Metric metric, int64_t stride);

}  // namespace shardvec
