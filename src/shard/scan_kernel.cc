#include "shard/scan_kernel.h"

// GCC 12's AVX-512 intrinsics build "undefined" vectors from self-initialised locals, which
// -Wmaybe-uninitialized (and, inside _mm512_reduce_add_ps, -Wuninitialized) reports at every
// inlined use; the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>

namespace shardvec {
namespace {

// out[i] = Σ (q - row_i)² or Σ q·row_i for the n rows starting at `rows`; all pointers 32-byte
// aligned, `stride` a multiple of kScanLanes.
using BlockKernel = void (*)(const float* q, const float* rows, int64_t n, int64_t stride, float* out);

struct Kernels {
  BlockKernel l2sq, dot;                  // streaming: rows read from memory
  BlockKernel l2sq_cached, dot_cached;    // rows already in cache
};

// ---- scalar: eight partial sums, the same shape the SIMD kernels use -------------------------

template <bool kL2>
void BlockScalar(const float* q, const float* rows, int64_t n, int64_t stride, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float* r = rows + i * stride;
    float acc[kScanLanes] = {};
    for (int64_t j = 0; j < stride; j += kScanLanes) {
      for (int64_t l = 0; l < kScanLanes; ++l) {
        if constexpr (kL2) {
          const float d = q[j + l] - r[j + l];
          acc[l] += d * d;
        } else {
          acc[l] += q[j + l] * r[j + l];
        }
      }
    }
    float sum = 0;
    for (float a : acc) sum += a;
    out[i] = sum;
  }
}

// Each SIMD instruction set sums a row with four independent accumulators (chunk c of a row's
// 4-chunk stretch goes to sum c, a shorter tail to sum 0, an AVX-512 half vector to sum 1, then
// (s0 + s1) + (s2 + s3)), and has two kernels that both keep exactly this order, so a query's
// distances are the same bits whichever kernel scores it:
// - streaming (Rows<1>): one row at a time, front to back. Rows coming from memory then arrive as
//   one sequential read the hardware prefetcher follows (four rows side by side are four short
//   streams restarting every few KiB, and scan at about half the memory bandwidth), and four sums
//   hide the multiply-add latency.
// - cached (Rows<4>, AVX2 Rows<2>: its 16 registers): several rows per pass, so each load of the
//   query serves them all, fewer loads per multiply-add; the faster one once the rows sit in cache,
//   as when a batch's later queries scan the block its first query brought in.

// ---- AVX2 + FMA ---------------------------------------------------------------------------

__attribute__((target("avx2,fma"))) inline float HorizontalSum(__m256 v) {
  const __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 pairs = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)));
}

template <bool kL2>
__attribute__((target("avx2,fma"))) inline __m256 Accumulate(__m256 acc, __m256 q, const float* r) {
  const __m256 v = _mm256_load_ps(r);
  if constexpr (kL2) {
    const __m256 d = _mm256_sub_ps(q, v);
    return _mm256_fmadd_ps(d, d, acc);
  } else {
    return _mm256_fmadd_ps(q, v, acc);
  }
}

// Rows [first, first + kRows) of the n at `rows`.
template <bool kL2, int kRows>
__attribute__((target("avx2,fma"))) inline void RowsAvx2(const float* q, const float* rows, int64_t first,
                                                         int64_t stride, float* out) {
  __m256 acc[kRows][4];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm256_setzero_ps();
  const float* base = rows + first * stride;
  int64_t j = 0;
  for (; j + 32 <= stride; j += 32) {
    for (int c = 0; c < 4; ++c) {
      const __m256 qv = _mm256_load_ps(q + j + 8 * c);
      for (int r = 0; r < kRows; ++r) acc[r][c] = Accumulate<kL2>(acc[r][c], qv, base + r * stride + j + 8 * c);
    }
  }
  for (; j < stride; j += 8) {
    const __m256 qv = _mm256_load_ps(q + j);
    for (int r = 0; r < kRows; ++r) acc[r][0] = Accumulate<kL2>(acc[r][0], qv, base + r * stride + j);
  }
  for (int r = 0; r < kRows; ++r) {
    out[first + r] = HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc[r][0], acc[r][1]), _mm256_add_ps(acc[r][2], acc[r][3])));
  }
}

template <bool kL2, int kRows>
__attribute__((target("avx2,fma"))) void BlockAvx2(const float* q, const float* rows, int64_t n,
                                                   int64_t stride, float* out) {
  int64_t i = 0;
  for (; i + kRows <= n; i += kRows) RowsAvx2<kL2, kRows>(q, rows, i, stride, out);
  for (; i < n; ++i) RowsAvx2<kL2, 1>(q, rows, i, stride, out);
}

// ---- AVX-512: sixteen lanes, the last eight of an odd stride through a mask ----------------

