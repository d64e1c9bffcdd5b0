#include "shard/vec0_lanes.h"

// Built with -ffp-contract=off and without the precompiled header (whose image would drop that flag;
// CMakeLists.txt): GCC's intrinsics are plain vector arithmetic it would otherwise fuse into
// multiply-adds, and vec0.so fuses none. Vec0LanesTest fails when they are fused.
#include <immintrin.h>

#include <algorithm>
#include <memory>
#include <numeric>

#include "shard/vec0_distance.h"

namespace shardvec {
namespace {

// What a pass needs besides its rows (lane i of a group's sums belongs to its i-th row).
struct Pass {
  const float* query;        // dim floats, vec0's order
  const int32_t* column_of;  // dim entries: the column of each dimension
  int64_t dim;
  int64_t stride;
  bool cosine;
  float* scratch;  // groups × stride × lanes floats
};

// Groups of `lanes` rows scored in one pass: their additions are independent chains, so they overlap
// (an addition's latency bounds a lone chain).
constexpr int kMaxGroups = 4;

// For `groups` groups of lanes rows (rows[lanes·g + i]): first[lanes·g + i] is l2's sum of squared
// differences or cosine's dot product of that row with the query, second[lanes·g + i] (cosine) the
// row's sum of squares. Each summed in vec0's dimension order.
using PassKernel = void (*)(const Pass& pass, const float* const* rows, int groups, float* first, float* second);

struct Kernel {
  int64_t lanes;
  PassKernel pass;  // null for scalar
};

// ---- AVX2: eight rows per group -------------------------------------------------------------

// r[i] holds columns 0..7 of row i; afterwards r[c] holds column c of rows 0..7.
__attribute__((target("avx2"))) inline void Transpose8(__m256 (&r)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + m], 128-bit half h: column 4h + m of rows 4i..4i+3.
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    r[m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x20);
    r[4 + m] = _mm256_permute2f128_ps(u[m], u[4 + m], 0x31);
  }
}

// The rows' first `dim` columns (rounded up to whole blocks, inside the stride) side by side.
__attribute__((target("avx2"))) void TransposeAvx2(const float* const* rows, int64_t dim, float* out) {
  for (int64_t j = 0; j < dim; j += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_load_ps(rows[i] + j);
    Transpose8(r);
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(out + (j + c) * 8, r[c]);
  }
}

template <int kGroups>
__attribute__((target("avx2"))) void SumsAvx2(const Pass& pass, float* first, float* second) {
  __m256 a[kGroups], b[kGroups];
  for (int g = 0; g < kGroups; ++g) a[g] = b[g] = _mm256_setzero_ps();
  const int64_t group_floats = pass.stride * 8;
  for (int64_t d = 0; d < pass.dim; ++d) {
    const float* column = pass.scratch + static_cast<int64_t>(pass.column_of[d]) * 8;
    const __m256 q = _mm256_set1_ps(pass.query[d]);
    for (int g = 0; g < kGroups; ++g) {
      const __m256 s = _mm256_loadu_ps(column + g * group_floats);
      if (pass.cosine) {
        a[g] = _mm256_add_ps(a[g], _mm256_mul_ps(s, q));
        b[g] = _mm256_add_ps(b[g], _mm256_mul_ps(s, s));
      } else {
        const __m256 t = _mm256_sub_ps(s, q);
        a[g] = _mm256_add_ps(a[g], _mm256_mul_ps(t, t));
      }
    }
  }
  for (int g = 0; g < kGroups; ++g) {
    _mm256_storeu_ps(first + 8 * g, a[g]);
    _mm256_storeu_ps(second + 8 * g, b[g]);
  }
}

__attribute__((target("avx2"))) void PassAvx2(const Pass& pass, const float* const* rows, int groups, float* first,
                                              float* second) {
  for (int g = 0; g < groups; ++g) TransposeAvx2(rows + 8 * g, pass.dim, pass.scratch + g * pass.stride * 8);
  switch (groups) {
    case 1:
      return SumsAvx2<1>(pass, first, second);
    case 2:
      return SumsAvx2<2>(pass, first, second);
    case 3:
      return SumsAvx2<3>(pass, first, second);
    default:
      return SumsAvx2<kMaxGroups>(pass, first, second);
  }
}

