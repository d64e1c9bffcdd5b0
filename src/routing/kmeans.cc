#include "routing/kmeans.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "common/thread_pool.h"
#include "routing/float_lanes.h"

namespace shardvec {
namespace {

// Below this many float operations per thread, starting a thread costs more than it saves.
constexpr int64_t kMinWorkPerThread = int64_t{1} << 22;

// ---- Platform-independent random draws -------------------------------------------------------

// A uniform double in [0, 1) from the 53 high bits (std::uniform_*_distribution is
// implementation-defined, so it would make centroids differ between standard libraries).
double UniformUnit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// A uniform integer in [0, n), n > 0, without modulo bias: draws below 2^64 mod n are rejected so
// the accepted range is a whole number of copies of [0, n).
int64_t UniformIndex(std::mt19937_64& rng, int64_t n) {
  const uint64_t range = static_cast<uint64_t>(n);
  const uint64_t reject_below = (0 - range) % range;
  while (true) {
    const uint64_t draw = rng();
    if (draw >= reject_below) return static_cast<int64_t>(draw % range);
  }
}

// ---- Fixed-partition parallelism -------------------------------------------------------------

int ThreadsFor(int64_t work, int requested) {
  const auto available = static_cast<int64_t>(ThreadPool::DefaultSize(requested));
  const int64_t useful = std::max<int64_t>(1, work / kMinWorkPerThread);
  return static_cast<int>(std::min(available, useful));
}

// Runs fn(begin, end) over contiguous slices of [0, n). Callers only write per-item results, so
// the slicing never changes what is computed. A slice whose thread the system refuses (a process
// or memory limit) runs on the calling thread instead: the same results, only later.
template <typename Fn>
void ParallelFor(int64_t n, int threads, Fn&& fn) {
  threads = static_cast<int>(std::clamp<int64_t>(threads, 1, std::max<int64_t>(n, 1)));
  if (threads == 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> workers;
  workers.reserve(static_cast<size_t>(threads - 1));
  for (int t = 1; t < threads; ++t) {
    auto slice = [&fn, n, threads, t] { fn(n * t / threads, n * (t + 1) / threads); };
    std::thread worker;
    if (StartThread(&worker, slice, "centroid training").ok()) {
      workers.push_back(std::move(worker));
    } else {
      slice();
    }
  }
  fn(int64_t{0}, n / threads);
  for (std::thread& worker : workers) worker.join();
}

// ---- Distances -------------------------------------------------------------------------------

// float_lanes.h's 16-lane squared L2, one centroid or 4 per pass over v: the same bits on every
// instruction set, so a sample trains the same centroids everywhere.
constexpr int kGroup = 4;

#define SHARDVEC_KMEANS_KERNELS(suffix, attribute)                                                    \
  attribute void SquaredL2One##suffix(const float* a, const float* const* bs, int64_t dim, float* out) { \
    FloatSquaredL2Body<1>(a, bs, dim, out);                                                                \
  }                                                                                                    \
  attribute void SquaredL2Group##suffix(const float* a, const float* const* bs, int64_t dim, float* out) { \
    FloatSquaredL2Body<kGroup>(a, bs, dim, out);                                                           \
  }

SHARDVEC_KMEANS_KERNELS(Scalar, )
SHARDVEC_KMEANS_KERNELS(Avx2, __attribute__((target("avx2"))))
SHARDVEC_KMEANS_KERNELS(Avx512, __attribute__((target("avx512f"))))

struct Kernels {
  using SquaredL2 = void (*)(const float*, const float* const*, int64_t, float*);
  SquaredL2 one, group;
};

const Kernels& KernelsFor(ScanIsa isa) {
  static const Kernels kScalar{SquaredL2OneScalar, SquaredL2GroupScalar};
  static const Kernels kAvx2{SquaredL2OneAvx2, SquaredL2GroupAvx2};
  static const Kernels kAvx512{SquaredL2OneAvx512, SquaredL2GroupAvx512};
  return ForIsa(isa, kScalar, kAvx2, kAvx512);
}

float SquaredL2(const Kernels& kernels, const float* a, const float* b, int64_t dim) {
  float distance = 0.0f;
  kernels.one(a, &b, dim, &distance);
  return distance;
}

// Rows assigned together: each group of centroids is compared with a block of rows while it is in
// the cache, so the centroid matrix is read once per block rather than once per row.
constexpr int64_t kRowBlock = 8;

// The nearest centroid by squared L2 of rows [first_row, first_row + count), count <= kRowBlock, into
// `labels` and their distances into `distances`. Centroids are compared in index order and a strictly
// smaller distance is needed to move off a lower index (ties go to the lowest index).
void NearestCentroids(const Kernels& kernels, const Matrix& sample, int64_t first_row, int64_t count,
                      const Matrix& centroids, int64_t* labels, float* distances) {
  std::fill(distances, distances + count, std::numeric_limits<float>::infinity());
  for (int64_t first = 0; first < centroids.rows;) {
    const bool group = centroids.rows - first >= kGroup;
    const int64_t group_size = group ? kGroup : 1;
    const float* rows[kGroup];
    for (int64_t j = 0; j < group_size; ++j) rows[j] = centroids.row(first + j);
    for (int64_t i = 0; i < count; ++i) {
      float group_distances[kGroup];
      (group ? kernels.group : kernels.one)(sample.row(first_row + i), rows, centroids.cols, group_distances);
      for (int64_t j = 0; j < group_size; ++j) {
        if (first + j == 0 || group_distances[j] < distances[i]) {
          labels[i] = first + j;
          distances[i] = group_distances[j];
        }
      }
    }
    first += group_size;
  }
}

// ---- Validation ------------------------------------------------------------------------------

Status FirstNonFinite(const Matrix& sample) {
  for (int64_t r = 0; r < sample.rows; ++r) {
    const float* row = sample.row(r);
    for (int64_t c = 0; c < sample.cols; ++c) {
      if (!std::isfinite(row[c])) {
        return Status::InvalidArgument(fmt::format(
            "sample row {} has a non-finite value ({}) at index {}", r, row[c], c));
      }
    }
  }
  return Status::OK();
}

Status ValidateInputs(const Matrix& sample, int64_t k, const KMeansOptions& options) {
  if (k <= 0) return Status::InvalidArgument(fmt::format("num_dbs must be > 0, got {}", k));
  if (sample.rows <= 0) {
    return Status::InvalidArgument("cannot train centroids from an empty sample");
  }
  if (sample.rows < k) {
    return Status::InvalidArgument(fmt::format(
        "Need at least {} vectors to train {} centroids, got {}", k, k, sample.rows));
  }
  if (sample.cols <= 0) {
    return Status::InvalidArgument(fmt::format("sample dim must be > 0, got {}", sample.cols));
  }
  if (static_cast<int64_t>(sample.data.size()) != sample.rows * sample.cols) {
    return Status::InvalidArgument(fmt::format("sample holds {} values, expected {} x {} = {}",
                                               sample.data.size(), sample.rows, sample.cols,
                                               sample.rows * sample.cols));
  }
  if (options.max_iter < 0) {
    return Status::InvalidArgument(fmt::format("max_iter must be >= 0, got {}", options.max_iter));
  }
  if (!(options.inertia_tol >= 0)) {
    return Status::InvalidArgument(fmt::format("inertia_tol must be >= 0, got {}", options.inertia_tol));
  }
  if (options.warm_start_rows_per_centroid < 0) {
    return Status::InvalidArgument(fmt::format("warm_start_rows_per_centroid must be >= 0, got {}",
                                               options.warm_start_rows_per_centroid));
  }
  return FirstNonFinite(sample);
}

// ---- k-means++ seeding -----------------------------------------------------------------------

void AppendRow(Matrix& m, const float* row) {
  m.data.insert(m.data.end(), row, row + m.cols);
  ++m.rows;
}

// Lowers each row's distance-to-nearest-chosen-centroid with the newly chosen one.
void LowerNearestDistances(const Kernels& kernels, const Matrix& sample, const float* chosen, int threads,
                           std::vector<float>& nearest) {
  ParallelFor(sample.rows, threads, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      nearest[r] = std::min(nearest[r], SquaredL2(kernels, sample.row(r), chosen, sample.cols));
    }
  });
}

