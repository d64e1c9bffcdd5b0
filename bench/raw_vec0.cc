// raw_vec0: the yardsticks bench/suite.py measures shardvec against, without shardvec in the way.
//
//   raw_vec0 build  --npy X.npy --db out.db --metric l2|cosine [--pragmas default|shardvec] [--chunk-size N]
//                   [--metadata M.tsv]
//       Inserts every row of X into one `vec0(embedding float[D] distance_metric=M)` table (chunk_size N
//       when given, else vec0's default), in one transaction. `default` keeps SQLite's defaults (4 KiB pages, rollback journal); `shardvec`
//       sets exactly the pragmas ShardBuilder (src/shard/shard_builder.cc) sets before its schema.
//       --metadata adds vec0 metadata columns: the file's first line declares them, tab-separated
//       "NAME TYPE" (TYPE integer, float, boolean or text), then one tab-separated line of values per
//       row of X, in row order.
//       Prints {"seconds", "vectors_per_s", "bytes", ...} as one JSON line.
//   raw_vec0 search --db out.db --npy queries.npy --k 10 [--limit N] [--out ids.npy] [--where CONDITION]
//       One KNN query at a time on one thread, the connection opened with default settings (no
//       mmap). --where adds `AND CONDITION` to the KNN query (sqlite-vec's metadata filters, e.g.
//       "year < 2000"). Writes the neighbours' rowids as an int64 (N, k) .npy (-1 pads short answers)
//       and prints {"mean_ms", "p50_ms", "p99_ms", "qps", ...}.
//   raw_vec0 floor  --bytes N [--threads T]
//       The memory-bandwidth floor: a plain SIMD sum (AVX-512, else AVX2, else scalar, picked at run
//       time) over N bytes of floats (touched first), best of 5 passes, on 1 thread and on T threads. Prints {"gbps_per_core", "gbps_total", ...}.
//
// Links the engine only for its vec0 loader (EnsureSqliteVecLoaded) and .npy parser.
#include <sys/mman.h>

#include <fmt/format.h>
// GCC 12's AVX-512 reductions build "undefined" vectors from self-initialised locals, which
// -Wuninitialized reports; the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <sqlite3.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "format/npy.h"
#include "shard/sqlite_vec.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "raw_vec0: %s\n", message.c_str());
  std::exit(1);
}

void Usage() {
  std::fprintf(stderr,
               "usage: raw_vec0 build  --npy X.npy --db out.db --metric l2|cosine [--pragmas default|shardvec] [--chunk-size N]\n"
               "                       [--metadata M.tsv]\n"
               "       raw_vec0 search --db out.db --npy queries.npy [--k 10] [--limit N] [--out ids.npy] [--where COND]\n"
               "       raw_vec0 floor  --bytes N [--threads T]\n");
  std::exit(2);
}

// --name value pairs after the mode.
std::map<std::string, std::string> ParseFlags(int argc, char** argv) {
  std::map<std::string, std::string> flags;
  for (int i = 2; i < argc; ++i) {
    std::string name = argv[i];
    if (!name.starts_with("--") || i + 1 >= argc) Usage();
    flags[name.substr(2)] = argv[++i];
  }
  return flags;
}

std::string Flag(const std::map<std::string, std::string>& flags, const std::string& name,
                 const std::string& fallback = "") {
  auto it = flags.find(name);
  if (it != flags.end()) return it->second;
  if (fallback.empty()) Die(fmt::format("--{} is required", name));
  return fallback;
}

int64_t IntFlag(const std::map<std::string, std::string>& flags, const std::string& name, int64_t fallback) {
  auto it = flags.find(name);
  if (it == flags.end()) return fallback;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (end == it->second.c_str() || *end != '\0' || v < 0) Die(fmt::format("--{} must be a count", name));
  return v;
}

shardvec::Matrix LoadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Die(fmt::format("cannot open '{}'", path));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  auto m = shardvec::ParseNpyMatrix(buffer.str(), path);
  if (!m.ok()) Die(m.status().message());
  return std::move(m).value();
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string text = err ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    Die(fmt::format("{}: {}", sql, text));
  }
}

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::vector<std::string> SplitTabs(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1) {
    out.push_back(line.substr(start, tab - start));
  }
  out.push_back(line.substr(start));
  return out;
}

// vec0 metadata columns read from --metadata: names, types and one value per row of each, as text.
struct Metadata {
  std::vector<std::string> names, types;
  std::vector<std::vector<std::string>> rows;
};

