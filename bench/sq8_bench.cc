// The int8 pre-scan against the float scan on the shards of a built snapshot, one thread, in one run:
//   build/sq8_bench --store DIR --queries Q.npy --metric l2|cosine [--probes 1,2] [--oversample 2,4,8,16]
// DIR is a folder store written with quantization "int8". Each query is routed to its nearest
// centroids (vector_meta/…/centroids.npy, the snapshot's own) and scanned shard by shard through
// ShardSearcher, first with the float scan (the pre-scan off), then with the pre-scan at each
// oversample. Reports single-query QPS (one query at a time), batch QPS (each shard scans all its
// queries at once) and recall@k of the pre-scan's answers against the float scan's.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "common/text_util.h"
#include "format/npy.h"
#include "routing/distance.h"
#include "shard/shard_searcher.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<int64_t> ParseList(const std::string& text) {
  std::vector<int64_t> out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    out.push_back(std::stoll(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return out;
}

Matrix LoadNpy(const fs::path& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto m = ParseNpyMatrix(bytes, what);
  if (!m.ok()) throw std::runtime_error(m.status().ToString());
  return *m;
}

using Answer = std::vector<std::vector<int64_t>>;  // per query: (shard << 32 | rowid), best first

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace
}  // namespace shardvec

int main(int argc, char** argv) {
  using namespace shardvec;
  std::map<std::string, std::string> args{{"--probes", "1"}, {"--oversample", "2,4,8,16"}, {"--k", "10"},
                                          {"--max-queries", "1000000"}};
  for (int i = 1; i + 1 < argc; i += 2) args[argv[i]] = argv[i + 1];
  const fs::path store = args["--store"];
  const Metric metric = args["--metric"] == "cosine" ? Metric::kCosine : Metric::kL2;
  const int64_t k = std::stoll(args["--k"]);
  Matrix queries = LoadNpy(args["--queries"], "queries");
  queries.rows = std::min<int64_t>(queries.rows, std::stoll(args["--max-queries"]));
  Matrix centroids;
  std::map<int64_t, fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(store)) {
    const std::string p = e.path().string();
    std::smatch m;
    if (e.path().filename() == "centroids.npy") centroids = LoadNpy(e.path(), "centroids");
    if (std::regex_search(p, m, std::regex("db=(\\d+)/attempt=\\d+/shard\\.db$"))) files[std::stoll(m[1])] = e.path();
  }
  std::vector<std::unique_ptr<ShardSearcher>> shards(static_cast<size_t>(centroids.rows));
  int64_t coded = 0, file_bytes = 0;
  for (const auto& [db, file] : files) {
    auto s = ShardSearcher::Open(file, queries.cols, metric, fmt::format("db {}", db));
    if (!s.ok()) throw std::runtime_error(s.status().ToString());
    coded += (*s)->uses_int8_codes();
    file_bytes += (*s)->file_bytes();
    shards[static_cast<size_t>(db)] = std::move(*s);
  }
  fmt::print("{} shards ({} with int8 codes), {:.1f} MB of shard files, {} queries, k {}\n", files.size(), coded,
             file_bytes / 1e6, queries.rows, k);

  for (const int64_t probes : ParseList(args["--probes"])) {
    // Each query's probed shards: the nearest centroids (the reader's CLUSTER probe order).
    std::vector<std::vector<int64_t>> probed(static_cast<size_t>(queries.rows));
    std::map<int64_t, std::vector<int64_t>> by_shard;
    for (int64_t q = 0; q < queries.rows; ++q) {
      std::vector<std::pair<double, int64_t>> d;
      for (int64_t c = 0; c < centroids.rows; ++c) {
        if (shards[static_cast<size_t>(c)]) d.emplace_back(RoutingDistance(metric, queries.row(q), centroids.row(c), queries.cols), c);
      }
      std::stable_sort(d.begin(), d.end());
      for (int64_t p = 0; p < std::min<int64_t>(probes, static_cast<int64_t>(d.size())); ++p) {
        probed[static_cast<size_t>(q)].push_back(d[static_cast<size_t>(p)].second);
        by_shard[d[static_cast<size_t>(p)].second].push_back(q);
      }
    }
    auto merge = [&](std::vector<std::pair<double, int64_t>>& hits) {
      std::sort(hits.begin(), hits.end());
      std::vector<int64_t> ids;
      for (size_t i = 0; i < hits.size() && static_cast<int64_t>(i) < k; ++i) ids.push_back(hits[i].second);
      return ids;
    };
    auto run = [&](int64_t oversample, Answer* single_answer, double* single_qps, double* batch_qps) {
      for (auto& s : shards) {
        if (s) s->set_rescore_oversample(oversample);
      }
      Answer single(static_cast<size_t>(queries.rows));
      const auto t0 = Clock::now();
      for (int64_t q = 0; q < queries.rows; ++q) {
        std::vector<std::pair<double, int64_t>> hits;
        const float* query = queries.row(q);
        for (const int64_t db : probed[static_cast<size_t>(q)]) {
          auto r = shards[static_cast<size_t>(db)]->Scan(std::span<const float* const>(&query, 1), k);
          for (const ScanHit& h : (*r)[0]) hits.emplace_back(h.score, db << 32 | h.rowid);
        }
        single[static_cast<size_t>(q)] = merge(hits);
      }
      *single_qps = queries.rows / Seconds(Clock::now() - t0);
      std::vector<std::vector<std::pair<double, int64_t>>> batch_hits(static_cast<size_t>(queries.rows));
      const auto t1 = Clock::now();
      for (const auto& [db, qs] : by_shard) {
        std::vector<const float*> ptrs;
        for (const int64_t q : qs) ptrs.push_back(queries.row(q));
        auto r = shards[static_cast<size_t>(db)]->Scan(ptrs, k);
        for (size_t i = 0; i < qs.size(); ++i) {
          for (const ScanHit& h : (*r)[i]) batch_hits[static_cast<size_t>(qs[i])].emplace_back(h.score, db << 32 | h.rowid);
        }
      }
      for (auto& hits : batch_hits) merge(hits);
      *batch_qps = queries.rows / Seconds(Clock::now() - t1);
      *single_answer = std::move(single);
    };
    Answer exact;
    double float_single = 0, float_batch = 0;
    run(int64_t{1} << 40, &exact, &float_single, &float_batch);  // beyond every shard: the float scan
    fmt::print("probes {}: float scan  single {:8.0f} QPS  batch {:8.0f} QPS\n", probes, float_single, float_batch);
    for (const int64_t oversample : ParseList(args["--oversample"])) {
      Answer got;
      double single = 0, batch = 0;
      run(oversample, &got, &single, &batch);
      int64_t found = 0, total = 0;
      for (size_t q = 0; q < got.size(); ++q) {
        const std::set<int64_t> truth(exact[q].begin(), exact[q].end());
        for (const int64_t id : got[q]) found += truth.contains(id);
        total += static_cast<int64_t>(exact[q].size());
      }
      fmt::print("probes {}: oversample {:3d} single {:8.0f} QPS ({:.2f}x)  batch {:8.0f} QPS ({:.2f}x)  recall@{} vs float {:.4f}\n",
                 probes, oversample, single, single / float_single, batch, batch / float_batch, k,
                 total ? static_cast<double>(found) / total : 1.0);
    }
  }
  return 0;
}