// Draws a row with probability nearest[r] / sum, like numpy's choice(p=...): the first row whose
// running sum exceeds u * sum. Sums run in row order, in double, so they are reproducible.
int64_t DrawByWeight(const std::vector<float>& nearest, double total, std::mt19937_64& rng) {
  const double target = UniformUnit(rng) * total;
  double running = 0.0;
  int64_t last_positive = 0;
  for (size_t r = 0; r < nearest.size(); ++r) {
    if (nearest[r] <= 0.0f) continue;
    running += nearest[r];
    last_positive = static_cast<int64_t>(r);
    if (running > target) return last_positive;
  }
  return last_positive;  // only reached if rounding left target at the very top
}

Matrix SeedCentroids(const Kernels& kernels, const Matrix& sample, int64_t k, int threads, std::mt19937_64& rng) {
  Matrix centroids;
  centroids.cols = sample.cols;
  centroids.data.reserve(static_cast<size_t>(k * sample.cols));
  AppendRow(centroids, sample.row(UniformIndex(rng, sample.rows)));

  std::vector<float> nearest(static_cast<size_t>(sample.rows),
                             std::numeric_limits<float>::infinity());
  while (centroids.rows < k) {
    LowerNearestDistances(kernels, sample, centroids.row(centroids.rows - 1), threads, nearest);
    double total = 0.0;
    for (float distance : nearest) total += distance;
    // Every row sits on a chosen centroid: there is no weight to follow, so pick uniformly.
    const int64_t pick =
        total > 0.0 ? DrawByWeight(nearest, total, rng) : UniformIndex(rng, sample.rows);
    AppendRow(centroids, sample.row(pick));
  }
  return centroids;
}

