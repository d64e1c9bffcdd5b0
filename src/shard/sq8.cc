#include "shard/sq8.h"

// GCC 12's AVX-512 intrinsics build "undefined" vectors from self-initialised locals (see
// scan_kernel.cc); the values are never read.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <new>
#include <utility>

#include "shard/vec0_top_k.h"

namespace shardvec {
namespace {

// Integer dot products of rows [0, n) of codes (stride bytes each, 64-byte aligned) with one
// query's int8 weights (stride of them, zero padded): out[i] = Σ codes[i][j] · weights[j].
// `wide` holds the weights as int16 (the AVX2 kernel's operand).
using DotKernel = void (*)(const int8_t* weights, const int16_t* wide, const uint8_t* codes, int64_t n,
                           int64_t stride, int32_t* out);

void DotsScalar(const int8_t* weights, const int16_t*, const uint8_t* codes, int64_t n, int64_t stride,
                int32_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * stride;
    int32_t sum = 0;
    for (int64_t j = 0; j < stride; ++j) sum += static_cast<int32_t>(c[j]) * weights[j];
    out[i] = sum;
  }
}

// AVX2: codes widened to int16, multiplied and summed in pairs (madd cannot overflow: 255 · 127 · 2
// fits in int32), 32 codes per step.
__attribute__((target("avx2"))) inline __m256i Madd16(const uint8_t* c, const int16_t* w) {
  const __m256i codes = _mm256_cvtepu8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(c)));
  return _mm256_madd_epi16(codes, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
}

__attribute__((target("avx2"))) inline int32_t HorizontalSum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

__attribute__((target("avx2"))) void DotsAvx2(const int8_t*, const int16_t* wide, const uint8_t* codes, int64_t n,
                                              int64_t stride, int32_t* out) {
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* c = codes + i * stride;
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    for (int64_t j = 0; j < stride; j += 32) {
      a0 = _mm256_add_epi32(a0, Madd16(c + j, wide + j));
      a1 = _mm256_add_epi32(a1, Madd16(c + j + 16, wide + j + 16));
    }
    out[i] = HorizontalSum(_mm256_add_epi32(a0, a1));
  }
}

// AVX-512 VNNI: 64 codes × 64 weights summed in fours per instruction; four rows share each load
// of the weights.
template <int kRows>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void RowsVnni(const int8_t* weights,
                                                                             const uint8_t* codes,
                                                                             int64_t stride, int32_t* out) {
  __m512i acc[kRows];
  for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_si512();
  for (int64_t j = 0; j < stride; j += 64) {
    const __m512i w = _mm512_load_si512(weights + j);
    for (int r = 0; r < kRows; ++r) {
      acc[r] = _mm512_dpbusd_epi32(acc[r], _mm512_load_si512(codes + r * stride + j), w);
    }
  }
  for (int r = 0; r < kRows; ++r) out[r] = _mm512_reduce_add_epi32(acc[r]);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void DotsVnni(const int8_t* weights, const int16_t*,
                                                                     const uint8_t* codes, int64_t n,
                                                                     int64_t stride, int32_t* out) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) RowsVnni<4>(weights, codes + i * stride, stride, out + i);
  for (; i < n; ++i) RowsVnni<1>(weights, codes + i * stride, stride, out + i);
}

DotKernel DotsFor(ScanIsa isa) {
  static const bool vnni = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw");
  if (isa == ScanIsa::kAvx512 && ScanIsaSupported(ScanIsa::kAvx512) && vnni) return DotsVnni;
  if (isa != ScanIsa::kScalar && ScanIsaSupported(ScanIsa::kAvx2)) return DotsAvx2;
  return DotsScalar;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

template <typename T>
std::unique_ptr<T[], AlignedFree> AlignedZeros(int64_t count) {
  const size_t bytes = (static_cast<size_t>(std::max<int64_t>(count, 1)) * sizeof(T) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  std::memset(p, 0, bytes);
  return std::unique_ptr<T[], AlignedFree>(static_cast<T*>(p));
}

// One query made ready for the code scan: int8 weights (scale · weight ≈ q_j · scale_j) and the
// constant q·min.
struct QueryWeights {
  std::unique_ptr<int8_t[], AlignedFree> weights;
  std::unique_ptr<int16_t[], AlignedFree> wide;
  float scale = 0;
  float dot_min = 0;
};

// w_j = q_j · scale_j into `w` and the largest |w_j| (AVX-512: sixteen at a time; the same floats).
float Weights(const float* query, const float* scales, int64_t dim, float* w) {
  float largest = 0;
  for (int64_t j = 0; j < dim; ++j) {
    w[j] = query[j] * scales[j];
    largest = std::max(largest, std::abs(w[j]));
  }
  return largest;
}

__attribute__((target("avx512f"))) float WeightsAvx512(const float* query, const float* scales, int64_t dim,
                                                       float* w) {
  __m512 largest = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= dim; j += 16) {
    const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(query + j), _mm512_loadu_ps(scales + j));
    _mm512_storeu_ps(w + j, v);
    largest = _mm512_max_ps(largest, _mm512_abs_ps(v));
  }
  return std::max(_mm512_reduce_max_ps(largest), Weights(query + j, scales + j, dim - j, w + j));
}

