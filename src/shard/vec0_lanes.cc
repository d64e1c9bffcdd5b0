#include "shard/vec0_lanes.h"

// Built with -ffp-contract=off (CMakeLists.txt): GCC's intrinsics are plain vector arithmetic it
// would otherwise fuse into multiply-adds, and vec0.so fuses none.
// GCC 12's AVX-512 intrinsics build "undefined" vectors from self-initialised locals, which
// -Wmaybe-uninitialized reports at every inlined use; the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "shard/vec0_distance.h"

namespace shardvec {
namespace {

// One pass over a group of rows: lane i of the sums belongs to rows[i].
struct Pass {
  const float* query;        // dim floats, vec0's order
  const int32_t* column_of;  // dim entries: the column of each dimension
  int64_t dim;
  int64_t stride;
  bool cosine;
  float* scratch;  // stride × lanes floats, 64-byte aligned
};

// first[i]: l2's sum of squared differences or cosine's dot product of rows[i] with the query;
// second[i] (cosine): the row's sum of squares. Each summed in vec0's dimension order.
using PassKernel = void (*)(const Pass& pass, const float* const* rows, float* first, float* second);

struct Kernel {
  int64_t lanes;
  PassKernel pass;  // null for scalar
};

// ---- AVX2: eight rows per pass -------------------------------------------------------------

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

__attribute__((target("avx2"))) void PassAvx2(const Pass& pass, const float* const* rows, float* first,
                                              float* second) {
  // The rows' first `dim` columns (rounded up to whole blocks, inside the stride) side by side.
  for (int64_t j = 0; j < pass.dim; j += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_load_ps(rows[i] + j);
    Transpose8(r);
    for (int c = 0; c < 8; ++c) _mm256_store_ps(pass.scratch + (j + c) * 8, r[c]);
  }
  __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps();
  for (int64_t d = 0; d < pass.dim; ++d) {
    const __m256 s = _mm256_load_ps(pass.scratch + static_cast<int64_t>(pass.column_of[d]) * 8);
    const __m256 q = _mm256_set1_ps(pass.query[d]);
    if (pass.cosine) {
      a = _mm256_add_ps(a, _mm256_mul_ps(s, q));
      b = _mm256_add_ps(b, _mm256_mul_ps(s, s));
    } else {
      const __m256 t = _mm256_sub_ps(s, q);
      a = _mm256_add_ps(a, _mm256_mul_ps(t, t));
    }
  }
  _mm256_storeu_ps(first, a);
  _mm256_storeu_ps(second, b);
}

// ---- AVX-512: sixteen rows per pass --------------------------------------------------------

// r[i] holds columns 0..15 of row i; afterwards r[c] holds column c of rows 0..15.
__attribute__((target("avx512f"))) inline void Transpose16(__m512 (&r)[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + m], 128-bit quarter k: column 4k + m of rows 4i..4i+3.
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    // Quarters 0 and 2 (x), 1 and 3 (y) of rows 0..7, then of rows 8..15 (x2, y2).
    const __m512 x = _mm512_shuffle_f32x4(u[m], u[4 + m], 0x88);
    const __m512 y = _mm512_shuffle_f32x4(u[m], u[4 + m], 0xDD);
    const __m512 x2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0x88);
    const __m512 y2 = _mm512_shuffle_f32x4(u[8 + m], u[12 + m], 0xDD);
    r[m] = _mm512_shuffle_f32x4(x, x2, 0x88);
    r[4 + m] = _mm512_shuffle_f32x4(y, y2, 0x88);
    r[8 + m] = _mm512_shuffle_f32x4(x, x2, 0xDD);
    r[12 + m] = _mm512_shuffle_f32x4(y, y2, 0xDD);
  }
}

__attribute__((target("avx512f"))) void PassAvx512(const Pass& pass, const float* const* rows, float* first,
                                                   float* second) {
  // The rows' first `dim` columns side by side; a stride that is an odd multiple of 8 ends in a
  // half block, read through a mask (the row after it may not exist).
  for (int64_t j = 0; j < pass.dim; j += 16) {
    const bool whole = j + 16 <= pass.stride;
    const __mmask16 mask = whole ? 0xFFFF : 0x00FF;
    __m512 r[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_maskz_loadu_ps(mask, rows[i] + j);
    Transpose16(r);
    for (int c = 0; c < (whole ? 16 : 8); ++c) _mm512_store_ps(pass.scratch + (j + c) * 16, r[c]);
  }
  __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
  for (int64_t d = 0; d < pass.dim; ++d) {
    const __m512 s = _mm512_load_ps(pass.scratch + static_cast<int64_t>(pass.column_of[d]) * 16);
    const __m512 q = _mm512_set1_ps(pass.query[d]);
    if (pass.cosine) {
      a = _mm512_add_ps(a, _mm512_mul_ps(s, q));
      b = _mm512_add_ps(b, _mm512_mul_ps(s, s));
    } else {
      const __m512 t = _mm512_sub_ps(s, q);
      a = _mm512_add_ps(a, _mm512_mul_ps(t, t));
    }
  }
  _mm512_storeu_ps(first, a);
  _mm512_storeu_ps(second, b);
}

const Kernel& KernelFor(ScanIsa isa) {
  static const Kernel kScalar{1, nullptr};
  static const Kernel kAvx2{8, PassAvx2};
  static const Kernel kAvx512{16, PassAvx512};
  return ForIsa(isa, kScalar, kAvx2, kAvx512);
}

constexpr int64_t kMaxLanes = 16;

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
  scratch_ = lanes_ == 1 ? ScanMatrix(1, table.vectors.dim()) : ScanMatrix(table.vectors.stride(), lanes_);
}

void Vec0Lanes::Score(const float* query, std::span<const int64_t> rows, std::span<double> out) {
  const int64_t dim = table_.vectors.dim();
  if (lanes_ == 1) {
    // One row at a time, put back in vec0's order: Vec0Distance itself.
    float* stored = scratch_.row(0);
    for (size_t i = 0; i < rows.size(); ++i) {
      const float* r = table_.vectors.row(rows[i]);
      for (int64_t d = 0; d < dim; ++d) stored[d] = r[column_of_[static_cast<size_t>(d)]];
      out[i] = Vec0Distance(table_.metric, stored, query, dim);
    }
    return;
  }
  const bool cosine = table_.metric == Metric::kCosine;
  const float query_sq = cosine ? Vec0SquaredNorm(query, dim) : 0;
  const Pass pass{query, column_of_.data(), dim, table_.vectors.stride(), cosine, scratch_.row(0)};
  const PassKernel kernel = KernelFor(isa_).pass;
  const float* group[kMaxLanes];
  float first[kMaxLanes], second[kMaxLanes];
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(lanes_)) {
    const size_t n = std::min(rows.size() - start, static_cast<size_t>(lanes_));
    // A short group fills its spare lanes with its last row (scored, then dropped).
    for (size_t i = 0; i < static_cast<size_t>(lanes_); ++i) group[i] = table_.vectors.row(rows[start + std::min(i, n - 1)]);
    kernel(pass, group, first, second);
    for (size_t i = 0; i < n; ++i) {
      out[start + i] = cosine ? Vec0CosineFromSums(first[i], second[i], query_sq) : Vec0L2FromSum(first[i]);
    }
  }
}

}  // namespace shardvec