// ---- Lloyd iterations ------------------------------------------------------------------------

// Each row's nearest centroid into `labels`, and its squared distance into `distances`.
void AssignRows(const Kernels& kernels, const Matrix& sample, const Matrix& centroids, int threads,
                std::vector<int64_t>& labels, std::vector<float>& distances) {
  ParallelFor(sample.rows, threads, [&](int64_t begin, int64_t end) {
    for (int64_t block = begin; block < end; block += kRowBlock) {
      NearestCentroids(kernels, sample, block, std::min(kRowBlock, end - block), centroids, &labels[block],
                       &distances[block]);
    }
  });
}

// Mean of each centroid's rows; a centroid with no rows keeps its old value. Threads split the
// dimensions, not the rows, so every sum adds the same rows in the same order whatever the count.
Matrix MoveCentroids(const Matrix& sample, const std::vector<int64_t>& labels, const Matrix& old,
                     int threads) {
  std::vector<int64_t> counts(static_cast<size_t>(old.rows), 0);
  for (int64_t label : labels) ++counts[label];

  Matrix updated = old;
  ParallelFor(sample.cols, threads, [&](int64_t dim_begin, int64_t dim_end) {
    const int64_t width = dim_end - dim_begin;
    std::vector<double> sums(static_cast<size_t>(old.rows * width), 0.0);
    for (int64_t r = 0; r < sample.rows; ++r) {
      const float* row = sample.row(r) + dim_begin;
      double* sum = sums.data() + labels[r] * width;
      for (int64_t d = 0; d < width; ++d) sum[d] += row[d];
    }
    for (int64_t c = 0; c < old.rows; ++c) {
      if (counts[c] == 0) continue;
      const double count = static_cast<double>(counts[c]);
      for (int64_t d = 0; d < width; ++d) {
        updated.row(c)[dim_begin + d] = static_cast<float>(sums[c * width + d] / count);
      }
    }
  });
  return updated;
}

