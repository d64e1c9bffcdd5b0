#include "routing/cluster.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "routing/distance.h"

namespace shardvec {
namespace {

// A strict weak order that puts NaN after every number. Assign and probe share it so that probe 0
// and the assignment agree even for a query that produced NaN distances.
bool CloserThan(double a, double b) {
  if (std::isnan(a)) return false;
  return std::isnan(b) || a < b;
}

std::vector<double> DistancesToCentroids(const float* v, const Matrix& centroids, Metric m) {
  std::vector<const float*> rows(static_cast<size_t>(centroids.rows));
  for (int64_t i = 0; i < centroids.rows; ++i) rows[i] = centroids.row(i);
  std::vector<double> distances(rows.size());
  RoutingDistanceFrom(m, v, centroids.cols).ToEach(rows.data(), centroids.rows, distances.data());
  return distances;
}

// Centroids are scored a few at a time (the grouped kernels) without a heap allocation.
constexpr int64_t kBatch = 16;

// The nearest centroid when the float estimates prove it: its distance plus its error bound is below
// every other centroid's distance minus theirs, so the exact (double) distances order it first too,
// strictly. Otherwise (a near tie, a NaN, an overflow) nullopt, and the caller computes them exactly.
std::optional<int64_t> ProvenNearest(const RoutingDistanceFrom& from_v, const Matrix& centroids) {
  const float* rows[kBatch];
  double approx[kBatch], error[kBatch];
  int64_t best = -1;
  double best_upper = 0.0, best_lower = 0.0, best_approx = 0.0;
  double others_lower = std::numeric_limits<double>::infinity();  // min over every centroid but best
  for (int64_t first = 0; first < centroids.rows; first += kBatch) {
    const int64_t n = std::min(kBatch, centroids.rows - first);
    for (int64_t j = 0; j < n; ++j) rows[j] = centroids.row(first + j);
    from_v.ApproxToEach(rows, n, approx, error);
    for (int64_t j = 0; j < n; ++j) {
      if (!std::isfinite(approx[j]) || !std::isfinite(error[j])) return std::nullopt;
      const double lower = approx[j] - error[j];
      if (best < 0 || approx[j] < best_approx) {
        if (best >= 0) others_lower = std::min(others_lower, best_lower);
        best = first + j;
        best_approx = approx[j];
        best_lower = lower;
        best_upper = approx[j] + error[j];
      } else {
        others_lower = std::min(others_lower, lower);
      }
    }
  }
  if (best_upper < others_lower) return best;
  return std::nullopt;
}

}  // namespace

int64_t ClusterAssign(const float* v, const Matrix& centroids, Metric m, ScanIsa isa) {
  if (centroids.rows <= 0) return -1;
  const RoutingDistanceFrom from_v(m, v, centroids.cols, isa);
  if (const std::optional<int64_t> nearest = ProvenNearest(from_v, centroids)) return *nearest;
  const float* rows[kBatch];
  double distances[kBatch];
  int64_t best = 0;
  double best_distance = 0.0;
  for (int64_t first = 0; first < centroids.rows; first += kBatch) {
    const int64_t n = std::min(kBatch, centroids.rows - first);
    for (int64_t j = 0; j < n; ++j) rows[j] = centroids.row(first + j);
    from_v.ToEach(rows, n, distances);
    for (int64_t j = 0; j < n; ++j) {
      // Strictly closer only: an equal distance keeps the lower index.
      if (first + j == 0 || CloserThan(distances[j], best_distance)) {
        best = first + j;
        best_distance = distances[j];
      }
    }
  }
  return best;
}

std::vector<int64_t> ClusterProbe(const float* q, const Matrix& centroids, Metric m,
                                  int64_t num_probes) {
  if (num_probes <= 0 || centroids.rows <= 0) return {};
  const std::vector<double> distances = DistancesToCentroids(q, centroids, m);
  std::vector<int64_t> order(distances.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  // Only the probes are ordered (ties: the lower shard first, as a stable sort would keep them).
  const auto keep = static_cast<std::ptrdiff_t>(std::min<int64_t>(num_probes, centroids.rows));
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int64_t a, int64_t b) {
    if (CloserThan(distances[a], distances[b])) return true;
    return !CloserThan(distances[b], distances[a]) && a < b;
  });
  order.resize(static_cast<size_t>(keep));
  return order;
}

}  // namespace shardvec