Metadata LoadMetadata(const std::string& path, int64_t want_rows) {
  std::ifstream in(path);
  if (!in) Die(fmt::format("cannot open '{}'", path));
  Metadata m;
  std::string line;
  if (!std::getline(in, line)) Die(fmt::format("--metadata '{}' is empty", path));
  for (const std::string& decl : SplitTabs(line)) {
    const size_t space = decl.find(' ');
    const std::string type = space == std::string::npos ? "" : decl.substr(space + 1);
    if (space == 0 || (type != "integer" && type != "float" && type != "boolean" && type != "text")) {
      Die(fmt::format("--metadata '{}': column declaration '{}' is not 'NAME integer|float|boolean|text'", path, decl));
    }
    m.names.push_back(decl.substr(0, space));
    m.types.push_back(type);
  }
  while (std::getline(in, line)) {
    m.rows.push_back(SplitTabs(line));
    if (m.rows.back().size() != m.names.size()) {
      Die(fmt::format("--metadata '{}': line {} has {} values, the header declares {}", path, m.rows.size() + 1,
                      m.rows.back().size(), m.names.size()));
    }
  }
  if (static_cast<int64_t>(m.rows.size()) != want_rows) {
    Die(fmt::format("--metadata '{}' has {} rows of values, --npy has {}", path, m.rows.size(), want_rows));
  }
  return m;
}

// Binds metadata value `value` of a column of `type` to parameter `index`.
void BindMetadata(sqlite3_stmt* stmt, int index, const std::string& type, const std::string& value) {
  if (type == "text") {
    sqlite3_bind_text(stmt, index, value.c_str(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    return;
  }
  char* end = nullptr;
  if (type == "float") {
    const double v = std::strtod(value.c_str(), &end);
    if (end == value.c_str() || *end != '\0') Die(fmt::format("metadata value '{}' is not a float", value));
    sqlite3_bind_double(stmt, index, v);
    return;
  }
  const long long v = std::strtoll(value.c_str(), &end, 10);
  if (end == value.c_str() || *end != '\0') Die(fmt::format("metadata value '{}' is not an integer", value));
  sqlite3_bind_int64(stmt, index, v);
}

int Build(const std::map<std::string, std::string>& flags) {
  const std::string db_path = Flag(flags, "db");
  const std::string metric = Flag(flags, "metric");
  const std::string pragmas = Flag(flags, "pragmas", "default");
  if (metric != "l2" && metric != "cosine") Die("--metric must be l2 or cosine");
  if (pragmas != "default" && pragmas != "shardvec") Die("--pragmas must be default or shardvec");
  const shardvec::Matrix m = LoadNpy(Flag(flags, "npy"));
  const auto metadata_flag = flags.find("metadata");
  const Metadata metadata = metadata_flag == flags.end() ? Metadata{} : LoadMetadata(metadata_flag->second, m.rows);
  if (auto st = shardvec::EnsureSqliteVecLoaded(); !st.ok()) Die(st.message());
  std::filesystem::remove(db_path);

  const auto start = Clock::now();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) != SQLITE_OK) {
    Die(fmt::format("cannot create '{}'", db_path));
  }
  if (pragmas == "shardvec") {
    // Exactly ShardBuilder::Open's pragmas, in its order, before the first table.
    Exec(db, "PRAGMA page_size=65536");
    Exec(db, "PRAGMA journal_mode=OFF");
    Exec(db, "PRAGMA synchronous=OFF");
    Exec(db, "PRAGMA locking_mode=EXCLUSIVE");
    Exec(db, "PRAGMA temp_store=MEMORY");
    Exec(db, "PRAGMA cache_size=-65536");
  }
  const int64_t chunk_size = IntFlag(flags, "chunk-size", 0);  // 0: vec0's default (1024), left unsaid
  const std::string chunk_option = chunk_size > 0 ? fmt::format(", chunk_size={}", chunk_size) : "";
  std::string metadata_columns, metadata_names, metadata_params;
  for (size_t c = 0; c < metadata.names.size(); ++c) {
    metadata_columns += fmt::format(", {} {}", metadata.names[c], metadata.types[c]);
    metadata_names += ", " + metadata.names[c];
    metadata_params += ", ?";
  }
  Exec(db, fmt::format("CREATE VIRTUAL TABLE t USING vec0(embedding float[{}] distance_metric={}{}{})", m.cols, metric,
                       chunk_option, metadata_columns));
  Exec(db, "BEGIN");
  sqlite3_stmt* insert = nullptr;
  const std::string insert_sql =
      fmt::format("INSERT INTO t(rowid, embedding{}) VALUES (?, ?{})", metadata_names, metadata_params);
  if (sqlite3_prepare_v2(db, insert_sql.c_str(), -1, &insert, nullptr) != SQLITE_OK) {
    Die(sqlite3_errmsg(db));
  }
  const int row_bytes = static_cast<int>(m.cols * sizeof(float));
  for (int64_t i = 0; i < m.rows; ++i) {
    sqlite3_bind_int64(insert, 1, i);
    sqlite3_bind_blob(insert, 2, m.row(i), row_bytes, SQLITE_STATIC);
    for (size_t c = 0; c < metadata.names.size(); ++c) {
      BindMetadata(insert, static_cast<int>(c) + 3, metadata.types[c], metadata.rows[static_cast<size_t>(i)][c]);
    }
    if (sqlite3_step(insert) != SQLITE_DONE) Die(fmt::format("insert of row {}: {}", i, sqlite3_errmsg(db)));
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  Exec(db, "COMMIT");
  if (sqlite3_close(db) != SQLITE_OK) Die("close failed");
  const double seconds = Seconds(start, Clock::now());
  const auto bytes = std::filesystem::file_size(db_path);
  std::printf("{\"mode\": \"build\", \"sqlite\": \"%s\", \"pragmas\": \"%s\", \"chunk_size\": %lld, \"rows\": %lld, "
              "\"dim\": %lld, \"seconds\": %.6f, \"vectors_per_s\": %.1f, \"bytes\": %llu}\n",
              sqlite3_libversion(), pragmas.c_str(), static_cast<long long>(chunk_size > 0 ? chunk_size : 1024),
              static_cast<long long>(m.rows), static_cast<long long>(m.cols), seconds,
              static_cast<double>(m.rows) / seconds, static_cast<unsigned long long>(bytes));
  return 0;
}

// np.save's layout for a C-order little-endian int64 (rows, cols) array, version 1.0.
void WriteInt64Npy(const std::string& path, const std::vector<int64_t>& values, int64_t rows, int64_t cols) {
  std::string header = fmt::format("{{'descr': '<i8', 'fortran_order': False, 'shape': ({}, {}), }}", rows, cols);
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  const uint16_t header_len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(header_len & 0xff));
  out.put(static_cast<char>(header_len >> 8));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * 8));
  if (!out) Die(fmt::format("cannot write '{}'", path));
}