// AVX-512 runs the eight-lane kernel too. A sixteen-lane one (16×16 transposes: 64 shuffles per 256
// floats, all on one port, and a scratch twice the size) rescored 18 and 40 Fashion-MNIST rows
// (784-d, columns reordered) no faster and up to 1.6× slower than this one on the development
// machine's AVX-512 Xeon.
const Kernel& KernelFor(ScanIsa isa) {
  static const Kernel kScalar{1, nullptr};
  static const Kernel kAvx2{8, PassAvx2};
  return ForIsa(isa, kScalar, kAvx2, kAvx2);
}

constexpr int64_t kMaxLanes = 8;

}  // namespace

Vec0Lanes::Vec0Lanes(const ScanTable& table, ScanIsa isa)
    : table_(table), isa_(isa), lanes_(KernelFor(isa).lanes), column_of_(static_cast<size_t>(table.vectors.dim())) {
  // column_order[j] is the dimension held in column j.
  if (table.column_order.empty()) {
    std::iota(column_of_.begin(), column_of_.end(), 0);
  } else {
    for (size_t j = 0; j < table.column_order.size(); ++j) {
      column_of_[static_cast<size_t>(table.column_order[j])] = static_cast<int32_t>(j);
    }
  }
}

float* Vec0Lanes::Scratch(size_t floats) {
  // Grown, never cleared: a pass writes every float it reads. (Rescoring a shard's few candidates
  // is too short for zeroing a scratch of several groups every time.)
  if (floats > scratch_size_) {
    scratch_ = std::make_unique_for_overwrite<float[]>(floats);
    scratch_size_ = floats;
  }
  return scratch_.get();
}

void Vec0Lanes::Score(const float* query, std::span<const int64_t> rows, std::span<double> out) {
  const int64_t dim = table_.vectors.dim();
  if (lanes_ == 1) {
    // One row at a time, put back in vec0's order: Vec0Distance itself.
    float* stored = Scratch(static_cast<size_t>(dim));
    for (size_t i = 0; i < rows.size(); ++i) {
      const float* r = table_.vectors.row(rows[i]);
      for (int64_t d = 0; d < dim; ++d) stored[d] = r[column_of_[static_cast<size_t>(d)]];
      out[i] = Vec0Distance(table_.metric, stored, query, dim);
    }
    return;
  }
  const bool cosine = table_.metric == Metric::kCosine;
  const float query_sq = cosine ? Vec0SquaredNorm(query, dim) : 0;
  const auto lanes = static_cast<size_t>(lanes_);
  const auto stride = static_cast<size_t>(table_.vectors.stride());
  const size_t most_groups = std::min<size_t>(kMaxGroups, (rows.size() + lanes - 1) / lanes);
  const Pass pass{query, column_of_.data(), dim, table_.vectors.stride(), cosine,
                  Scratch(most_groups * stride * lanes)};
  const PassKernel kernel = KernelFor(isa_).pass;
  const float* group[kMaxGroups * kMaxLanes];
  float first[kMaxGroups * kMaxLanes], second[kMaxGroups * kMaxLanes];
  for (size_t start = 0; start < rows.size(); start += kMaxGroups * lanes) {
    const size_t n = std::min(rows.size() - start, kMaxGroups * lanes);
    const size_t groups = (n + lanes - 1) / lanes;
    // A short group fills its spare lanes with the pass's last row (scored, then dropped).
    for (size_t i = 0; i < groups * lanes; ++i) group[i] = table_.vectors.row(rows[start + std::min(i, n - 1)]);
    kernel(pass, group, static_cast<int>(groups), first, second);
    for (size_t i = 0; i < n; ++i) {
      out[start + i] = cosine ? Vec0CosineFromSums(first[i], second[i], query_sq) : Vec0L2FromSum(first[i]);
    }
  }
}

}  // namespace shardvec