// The int8 weights round(w_j / scale) (to nearest, ties to even, as lrint in the default mode).
void Quantize(const float* w, float scale, int64_t dim, int8_t* out) {
  for (int64_t j = 0; j < dim; ++j) out[j] = static_cast<int8_t>(std::clamp(std::lrint(w[j] / scale), -127L, 127L));
}

__attribute__((target("avx512f"))) void QuantizeAvx512(const float* w, float scale, int64_t dim, int8_t* out) {
  const __m512 divisor = _mm512_set1_ps(scale);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  int64_t j = 0;
  for (; j + 16 <= dim; j += 16) {
    const __m512i v = _mm512_cvtps_epi32(_mm512_div_ps(_mm512_loadu_ps(w + j), divisor));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), _mm512_cvtsepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi)));
  }
  Quantize(w + j, scale, dim - j, out + j);
}

QueryWeights PrepareQuery(const Sq8Codes& codes, const float* query, ScanIsa isa) {
  const int64_t dim = codes.dim();
  const Sq8Params& p = codes.params();
  QueryWeights qw{AlignedZeros<int8_t>(codes.stride()), AlignedZeros<int16_t>(codes.stride())};
  std::vector<float> w(static_cast<size_t>(dim));
  const bool avx512 = isa == ScanIsa::kAvx512 && ScanIsaSupported(ScanIsa::kAvx512);
  const float largest = (avx512 ? WeightsAvx512 : Weights)(query, p.scales.data(), dim, w.data());
  // q·min in four partial sums (one order on every instruction set).
  double dot_min[4] = {};
  int64_t j = 0;
  for (; j + 4 <= dim; j += 4) {
    for (int l = 0; l < 4; ++l) dot_min[l] += static_cast<double>(query[j + l]) * p.mins[static_cast<size_t>(j + l)];
  }
  for (; j < dim; ++j) dot_min[0] += static_cast<double>(query[j]) * p.mins[static_cast<size_t>(j)];
  qw.dot_min = static_cast<float>((dot_min[0] + dot_min[1]) + (dot_min[2] + dot_min[3]));
  if (largest > 0 && std::isfinite(largest)) {
    qw.scale = largest / 127;
    (avx512 ? QuantizeAvx512 : Quantize)(w.data(), qw.scale, dim, qw.weights.get());
    for (int64_t k = 0; k < dim; ++k) qw.wide[k] = qw.weights[k];
  }
  return qw;
}

// Rows per block: about 128 KiB of codes, so a block stays in L2 while every query scans it.
int64_t BlockRows(int64_t stride) { return std::clamp<int64_t>((int64_t{128} << 10) / stride / 4 * 4, 4, 4096); }

// A bounded max-heap of (key, row): the `want` smallest keys.
// The `want` smallest (key, row) pairs pushed. Rows are buffered and cut back to the `want` smallest
// (nth_element) whenever the buffer holds twice that, so a row costs O(1) however large `want` is (a
// heap paid O(log want) for each of the many rows that displace one while a scan's best improve).
class Best {
 public:
  explicit Best(int64_t want) : want_(static_cast<size_t>(want)) { kept_.reserve(2 * want_); }
  void Push(float key, int64_t row) {
    if (want_ == 0) return;
    if (full_ && !(std::pair(key, row) < bound_)) return;
    kept_.emplace_back(key, row);
    if (kept_.size() >= 2 * want_) Cut();
  }
  // The kept pairs, at most `want`, in no order.
  const std::vector<std::pair<float, int64_t>>& Entries() {
    if (kept_.size() > want_) Cut();
    return kept_;
  }
  std::vector<int64_t> Rows() {
    std::vector<int64_t> rows;
    rows.reserve(std::min(kept_.size(), want_));
    for (const auto& entry : Entries()) rows.push_back(entry.second);
    std::sort(rows.begin(), rows.end());
    return rows;
  }

 private:
  void Cut() {
    std::nth_element(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(want_ - 1), kept_.end());
    bound_ = kept_[want_ - 1];
    kept_.resize(want_);
    full_ = true;
  }

  size_t want_;
  std::vector<std::pair<float, int64_t>> kept_;
  bool full_ = false;               // bound_ is set: `want` pairs were kept
  std::pair<float, int64_t> bound_;  // the largest pair kept at the last cut
};