template <bool kL2>
__attribute__((target("avx512f"))) inline __m512 Accumulate512(__m512 acc, __m512 q, __m512 v) {
  if constexpr (kL2) {
    const __m512 d = _mm512_sub_ps(q, v);
    return _mm512_fmadd_ps(d, d, acc);
  } else {
    return _mm512_fmadd_ps(q, v, acc);
  }
}

template <bool kL2, int kRows>
__attribute__((target("avx512f"))) inline void RowsAvx512(const float* q, const float* rows, int64_t first,
                                                           int64_t stride, float* out) {
  const __mmask16 half = 0x00FF;  // stride is a multiple of 8: at most one half vector is left
  __m512 acc[kRows][4];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm512_setzero_ps();
  const float* base = rows + first * stride;
  int64_t j = 0;
  for (; j + 64 <= stride; j += 64) {
    for (int c = 0; c < 4; ++c) {
      const __m512 qv = _mm512_loadu_ps(q + j + 16 * c);
      for (int r = 0; r < kRows; ++r) {
        acc[r][c] = Accumulate512<kL2>(acc[r][c], qv, _mm512_loadu_ps(base + r * stride + j + 16 * c));
      }
    }
  }
  for (; j + 16 <= stride; j += 16) {
    const __m512 qv = _mm512_loadu_ps(q + j);
    for (int r = 0; r < kRows; ++r) acc[r][0] = Accumulate512<kL2>(acc[r][0], qv, _mm512_loadu_ps(base + r * stride + j));
  }
  if (j < stride) {
    const __m512 qv = _mm512_maskz_loadu_ps(half, q + j);
    for (int r = 0; r < kRows; ++r) {
      acc[r][1] = Accumulate512<kL2>(acc[r][1], qv, _mm512_maskz_loadu_ps(half, base + r * stride + j));
    }
  }
  for (int r = 0; r < kRows; ++r) {
    out[first + r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]), _mm512_add_ps(acc[r][2], acc[r][3])));
  }
}

template <bool kL2, int kRows>
__attribute__((target("avx512f"))) void BlockAvx512(const float* q, const float* rows, int64_t n,
                                                    int64_t stride, float* out) {
  int64_t i = 0;
  for (; i + kRows <= n; i += kRows) RowsAvx512<kL2, kRows>(q, rows, i, stride, out);
  for (; i < n; ++i) RowsAvx512<kL2, 1>(q, rows, i, stride, out);
}

const Kernels& KernelsFor(ScanIsa isa) {
  static const Kernels kScalar{BlockScalar<true>, BlockScalar<false>, BlockScalar<true>, BlockScalar<false>};
  static const Kernels kAvx2{BlockAvx2<true, 1>, BlockAvx2<false, 1>, BlockAvx2<true, 2>, BlockAvx2<false, 2>};
  static const Kernels kAvx512{BlockAvx512<true, 1>, BlockAvx512<false, 1>, BlockAvx512<true, 4>,
                               BlockAvx512<false, 4>};
  switch (isa) {
    case ScanIsa::kAvx512:
      return kAvx512;
    case ScanIsa::kAvx2:
      return kAvx2;
    case ScanIsa::kScalar:
      break;
  }
  return kScalar;
}

// A bounded max-heap on the selection key: the k smallest keys seen so far.
class TopK {
 public:
  explicit TopK(int64_t k) : k_(static_cast<size_t>(k)) { heap_.reserve(k_); }
  // Keys must be below this to enter; -inf when k is 0, so nothing does.
  float worst() const {
    if (heap_.size() < k_) return kInf;
    return k_ == 0 ? -kInf : heap_.front().first;
  }
  void Push(float key, int64_t row) {
    if (heap_.size() < k_) {
      heap_.emplace_back(key, row);
      std::push_heap(heap_.begin(), heap_.end());
    } else if (key < heap_.front().first) {
      std::pop_heap(heap_.begin(), heap_.end());
      heap_.back() = {key, row};
      std::push_heap(heap_.begin(), heap_.end());
    }
  }
  std::vector<std::pair<float, int64_t>>& entries() { return heap_; }

 private:
  static constexpr float kInf = std::numeric_limits<float>::infinity();
  size_t k_;
  std::vector<std::pair<float, int64_t>> heap_;
};

constexpr size_t kHugePage = size_t{2} << 20;

// Rows per block: about 256 KiB, so a block stays in L2 while every query of a batch scans it.
int64_t BlockRows(int64_t stride) {
  const int64_t rows = (int64_t{256} << 10) / (stride * static_cast<int64_t>(sizeof(float)));
  return std::clamp<int64_t>(rows / 4 * 4, 4, 1024);
}

}  // namespace

