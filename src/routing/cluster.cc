#include "routing/cluster.h"

#include <algorithm>
#include <cmath>
#include <numeric>

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

}  // namespace

int64_t ClusterAssign(const float* v, const Matrix& centroids, Metric m) {
  if (centroids.rows <= 0) return -1;
  const RoutingDistanceFrom from_v(m, v, centroids.cols);
  // Centroids are scored a few at a time (ToEach's grouped kernels) without a heap allocation.
  constexpr int64_t kBatch = 16;
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
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return CloserThan(distances[a], distances[b]);
  });
  order.resize(static_cast<size_t>(std::min<int64_t>(num_probes, centroids.rows)));
  return order;
}

}  // namespace shardvec
