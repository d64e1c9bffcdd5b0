// Uses only the installed public headers: builds a 3-shard snapshot of 60 vectors in the folder
// argv[1] with the vec0.so at argv[2], searches it and prints the nearest id of one stored vector.
#include <cmath>
#include <cstdio>
#include <vector>

#include "shardvec/reader.h"
#include "shardvec/writer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: consumer <store folder> <vec0.so>\n");
    return 2;
  }
  constexpr int kRows = 60, kDim = 4;
  std::vector<shardvec::Record> records;
  for (int i = 0; i < kRows; ++i) {
    shardvec::Record r;
    r.id = static_cast<int64_t>(i);
    for (int d = 0; d < kDim; ++d) r.vector.push_back(static_cast<float>(10 * std::sin(1.3 * i + 0.7 * d)));
    records.push_back(std::move(r));
  }
  const std::vector<float> query = records[17].vector;

  shardvec::WriteConfig config;
  config.store = argv[1];
  config.vec0_path = argv[2];
  config.index.dim = kDim;
  config.index.metric = shardvec::Metric::kL2;
  config.sharding.strategy = shardvec::Strategy::kLsh;
  config.sharding.num_dbs = 3;
  shardvec::VectorRecordSource source(std::move(records));
  auto built = shardvec::WriteSharded(config, source);
  if (!built.ok()) {
    std::fprintf(stderr, "write: %s\n", built.status().ToString().c_str());
    return 1;
  }

  shardvec::ReaderOptions options;
  options.store = argv[1];
  options.vec0_path = argv[2];
  auto reader = shardvec::ShardedVectorReader::Open(options);
  if (!reader.ok()) {
    std::fprintf(stderr, "open: %s\n", reader.status().ToString().c_str());
    return 1;
  }
  shardvec::SearchOptions all_shards;
  all_shards.shard_ids = std::vector<int64_t>{0, 1, 2};
  auto found = (*reader)->Search(query, 1, all_shards);
  if (!found.ok() || found->results.empty()) {
    std::fprintf(stderr, "search: %s\n", found.ok() ? "no results" : found.status().ToString().c_str());
    return 1;
  }
  std::printf("rows=%lld nearest=%s\n", static_cast<long long>(built->total_vectors),
              shardvec::RecordIdToString(found->results[0].id).c_str());
  return 0;
}
