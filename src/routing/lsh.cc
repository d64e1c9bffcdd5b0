#include "routing/lsh.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

namespace shardvec {
namespace {

// A uniform double in [0, 1) from the 53 high bits: fully specified, unlike
// std::uniform_real_distribution, so every platform draws the same values.
double UniformUnit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Box-Muller yields normals in pairs; the second is kept for the next call.
class NormalSource {
 public:
  explicit NormalSource(uint64_t seed) : rng_(seed) {}

  double Next() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    // 1 - u lies in (0, 1], so the log is finite.
    const double radius = std::sqrt(-2.0 * std::log(1.0 - UniformUnit(rng_)));
    const double angle = 2.0 * std::numbers::pi * UniformUnit(rng_);
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  std::mt19937_64 rng_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

int64_t UsableBits(const Matrix& hyperplanes) {
  return std::min(hyperplanes.rows, kMaxLshBits);
}

double Projection(const float* hyperplane, const float* v, int64_t dim) {
  double dot = 0.0;
  for (int64_t i = 0; i < dim; ++i) dot += static_cast<double>(hyperplane[i]) * v[i];
  return dot;
}

int64_t ShardOf(uint64_t code, int64_t num_dbs) {
  return static_cast<int64_t>(code % static_cast<uint64_t>(num_dbs));
}

}  // namespace

Matrix GenerateHyperplanes(int64_t num_bits, int64_t dim, uint64_t seed) {
  Matrix planes;
  planes.rows = std::max<int64_t>(num_bits, 0);
  planes.cols = std::max<int64_t>(dim, 0);
  planes.data.resize(static_cast<size_t>(planes.rows * planes.cols));
  NormalSource normals(seed);
  for (float& value : planes.data) value = static_cast<float>(normals.Next());
  return planes;
}

uint64_t LshCode(const float* v, const Matrix& hyperplanes) {
  uint64_t code = 0;
  for (int64_t bit = 0; bit < UsableBits(hyperplanes); ++bit) {
    if (Projection(hyperplanes.row(bit), v, hyperplanes.cols) > 0.0) code |= uint64_t{1} << bit;
  }
  return code;
}

int64_t LshAssign(const float* v, const Matrix& hyperplanes, int64_t num_dbs) {
  if (num_dbs <= 0) return -1;
  return ShardOf(LshCode(v, hyperplanes), num_dbs);
}

std::vector<int64_t> LshProbe(const float* q, const Matrix& hyperplanes, int64_t num_dbs,
                              int64_t num_probes) {
  if (num_probes <= 0 || num_dbs <= 0) return {};
  const uint64_t code = LshCode(q, hyperplanes);
  std::vector<int64_t> shards = {ShardOf(code, num_dbs)};
  for (int64_t bit = 0; bit < UsableBits(hyperplanes); ++bit) {
    if (static_cast<int64_t>(shards.size()) >= num_probes) break;
    const int64_t flipped = ShardOf(code ^ (uint64_t{1} << bit), num_dbs);
    if (std::find(shards.begin(), shards.end(), flipped) == shards.end()) {
      shards.push_back(flipped);
    }
  }
  return shards;
}

int64_t LshMaxProbes(int64_t num_bits, int64_t num_dbs) {
  return std::min(num_dbs, 1 + std::min(std::max<int64_t>(num_bits, 0), kMaxLshBits));
}

int64_t LshReachableShards(int64_t num_bits) {
  if (num_bits <= 0) return 1;
  if (num_bits >= 63) return std::numeric_limits<int64_t>::max();
  return int64_t{1} << num_bits;
}

}  // namespace shardvec
