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
#include <numeric>
#include <string>

namespace shardvec {
namespace {

// A lone query's scan may give up on a row at a check: after every 128 floats of it, short of its
// end (a multiple of every kernel's main-loop step: 64 AVX-512, 32 AVX2, 8 scalar). Checks every
// 128 rather than at 128, 256, 512, ... answered Fashion-MNIST's 784-d single queries 5-10 % faster.
constexpr int64_t kCheckEvery = 128;

inline bool IsCheck(int64_t done, int64_t stride) { return done % kCheckEvery == 0 && done < stride; }
inline int64_t CheckIndex(int64_t done) { return done / kCheckEvery - 1; }
inline int64_t CheckCount(int64_t stride) { return (stride - 1) / kCheckEvery; }

// The norm of `row` from each check on (CheckCount(stride) values): how much the rest of the row
// can add to a dot product.
void TailNorms(const float* row, int64_t stride, double* out) {
  double tail = 0;
  int64_t end = stride;
  for (int64_t c = CheckCount(stride) - 1; c >= 0; --c) {
    const int64_t from = kCheckEvery * (c + 1);
    for (int64_t j = from; j < end; ++j) tail += static_cast<double>(row[j]) * row[j];
    out[c] = std::sqrt(tail);
    end = from;
  }
}

// What a kernel does with its rows. StoreSums writes out[i] = Σ (q - row_i)² or Σ q·row_i and never
// gives up on a row; a scan that does (StoppingScan below) also says at each check whether the
// row's partial sum already rules it out.
struct StoreSums {
  static constexpr bool kStops = false;
  float* out;
  bool Stop(int64_t, int64_t, float) const { return false; }
  void Take(int64_t i, float sum) const { out[i] = sum; }
};

class StoppingScan;

// Rows [0, n) starting at `rows`; all pointers 32-byte aligned, `stride` a multiple of kScanLanes.
using BlockKernel = void (*)(const float* q, const float* rows, int64_t n, int64_t stride, const StoreSums& sums);
using StoppingKernel = void (*)(const float* q, const float* rows, int64_t n, int64_t stride, StoppingScan& scan);

struct Kernels {
  BlockKernel l2sq, dot;                  // streaming: rows read from memory
  BlockKernel l2sq_cached, dot_cached;    // rows already in cache
  StoppingKernel l2sq_stopping, dot_stopping;  // streaming, one query, rows ruled out early
};

// ---- scalar: eight partial sums, the same shape the SIMD kernels use -------------------------

inline float SumLanes(const float (&acc)[kScanLanes]) {
  float sum = 0;
  for (float a : acc) sum += a;
  return sum;
}

template <bool kL2, class Scan>
void BlockScalar(const float* q, const float* rows, int64_t n, int64_t stride, Scan& scan) {
  for (int64_t i = 0; i < n; ++i) {
    const float* r = rows + i * stride;
    float acc[kScanLanes] = {};
    bool stopped = false;
    for (int64_t j = 0; j < stride && !stopped; j += kScanLanes) {
      for (int64_t l = 0; l < kScanLanes; ++l) {
        if constexpr (kL2) {
          const float d = q[j + l] - r[j + l];
          acc[l] += d * d;
        } else {
          acc[l] += q[j + l] * r[j + l];
        }
      }
      if constexpr (Scan::kStops) {
        const int64_t done = j + kScanLanes;
        stopped = IsCheck(done, stride) && scan.Stop(i, CheckIndex(done), SumLanes(acc));
      }
    }
    if (!stopped) scan.Take(i, SumLanes(acc));
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

__attribute__((target("avx2,fma"))) inline float SumAccumulators(const __m256 (&acc)[4]) {
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// Rows [first, first + kRows) of the n at `rows`. A lone row (kRows 1) may stop at a check, which
// reads the sums without changing them.
template <bool kL2, int kRows, class Scan>
__attribute__((target("avx2,fma"))) inline void RowsAvx2(const float* q, const float* rows, int64_t first,
                                                         int64_t stride, Scan& scan) {
  __m256 acc[kRows][4];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = acc[r][2] = acc[r][3] = _mm256_setzero_ps();
  const float* base = rows + first * stride;
  int64_t j = 0;
  for (; j + 32 <= stride; j += 32) {
    for (int c = 0; c < 4; ++c) {
      const __m256 qv = _mm256_load_ps(q + j + 8 * c);
      for (int r = 0; r < kRows; ++r) acc[r][c] = Accumulate<kL2>(acc[r][c], qv, base + r * stride + j + 8 * c);
    }
    if constexpr (Scan::kStops && kRows == 1) {
      const int64_t done = j + 32;
      if (IsCheck(done, stride) && scan.Stop(first, CheckIndex(done), SumAccumulators(acc[0]))) {
        return;
      }
    }
  }
  for (; j < stride; j += 8) {
    const __m256 qv = _mm256_load_ps(q + j);
    for (int r = 0; r < kRows; ++r) acc[r][0] = Accumulate<kL2>(acc[r][0], qv, base + r * stride + j);
  }
  for (int r = 0; r < kRows; ++r) scan.Take(first + r, SumAccumulators(acc[r]));
}

template <bool kL2, int kRows, class Scan>
__attribute__((target("avx2,fma"))) void BlockAvx2(const float* q, const float* rows, int64_t n,
                                                   int64_t stride, Scan& scan) {
  int64_t i = 0;
  for (; i + kRows <= n; i += kRows) RowsAvx2<kL2, kRows>(q, rows, i, stride, scan);
  for (; i < n; ++i) RowsAvx2<kL2, 1>(q, rows, i, stride, scan);
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

__attribute__((target("avx512f"))) inline float SumAccumulators(const __m512 (&acc)[4]) {
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

template <bool kL2, int kRows, class Scan>
__attribute__((target("avx512f"))) inline void RowsAvx512(const float* q, const float* rows, int64_t first,
                                                           int64_t stride, Scan& scan) {
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
    if constexpr (Scan::kStops && kRows == 1) {
      const int64_t done = j + 64;
      if (IsCheck(done, stride) && scan.Stop(first, CheckIndex(done), SumAccumulators(acc[0]))) {
        return;
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
  for (int r = 0; r < kRows; ++r) scan.Take(first + r, SumAccumulators(acc[r]));
}

template <bool kL2, int kRows, class Scan>
__attribute__((target("avx512f"))) void BlockAvx512(const float* q, const float* rows, int64_t n,
                                                    int64_t stride, Scan& scan) {
  int64_t i = 0;
  for (; i + kRows <= n; i += kRows) RowsAvx512<kL2, kRows>(q, rows, i, stride, scan);
  for (; i < n; ++i) RowsAvx512<kL2, 1>(q, rows, i, stride, scan);
}

// A bounded max-heap on the selection key: the k smallest keys below `limit` seen so far.
class TopK {
 public:
  TopK(int64_t k, float limit) : k_(static_cast<size_t>(k)), limit_(limit) { heap_.reserve(k_); }
  // Keys must be below this to enter; -inf when k is 0, so nothing does.
  float worst() const {
    if (heap_.size() < k_) return limit_;
    return k_ == 0 ? -kInf : std::min(heap_.front().first, limit_);
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
  float limit_;
  std::vector<std::pair<float, int64_t>> heap_;
};

// Turns a kernel's sum for a row into vec0's distance and offers it to a query's top k.
struct Scorer {
  bool cosine;
  float query_norm;   // cosine only
  const float* norms;  // cosine only: the table's row norms
  TopK* top;

  void Take(int64_t row, float sum) const {
    // vec0: 1 - dot / (sqrt(|q|²) · sqrt(|r|²)), in float.
    const float d = cosine ? 1.0f - sum / (query_norm * norms[row]) : sum;
    if (d < top->worst()) top->Push(d, row);
  }
};

// A lone query's scan of a whole table: rows go straight into its top-k, and a row is given up at
// a check once its finished distance could not enter, so the result is the full scan's, bit for
// bit, while most of a far row is never read from memory.
// - l2: a sum of squares only grows (non-negative terms; float rounding is monotone), so a partial
//   sum at or above the k-th best rules the row out.
// - cosine: the rest of the dot product is at most |q_tail|·|r_tail| (Cauchy–Schwarz), from each
//   row's tail norms kept per check; a margin far above the float rounding of these sums keeps
//   every row that might enter.
class StoppingScan {
 public:
  static constexpr bool kStops = true;

  StoppingScan(const ScanTable& table, const Scorer& scorer, std::span<const double> query_tail_norms)
      : scorer_(scorer),
        stride_(table.vectors.stride()),
        checks_(CheckCount(table.vectors.stride())),
        margin_(static_cast<double>(16 * table.vectors.stride() + 64) * 0x1p-24),
        query_tails_(query_tail_norms),
        tail_norms_(table.tail_norms.data()) {}

  // Row indices given to Stop and Take count from this row of the table (a kernel call's first).
  void StartAt(int64_t first_row) { base_ = first_row; }

  bool Stop(int64_t i, int64_t check, float partial) {
    i += base_;
    const float worst = scorer_.top->worst();
    bool out;
    if (!scorer_.cosine) {
      out = partial >= worst;
    } else {
      // dot < (1 - worst - margin)·|q||r| means 1 - dot/(|q||r|) > worst.
      const double dot_at_most = static_cast<double>(partial) +
                                 query_tails_[static_cast<size_t>(check)] * tail_norms_[i * checks_ + check];
      const double scale = static_cast<double>(scorer_.query_norm) * scorer_.norms[i];
      out = dot_at_most < ((1.0 - static_cast<double>(worst)) - margin_) * scale;
    }
    if (out) {
      ++stopped_;
      skipped_ += stride_ - (check + 1) * kCheckEvery;
    }
    return out;
  }

  void Take(int64_t i, float sum) const { scorer_.Take(base_ + i, sum); }

  int64_t stopped() const { return stopped_; }
  int64_t skipped() const { return skipped_; }

 private:
  Scorer scorer_;
  int64_t stride_;
  int64_t checks_;
  double margin_;
  std::span<const double> query_tails_;
  const float* tail_norms_;
  int64_t base_ = 0;
  int64_t stopped_ = 0;
  int64_t skipped_ = 0;
};

const Kernels& KernelsFor(ScanIsa isa) {
  using Sums = const StoreSums;
  static const Kernels kScalar{BlockScalar<true, Sums>,          BlockScalar<false, Sums>,
                               BlockScalar<true, Sums>,          BlockScalar<false, Sums>,
                               BlockScalar<true, StoppingScan>,  BlockScalar<false, StoppingScan>};
  static const Kernels kAvx2{BlockAvx2<true, 1, Sums>,         BlockAvx2<false, 1, Sums>,
                             BlockAvx2<true, 2, Sums>,         BlockAvx2<false, 2, Sums>,
                             BlockAvx2<true, 1, StoppingScan>, BlockAvx2<false, 1, StoppingScan>};
  static const Kernels kAvx512{BlockAvx512<true, 1, Sums>,         BlockAvx512<false, 1, Sums>,
                               BlockAvx512<true, 4, Sums>,         BlockAvx512<false, 4, Sums>,
                               BlockAvx512<true, 1, StoppingScan>, BlockAvx512<false, 1, StoppingScan>};
  return ForIsa(isa, kScalar, kAvx2, kAvx512);
}

constexpr size_t kHugePage = size_t{2} << 20;

// Rows per block: about 256 KiB, so a block stays in L2 while every query of a batch scans it.
int64_t BlockRows(int64_t stride) {
  const int64_t rows = (int64_t{256} << 10) / (stride * static_cast<int64_t>(sizeof(float)));
  return std::clamp<int64_t>(rows / 4 * 4, 4, 1024);
}

// Where few rows stop (a shard far from the query, whose nearest rows are all far), checks only
// cost their sums: after a window of rows in which under a quarter stopped, the next seven windows
// are scanned without checks, then checking is tried again.
constexpr int64_t kCheckedRows = 64;
constexpr int64_t kUncheckedRows = 7 * kCheckedRows;

// A lone query's scan of `ranges` of the table, rows stopping early where that pays. `sums` holds at
// least kUncheckedRows floats.
void ScanAlone(const ScanTable& table, const Kernels& kernels, const float* query, const Scorer& scorer,
               std::span<const RowRange> ranges, std::span<float> sums, ScanStats* stats) {
  const ScanMatrix& m = table.vectors;
  const int64_t stride = m.stride();
  std::vector<double> query_tails(static_cast<size_t>(CheckCount(stride)));
  if (scorer.cosine) TailNorms(query, stride, query_tails.data());
  StoppingScan scan(table, scorer, query_tails);
  const StoppingKernel stopping = scorer.cosine ? kernels.dot_stopping : kernels.l2sq_stopping;
  const BlockKernel streaming = scorer.cosine ? kernels.dot : kernels.l2sq;
  bool checking = true;
  for (const RowRange& range : ranges) {
    for (int64_t start = range.begin; start < range.end;) {
      const int64_t n = std::min(checking ? kCheckedRows : kUncheckedRows, range.end - start);
      scan.StartAt(start);
      if (checking) {
        const int64_t stopped_before = scan.stopped();
        stopping(query, m.row(start), n, stride, scan);
        checking = (scan.stopped() - stopped_before) * 4 >= n;
      } else {
        streaming(query, m.row(start), n, stride, StoreSums{sums.data()});
        for (int64_t i = 0; i < n; ++i) scan.Take(i, sums[static_cast<size_t>(i)]);
        checking = true;
      }
      start += n;
    }
  }
  if (stats != nullptr) {
    stats->rows_stopped = scan.stopped();
    stats->floats_skipped = scan.skipped();
  }
}

// Aligned, zero-padded copies of the queries in the table's column order (`padded`: one row each),
// and their norms for a cosine table (`norms`: one each).
void PadQueries(const ScanTable& table, std::span<const float* const> queries, const Kernels& kernels,
                ScanMatrix* padded, std::vector<float>* norms) {
  const int64_t dim = table.vectors.dim();
  for (size_t q = 0; q < queries.size(); ++q) {
    float* row = padded->row(static_cast<int64_t>(q));
    if (table.column_order.empty()) {
      std::memcpy(row, queries[q], static_cast<size_t>(dim) * sizeof(float));
    } else {
      for (int64_t j = 0; j < dim; ++j) row[j] = queries[q][table.column_order[static_cast<size_t>(j)]];
    }
    float sum = 0;
    if (table.metric == Metric::kCosine) kernels.dot(row, row, 1, padded->stride(), StoreSums{&sum});
    (*norms)[q] = std::sqrt(sum);
  }
}

}  // namespace

void ScanMatrix::Free::operator()(float* p) const { std::free(p); }

void ScoreRows(const ScanTable& table, const float* query, std::span<const int64_t> rows, std::span<double> out,
               ScanIsa isa) {
  const Kernels& kernels = KernelsFor(isa);
  const bool cosine = table.metric == Metric::kCosine;
  ScanMatrix padded(1, table.vectors.dim());
  std::vector<float> norm(1);
  PadQueries(table, std::span<const float* const>(&query, 1), kernels, &padded, &norm);
  const BlockKernel kernel = cosine ? kernels.dot : kernels.l2sq;
  for (size_t i = 0; i < rows.size(); ++i) {
    float sum = 0;
    kernel(padded.row(0), table.vectors.row(rows[i]), 1, table.vectors.stride(), StoreSums{&sum});
    // As ScanTopK scores a row (Scorer, then the root of an l2 winner's key).
    out[i] = cosine ? static_cast<double>(1.0f - sum / (norm[0] * table.norms[static_cast<size_t>(rows[i])]))
                    : static_cast<double>(std::sqrt(sum));
  }
}

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

void OrderColumnsBySpread(ScanTable* table) {
  ScanMatrix& m = table->vectors;
  const int64_t dim = m.dim();
  if (m.rows() < 2 || dim < 2) return;
  std::vector<double> sum(static_cast<size_t>(dim)), sum_sq(static_cast<size_t>(dim));
  for (int64_t i = 0; i < m.rows(); ++i) {
    const float* r = m.row(i);
    for (int64_t j = 0; j < dim; ++j) {
      sum[static_cast<size_t>(j)] += r[j];
      sum_sq[static_cast<size_t>(j)] += static_cast<double>(r[j]) * r[j];
    }
  }
  std::vector<double> spread(static_cast<size_t>(dim));
  const double n = static_cast<double>(m.rows());
  for (size_t j = 0; j < spread.size(); ++j) spread[j] = sum_sq[j] - sum[j] * sum[j] / n;
  std::vector<int32_t> order(static_cast<size_t>(dim));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return spread[static_cast<size_t>(a)] > spread[static_cast<size_t>(b)];
  });
  std::vector<float> row(static_cast<size_t>(dim));
  for (int64_t i = 0; i < m.rows(); ++i) {
    float* r = m.row(i);
    for (int64_t j = 0; j < dim; ++j) row[static_cast<size_t>(j)] = r[order[static_cast<size_t>(j)]];
    std::copy(row.begin(), row.end(), r);
  }
  table->column_order = std::move(order);
}

void ComputeNorms(ScanTable* table, ScanIsa isa) {
  const ScanMatrix& m = table->vectors;
  const int64_t checks = CheckCount(m.stride());
  table->norms.resize(static_cast<size_t>(m.rows()));
  table->tail_norms.resize(static_cast<size_t>(m.rows() * checks));
  std::vector<double> tails(static_cast<size_t>(checks));
  for (int64_t i = 0; i < m.rows(); ++i) {
    float sum = 0;
    KernelsFor(isa).dot(m.row(i), m.row(i), 1, m.stride(), StoreSums{&sum});
    table->norms[static_cast<size_t>(i)] = std::sqrt(sum);
    TailNorms(m.row(i), m.stride(), tails.data());
    std::copy(tails.begin(), tails.end(), table->tail_norms.begin() + i * checks);
  }
}

void ScanTopK(const ScanTable& table, std::span<const float* const> queries, int64_t k,
              std::vector<std::vector<ScanHit>>* out, const ScanOptions& options) {
  const ScanIsa isa = options.isa;
  ScanStats* stats = options.stats;
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
  PadQueries(table, queries, kernels, &padded, &query_norms);

  // Keys (l2: squared distances) must be below this to enter: a little above max_distance's key,
  // since a float square root squared again can come out an ulp low; the hits are cut at
  // max_distance exactly at the end.
  float limit = std::numeric_limits<float>::infinity();
  const bool bounded = options.max_distance < std::numeric_limits<double>::infinity();
  if (bounded) {
    const double key = cosine ? options.max_distance : options.max_distance * options.max_distance * (1 + 0x1p-20);
    limit = std::nextafter(static_cast<float>(key), limit);
  }
  std::vector<TopK> best(static_cast<size_t>(nq), TopK(std::min(k, m.rows()), limit));
  const RowRange whole{0, m.rows()};
  const std::span<const RowRange> ranges = options.row_ranges.empty() ? std::span(&whole, 1) : options.row_ranges;
  std::vector<int32_t> every_query(static_cast<size_t>(nq));
  std::iota(every_query.begin(), every_query.end(), 0);
  auto queries_of = [&](size_t r) -> const std::vector<int32_t>& {
    return options.range_queries.empty() ? every_query : options.range_queries[r];
  };
  if (stats != nullptr) {
    *stats = ScanStats{};
    for (size_t r = 0; r < ranges.size(); ++r) {
      stats->rows += (ranges[r].end - ranges[r].begin) * static_cast<int64_t>(queries_of(r).size());
    }
  }
  // Rows' sums, a block (or a lone query's unchecked windows) at a time.
  std::vector<float> sums(static_cast<size_t>(std::max(BlockRows(stride), kUncheckedRows)));
  if (nq == 1) {
    // One query: nothing to share a block with, so rows may stop early instead.
    std::vector<RowRange> mine;
    for (size_t r = 0; r < ranges.size(); ++r) {
      if (!queries_of(r).empty()) mine.push_back(ranges[r]);
    }
    const Scorer scorer{cosine, query_norms[0], table.norms.data(), &best[0]};
    ScanAlone(table, kernels, padded.row(0), scorer, mine, sums, stats);
  } else {
    const int64_t block = BlockRows(stride);
    for (size_t r = 0; r < ranges.size(); ++r) {
      const std::vector<int32_t>& scanners = queries_of(r);
      for (int64_t start = ranges[r].begin; start < ranges[r].end; start += block) {
        const int64_t n = std::min(block, ranges[r].end - start);
        for (size_t j = 0; j < scanners.size(); ++j) {
          const auto q = static_cast<size_t>(scanners[j]);
          // The first query brings the block into cache; the others find it there.
          (j == 0 ? streaming : cached)(padded.row(static_cast<int64_t>(q)), m.row(start), n, stride,
                                        StoreSums{sums.data()});
          const Scorer scorer{cosine, query_norms[q], table.norms.data(), &best[q]};
          for (int64_t i = 0; i < n; ++i) scorer.Take(start + i, sums[static_cast<size_t>(i)]);
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
      hits.push_back(ScanHit{score, table.rowids[static_cast<size_t>(row)], row});
    }
    std::sort(hits.begin(), hits.end(), [](const ScanHit& a, const ScanHit& b) {
      return a.score != b.score ? a.score < b.score : a.rowid < b.rowid;
    });
    if (bounded) std::erase_if(hits, [&](const ScanHit& hit) { return hit.score > options.max_distance; });
  }
}

}  // namespace shardvec