int Search(const std::map<std::string, std::string>& flags) {
  const std::string db_path = Flag(flags, "db");
  const int64_t k = IntFlag(flags, "k", 10);
  const shardvec::Matrix q = LoadNpy(Flag(flags, "npy"));
  const int64_t n = std::min<int64_t>(q.rows, IntFlag(flags, "limit", q.rows));
  if (n == 0 || k == 0) Die("nothing to search");
  if (auto st = shardvec::EnsureSqliteVecLoaded(); !st.ok()) Die(st.message());
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    Die(fmt::format("cannot open '{}'", db_path));
  }
  sqlite3_stmt* knn = nullptr;
  const auto where = flags.find("where");
  const std::string knn_sql = "SELECT rowid, distance FROM t WHERE embedding MATCH ? AND k = ?" +
                              (where == flags.end() ? std::string() : " AND " + where->second);
  if (sqlite3_prepare_v2(db, knn_sql.c_str(), -1, &knn, nullptr) != SQLITE_OK) {
    Die(fmt::format("{}: {}", knn_sql, sqlite3_errmsg(db)));
  }
  const int row_bytes = static_cast<int>(q.cols * sizeof(float));
  std::vector<int64_t> ids(static_cast<size_t>(n * k), -1);
  auto run = [&](int64_t i, bool keep) {
    sqlite3_bind_blob(knn, 1, q.row(i), row_bytes, SQLITE_STATIC);
    sqlite3_bind_int64(knn, 2, k);
    int64_t j = 0;
    int rc;
    while ((rc = sqlite3_step(knn)) == SQLITE_ROW) {
      if (keep && j < k) ids[static_cast<size_t>(i * k + j)] = sqlite3_column_int64(knn, 0);
      ++j;
    }
    if (rc != SQLITE_DONE) Die(fmt::format("query {}: {}", i, sqlite3_errmsg(db)));
    sqlite3_reset(knn);
  };
  run(0, false);  // warm-up: the first query pays for opening the table
  std::vector<double> ms(static_cast<size_t>(n));
  const auto all = Clock::now();
  for (int64_t i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    run(i, true);
    ms[static_cast<size_t>(i)] = Seconds(t0, Clock::now()) * 1e3;
  }
  const double total = Seconds(all, Clock::now());
  sqlite3_finalize(knn);
  sqlite3_close(db);
  if (auto it = flags.find("out"); it != flags.end()) WriteInt64Npy(it->second, ids, n, k);
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {  // nearest-rank percentile
    const size_t idx = static_cast<size_t>(std::max(0.0, std::ceil(p / 100.0 * static_cast<double>(n)) - 1));
    return sorted[std::min(idx, sorted.size() - 1)];
  };
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(n);
  std::printf("{\"mode\": \"search\", \"queries\": %lld, \"k\": %lld, \"mean_ms\": %.4f, \"p50_ms\": %.4f, "
              "\"p99_ms\": %.4f, \"qps\": %.3f, \"seconds\": %.6f}\n",
              static_cast<long long>(n), static_cast<long long>(k), mean, pct(50), pct(99),
              static_cast<double>(n) / total, total);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// The floor: how fast one core (and all of them) can stream the same number of bytes.