std::vector<RowRange> RangesOrAll(std::span<const RowRange> ranges, int64_t rows) {
  if (ranges.empty()) return {RowRange{0, rows}};
  std::vector<RowRange> out;
  for (const RowRange& r : ranges) {
    const RowRange clipped{std::clamp<int64_t>(r.begin, 0, rows), std::clamp<int64_t>(r.end, 0, rows)};
    if (clipped.begin < clipped.end) out.push_back(clipped);
  }
  return out;
}

int64_t RowCount(std::span<const RowRange> ranges) {
  int64_t n = 0;
  for (const RowRange& r : ranges) n += r.end - r.begin;
  return n;
}

}  // namespace

Sq8Params TrainSq8(const float* rows, int64_t n, int64_t dim) {
  Sq8Params p;
  p.mins.assign(static_cast<size_t>(dim), 0.0f);
  p.scales.assign(static_cast<size_t>(dim), 0.0f);
  if (n <= 0) return p;
  std::vector<float> maxs(rows, rows + dim);
  std::copy(rows, rows + dim, p.mins.begin());
  for (int64_t i = 1; i < n; ++i) {
    const float* r = rows + i * dim;
    for (int64_t j = 0; j < dim; ++j) {
      const size_t u = static_cast<size_t>(j);
      p.mins[u] = std::min(p.mins[u], r[j]);
      maxs[u] = std::max(maxs[u], r[j]);
    }
  }
  for (size_t j = 0; j < maxs.size(); ++j) {
    // In double: max − min of two finite floats can overflow float.
    const double range = static_cast<double>(maxs[j]) - p.mins[j];
    const float scale = static_cast<float>(range / 255);
    p.scales[j] = std::isfinite(scale) ? scale : 0.0f;
  }
  return p;
}

void EncodeSq8(const Sq8Params& params, const float* row, uint8_t* codes) {
  for (size_t j = 0; j < params.mins.size(); ++j) {
    const float scale = params.scales[j];
    const double c = scale > 0 ? (static_cast<double>(row[j]) - params.mins[j]) / scale : 0.0;
    codes[j] = static_cast<uint8_t>(std::clamp(std::lrint(c), 0L, 255L));
  }
}

bool Sq8WithinRanges(const Sq8Params& params, const float* row) {
  for (size_t j = 0; j < params.mins.size(); ++j) {
    const double width = 255.0 * params.scales[j], slack = kSq8RangeSlack * width;
    const double v = row[j], lo = params.mins[j];
    if (!(v >= lo - slack && v <= lo + width + slack)) return false;
  }
  return true;
}

void Sq8Codes::Free::operator()(uint8_t* p) const { std::free(p); }

Sq8Codes::Sq8Codes(Sq8Params params, std::span<const uint8_t> codes, const ScanTable& table)
    : metric_(table.metric),
      rows_(table.vectors.rows()),
      dim_(table.vectors.dim()),
      stride_((table.vectors.dim() + kSq8Lanes - 1) / kSq8Lanes * kSq8Lanes),
      params_(std::move(params)) {
  auto data = AlignedZeros<uint8_t>(rows_ * stride_);
  data_.reset(data.release());
  for (int64_t i = 0; i < rows_; ++i) {
    std::memcpy(data_.get() + i * stride_, codes.data() + i * dim_, static_cast<size_t>(dim_));
  }
  row_terms_.resize(static_cast<size_t>(rows_));
  for (int64_t i = 0; i < rows_; ++i) {
    if (metric_ == Metric::kCosine) {
      const float norm = table.norms[static_cast<size_t>(i)];
      row_terms_[static_cast<size_t>(i)] = norm > 0 ? 1.0f / norm : 0.0f;
    } else {
      const float* r = table.vectors.row(i);
      double sum = 0;
      for (int64_t j = 0; j < table.vectors.stride(); ++j) sum += static_cast<double>(r[j]) * r[j];
      row_terms_[static_cast<size_t>(i)] = static_cast<float>(sum);
    }
  }
}