bool AllClose(const Matrix& old, const Matrix& updated, double rtol, double atol) {
  for (size_t i = 0; i < old.data.size(); ++i) {
    const double now = updated.data[i];
    // Written as !(a <= b) so a NaN counts as not close, as in numpy.
    if (!(std::abs(static_cast<double>(old.data[i]) - now) <= atol + rtol * std::abs(now))) {
      return false;
    }
  }
  return true;
}

// Lloyd iterations on `sample` from `centroids` (see TrainKMeans), reporting each to
// options.on_iteration when `report`.
Matrix Lloyd(const Kernels& kernels, const Matrix& sample, Matrix centroids, const KMeansOptions& options,
             bool report) {
  const int64_t row_work = sample.rows * sample.cols;
  const int assign_threads = ThreadsFor(row_work * centroids.rows, options.num_threads);
  const int move_threads = ThreadsFor(row_work, options.num_threads);
  std::vector<int64_t> labels(static_cast<size_t>(sample.rows));
  std::vector<float> distances(static_cast<size_t>(sample.rows));
  double previous_inertia = 0;
  for (int iter = 0; iter < options.max_iter; ++iter) {
    AssignRows(kernels, sample, centroids, assign_threads, labels, distances);
    // Summed in row order: the same for every thread count.
    double inertia = 0;
    for (float d : distances) inertia += d;
    if (report && options.on_iteration) options.on_iteration(iter + 1, inertia);
    if (iter > 0 && options.inertia_tol > 0 && previous_inertia - inertia <= options.inertia_tol * previous_inertia) {
      return centroids;
    }
    previous_inertia = inertia;
    Matrix updated = MoveCentroids(sample, labels, centroids, move_threads);
    if (AllClose(centroids, updated, options.rtol, options.atol)) return centroids;
    centroids = std::move(updated);
  }
  return centroids;
}

// `count` distinct rows of `sample` (count <= rows) drawn by a partial Fisher-Yates shuffle, kept in
// sample order.
Matrix DrawRows(const Matrix& sample, int64_t count, std::mt19937_64& rng) {
  std::vector<int64_t> order(static_cast<size_t>(sample.rows));
  for (int64_t r = 0; r < sample.rows; ++r) order[r] = r;
  for (int64_t i = 0; i < count; ++i) std::swap(order[i], order[i + UniformIndex(rng, sample.rows - i)]);
  order.resize(static_cast<size_t>(count));
  std::sort(order.begin(), order.end());
  Matrix drawn;
  drawn.cols = sample.cols;
  drawn.data.reserve(static_cast<size_t>(count * sample.cols));
  for (int64_t r : order) AppendRow(drawn, sample.row(r));
  return drawn;
}

}  // namespace

Result<Matrix> TrainKMeans(const Matrix& sample, int64_t k, const KMeansOptions& options) {
  if (Status status = ValidateInputs(sample, k, options); !status.ok()) return status;

  std::mt19937_64 rng(options.seed);
  const Kernels& kernels = KernelsFor(options.isa);
  auto seeded = [&](const Matrix& rows) {
    return SeedCentroids(kernels, rows, k, ThreadsFor(rows.rows * rows.cols, options.num_threads), rng);
  };
  const int64_t warm = options.warm_start_rows_per_centroid;
  if (warm > 0 && warm <= (sample.rows - 1) / k) {  // more than k x warm rows
    const Matrix subsample = DrawRows(sample, k * warm, rng);
    Matrix warm_centroids = Lloyd(kernels, subsample, seeded(subsample), options, /*report=*/false);
    return Lloyd(kernels, sample, std::move(warm_centroids), options, /*report=*/true);
  }
  return Lloyd(kernels, sample, seeded(sample), options, /*report=*/true);
}

}  // namespace shardvec