__attribute__((target("avx2"))) float SumAvx2(const float* p, size_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float total = 0;
  for (float v : lanes) total += v;
  for (; i < n; ++i) total += p[i];
  return total;
}

__attribute__((target("avx512f"))) float SumAvx512(const float* p, size_t n) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
    a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
    a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
  }
  float total = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  for (; i < n; ++i) total += p[i];
  return total;
}

float SumScalar(const float* p, size_t n) {
  float a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
  }
  for (; i < n; ++i) a0 += p[i];
  return a0 + a1 + a2 + a3;
}

enum class Simd { kScalar, kAvx2, kAvx512 };

float Sum(Simd simd, const float* p, size_t n) {
  switch (simd) {
    case Simd::kAvx512: return SumAvx512(p, n);
    case Simd::kAvx2: return SumAvx2(p, n);
    case Simd::kScalar: break;
  }
  return SumScalar(p, n);
}

// Best of `passes` wall times for `threads` threads each summing its slice of `data`: from the first
// thread's start to the last thread's end, as each thread timestamps itself.
double BestSeconds(const float* data, size_t n, int threads, Simd simd, int passes, double* sink) {
  double best = 1e300;
  for (int pass = 0; pass < passes; ++pass) {
    std::barrier start(threads);
    std::vector<float> sums(static_cast<size_t>(threads));
    std::vector<Clock::time_point> began(static_cast<size_t>(threads)), ended(static_cast<size_t>(threads));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        // Slices aligned to 64 bytes so the aligned loads stay aligned.
        const size_t per = (n / static_cast<size_t>(threads)) & ~size_t{15};
        const size_t lo = per * static_cast<size_t>(t);
        const size_t hi = t + 1 == threads ? n : lo + per;
        start.arrive_and_wait();
        began[static_cast<size_t>(t)] = Clock::now();
        sums[static_cast<size_t>(t)] = Sum(simd, data + lo, hi - lo);
        ended[static_cast<size_t>(t)] = Clock::now();
      });
    }
    for (auto& w : workers) w.join();
    for (float v : sums) *sink += v;
    best = std::min(best, Seconds(*std::min_element(began.begin(), began.end()),
                                  *std::max_element(ended.begin(), ended.end())));
  }
  return best;
}

int Floor(const std::map<std::string, std::string>& flags) {
  const int64_t bytes = IntFlag(flags, "bytes", 0);
  const int threads = static_cast<int>(
      IntFlag(flags, "threads", std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()))));
  if (bytes < 1024 || threads < 1) Die("--bytes must be >= 1024 and --threads >= 1");
  const size_t n = static_cast<size_t>(bytes) / sizeof(float);
  // Allocated as the reader's in-memory shard vectors are: 2 MiB aligned, transparent huge pages.
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t size = (n * sizeof(float) + kHuge - 1) / kHuge * kHuge;
  std::unique_ptr<float, decltype(&std::free)> data(static_cast<float*>(std::aligned_alloc(kHuge, size)), &std::free);
  if (!data) Die("out of memory");
  madvise(data.get(), size, MADV_HUGEPAGE);
  for (size_t i = 0; i < n; ++i) data.get()[i] = static_cast<float>(i & 1023) * 1e-3f;  // touch every page
  // The widest plain SIMD read this CPU has: the engine's scan kernel picks the same way.
  __builtin_cpu_init();
  const Simd simd = __builtin_cpu_supports("avx512f") ? Simd::kAvx512
                    : __builtin_cpu_supports("avx2")  ? Simd::kAvx2
                                                      : Simd::kScalar;
  const char* simd_name = simd == Simd::kAvx512 ? "avx512" : simd == Simd::kAvx2 ? "avx2" : "scalar";
  double sink = 0;
  const double one = BestSeconds(data.get(), n, 1, simd, 5, &sink);
  const double all = BestSeconds(data.get(), n, threads, simd, 5, &sink);
  const double used = static_cast<double>(n * sizeof(float));
  std::printf("{\"mode\": \"floor\", \"bytes\": %.0f, \"threads\": %d, \"simd\": \"%s\", \"gbps_per_core\": %.3f, "
              "\"gbps_total\": %.3f, \"seconds_1_thread\": %.6f, \"seconds_all_threads\": %.6f, \"checksum\": %.1f}\n",
              used, threads, simd_name, used / one / 1e9, used / all / 1e9, one, all, sink);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) Usage();
  const std::string mode = argv[1];
  const auto flags = ParseFlags(argc, argv);
  if (mode == "build") return Build(flags);
  if (mode == "search") return Search(flags);
  if (mode == "floor") return Floor(flags);
  Usage();
}