namespace {

// Each query's best `want` keys by code over the options' ranges: block by block, every query scans a
// block while it sits in cache.
std::vector<Best> ScanCodes(const Sq8Codes& codes, std::span<const float* const> queries, int64_t want,
                            const Sq8ScanOptions& options) {
  const std::vector<RowRange> ranges = RangesOrAll(options.row_ranges, codes.rows());
  const DotKernel dots = DotsFor(options.isa);
  const bool cosine = codes.metric() == Metric::kCosine;
  std::vector<QueryWeights> prepared;
  prepared.reserve(queries.size());
  for (const float* q : queries) prepared.push_back(PrepareQuery(codes, q, options.isa));
  std::vector<Best> best(queries.size(), Best(want));
  const int64_t block = BlockRows(codes.stride());
  std::vector<int32_t> sums(static_cast<size_t>(block));
  std::vector<int32_t> every(prepared.size());
  std::iota(every.begin(), every.end(), 0);
  for (size_t r = 0; r < ranges.size(); ++r) {
    const RowRange& range = ranges[r];
    const std::vector<int32_t>& range_queries = options.range_queries.empty() ? every : options.range_queries[r];
    for (int64_t start = range.begin; start < range.end; start += block) {
      const int64_t n = std::min(block, range.end - start);
      for (const int32_t q : range_queries) {
        const QueryWeights& qw = prepared[static_cast<size_t>(q)];
        dots(qw.weights.get(), qw.wide.get(), codes.row(start), n, codes.stride(), sums.data());
        for (int64_t i = 0; i < n; ++i) {
          const float dot = qw.dot_min + qw.scale * static_cast<float>(sums[static_cast<size_t>(i)]);
          const float term = codes.row_term(start + i);
          best[q].Push(cosine ? -dot * term : term - 2 * dot, start + i);
        }
      }
    }
  }
  return best;
}

}  // namespace

void Sq8Candidates(const Sq8Codes& codes, std::span<const float* const> queries, int64_t want,
                   std::vector<std::vector<int64_t>>* out, const Sq8ScanOptions& options) {
  std::vector<Best> best = ScanCodes(codes, queries, want, options);
  out->clear();
  for (Best& b : best) out->push_back(b.Rows());
}

Sq8Codes QuantizeRows(const float* rows, int64_t n, int64_t dim, const ScanTable& table) {
  Sq8Params params = TrainSq8(rows, n, dim);
  std::vector<uint8_t> codes(static_cast<size_t>(n * dim));
  for (int64_t i = 0; i < n; ++i) EncodeSq8(params, rows + i * dim, codes.data() + i * dim);
  return Sq8Codes(std::move(params), codes, table);
}

void Sq8Rank(const Sq8Codes& codes, std::span<const float* const> queries, int64_t want,
             std::vector<std::vector<ScanHit>>* out, const Sq8ScanOptions& options) {
  std::vector<Best> best = ScanCodes(codes, queries, want, options);
  out->assign(queries.size(), {});
  for (size_t q = 0; q < queries.size(); ++q) {
    std::vector<ScanHit>& hits = (*out)[q];
    for (const auto& [key, row] : best[q].Entries()) hits.push_back(ScanHit{key, row, row});
    std::sort(hits.begin(), hits.end(), [](const ScanHit& a, const ScanHit& b) {
      return a.score != b.score ? a.score < b.score : a.row < b.row;
    });
  }
}

void Sq8TopK(const ScanTable& table, const Sq8Codes& codes, std::span<const float* const> queries, int64_t k,
             std::vector<std::vector<ScanHit>>* out, const Sq8ScanOptions& options) {
  const std::vector<RowRange> ranges = RangesOrAll(options.row_ranges, table.vectors.rows());
  const int64_t rows = RowCount(ranges);
  const int64_t oversample = std::max<int64_t>(options.oversample, 1);
  const int64_t want = k > rows / oversample ? rows : k * oversample;
  std::vector<std::vector<int64_t>> candidates;
  // (With range_queries each query searches only some ranges: the pre-scan then keeps all of a
  // query's rows when they are fewer than `want`.)
  if (want >= rows && options.range_queries.empty()) {
    // Every row is a candidate: no pre-scan needed.
    std::vector<int64_t> all;
    all.reserve(static_cast<size_t>(rows));
    for (const RowRange& r : ranges) {
      for (int64_t i = r.begin; i < r.end; ++i) all.push_back(i);
    }
    candidates.assign(queries.size(), all);
  } else {
    Sq8ScanOptions scan = options;
    scan.row_ranges = ranges;
    Sq8Candidates(codes, queries, want, &candidates, scan);
  }
  // The candidates' kernel distances first (SIMD), then vec0's arithmetic for those that can be hits.
  out->assign(queries.size(), {});
  std::vector<double> fast;
  for (size_t q = 0; q < queries.size(); ++q) {
    const std::vector<int64_t>& rows_q = candidates[q];
    fast.resize(rows_q.size());
    ScoreRows(table, queries[q], rows_q, fast, options.isa);
    std::vector<ScanHit> scored;
    scored.reserve(rows_q.size());
    for (size_t i = 0; i < rows_q.size(); ++i) {
      scored.push_back(ScanHit{fast[i], table.rowids[static_cast<size_t>(rows_q[i])], rows_q[i]});
    }
    Vec0RescoreFast(table, queries[q], std::move(scored), k, options.max_distance, &(*out)[q]);
  }
}

}  // namespace shardvec