void ScanMatrix::Free::operator()(float* p) const { std::free(p); }

ScanMatrix::ScanMatrix(int64_t rows, int64_t dim) : rows_(rows), dim_(dim), stride_(PaddedDim(dim)) {
  const size_t bytes = static_cast<size_t>(std::max<int64_t>(rows * stride_, 1)) * sizeof(float);
  // Large matrices sit on 2 MiB boundaries and ask for transparent huge pages: a scan then streams
  // without a TLB miss (and a hardware-prefetch stop) every 4 KiB.
  const size_t align = bytes >= kHugePage ? kHugePage : 64;
  // aligned_alloc wants a size that is a multiple of the alignment.
  const size_t size = (bytes + align - 1) / align * align;
  float* p = static_cast<float*>(std::aligned_alloc(align, size));
  if (p == nullptr) throw std::bad_alloc();
  if (align == kHugePage) madvise(p, size, MADV_HUGEPAGE);  // advice only: nothing to handle if refused
  std::memset(p, 0, bytes);
  data_.reset(p);
}

void ComputeNorms(ScanTable* table, ScanIsa isa) {
  const ScanMatrix& m = table->vectors;
  table->norms.resize(static_cast<size_t>(m.rows()));
  for (int64_t i = 0; i < m.rows(); ++i) {
    float sum = 0;
    KernelsFor(isa).dot(m.row(i), m.row(i), 1, m.stride(), &sum);
    table->norms[static_cast<size_t>(i)] = std::sqrt(sum);
  }
}

void ScanTopK(const ScanTable& table, std::span<const float* const> queries, int64_t k,
              std::vector<std::vector<ScanHit>>* out, ScanIsa isa) {
  const ScanMatrix& m = table.vectors;
  const int64_t stride = m.stride();
  const bool cosine = table.metric == Metric::kCosine;
  const Kernels& kernels = KernelsFor(isa);
  const BlockKernel streaming = cosine ? kernels.dot : kernels.l2sq;
  const BlockKernel cached = cosine ? kernels.dot_cached : kernels.l2sq_cached;
  const int64_t nq = static_cast<int64_t>(queries.size());

  // Aligned, zero-padded copies of the queries (and their norms for cosine).
  ScanMatrix padded(nq, m.dim());
  std::vector<float> query_norms(static_cast<size_t>(nq));
  for (int64_t q = 0; q < nq; ++q) {
    std::memcpy(padded.row(q), queries[static_cast<size_t>(q)], static_cast<size_t>(m.dim()) * sizeof(float));
    float sum = 0;
    if (cosine) KernelsFor(isa).dot(padded.row(q), padded.row(q), 1, stride, &sum);
    query_norms[static_cast<size_t>(q)] = std::sqrt(sum);
  }

  std::vector<TopK> best(static_cast<size_t>(nq), TopK(std::min(k, m.rows())));
  const int64_t block = BlockRows(stride);
  std::vector<float> sums(static_cast<size_t>(block));
  for (int64_t start = 0; start < m.rows(); start += block) {
    const int64_t n = std::min(block, m.rows() - start);
    for (int64_t q = 0; q < nq; ++q) {
      // The first query brings the block into cache; the others find it there.
      (q == 0 ? streaming : cached)(padded.row(q), m.row(start), n, stride, sums.data());
      TopK& top = best[static_cast<size_t>(q)];
      if (cosine) {
        // vec0: 1 - dot / (sqrt(|q|²) · sqrt(|r|²)), in float.
        const float qn = query_norms[static_cast<size_t>(q)];
        const float* rn = table.norms.data() + start;
        for (int64_t i = 0; i < n; ++i) {
          const float d = 1.0f - sums[static_cast<size_t>(i)] / (qn * rn[i]);
          if (d < top.worst()) top.Push(d, start + i);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) {
          const float d = sums[static_cast<size_t>(i)];
          if (d < top.worst()) top.Push(d, start + i);
        }
      }
    }
  }

  out->assign(static_cast<size_t>(nq), {});
  for (int64_t q = 0; q < nq; ++q) {
    auto& entries = best[static_cast<size_t>(q)].entries();
    std::vector<ScanHit>& hits = (*out)[static_cast<size_t>(q)];
    hits.reserve(entries.size());
    for (const auto& [key, row] : entries) {
      // l2 selects on the squared distance and takes the root only of the winners.
      const double score = cosine ? key : std::sqrt(key);
      hits.push_back(ScanHit{score, table.rowids[static_cast<size_t>(row)]});
    }
    std::sort(hits.begin(), hits.end(), [](const ScanHit& a, const ScanHit& b) {
      return a.score != b.score ? a.score < b.score : a.rowid < b.rowid;
    });
  }
}

}  // namespace shardvec
