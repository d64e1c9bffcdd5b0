#include "support/relocation_support.h"

#include <gtest/gtest.h>

#include <functional>
#include <span>

#include "format/current_pointer.h"
#include "format/manifest.h"
#include "shardvec/reader.h"
#include "shardvec/records.h"
#include "shardvec/writer.h"
#include "snapshot/history.h"
#include "support/test_util.h"

namespace shardvec::testing {

std::shared_ptr<ObjectStore> OpenFolderStore(const std::filesystem::path& folder) {
  auto store = OpenStore(folder.string());
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? *store : nullptr;
}

Matrix RelocationData(const std::string& run_id) {
  return ClusteredMatrix(240, kRelocationDim, kRelocationDbs, std::hash<std::string>{}(run_id) % 1000);
}

void WriteRelocationRun(const std::shared_ptr<ObjectStore>& store, const std::string& run_id,
                        const std::filesystem::path& build_root) {
  WriteConfig c;
  c.store = store->PrefixUrl();
  c.run_id = run_id;
  c.local_root = build_root.string();
  c.index.dim = kRelocationDim;
  c.index.metric = Metric::kL2;
  c.sharding.strategy = Strategy::kCluster;
  c.sharding.num_dbs = kRelocationDbs;
  c.sharding.train_centroids = true;
  VectorRecordSource source(MakeRecords(RelocationData(run_id), false));
  auto built = WriteSharded(c, source, store);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
}

Answers SearchAnswers(const std::shared_ptr<ObjectStore>& store, const std::filesystem::path& cache_dir) {
  ReaderOptions o;
  o.store = store->PrefixUrl();
  o.cache_dir = cache_dir.string();
  o.max_fallback_attempts = 0;
  auto reader = ShardedVectorReader::Open(o, store);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return {};
  const Matrix queries = RandomMatrix(6, kRelocationDim, 77);
  SearchOptions all;
  all.num_probes = kRelocationDbs;
  Answers out;
  for (int64_t q = 0; q < queries.rows; ++q) {
    auto r = (*reader)->Search(std::span<const float>(queries.row(q), kRelocationDim), 7, all);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return {};
    out.emplace_back();
    for (const SearchHit& hit : r->results) out.back().emplace_back(hit.id, hit.score);
  }
  return out;
}

void UploadFolder(const std::filesystem::path& folder, ObjectStore& store) {
  for (const std::string& key : ListFiles(folder)) {
    Status put = store.Put(key, ReadText(folder / key));
    ASSERT_TRUE(put.ok()) << key << ": " << put.ToString();
  }
}

std::vector<std::string> ManifestKeys(ObjectStore& store) {
  auto listed = ListManifests(store, 0);
  EXPECT_TRUE(listed.ok()) << listed.status().ToString();
  std::vector<std::string> keys;
  if (listed.ok()) {
    for (auto it = listed->rbegin(); it != listed->rend(); ++it) keys.push_back(it->key);
  }
  return keys;
}

std::vector<std::string> SnapshotUrls(ObjectStore& store) {
  std::vector<std::string> urls;
  for (const std::string& key : ManifestKeys(store)) {
    auto bytes = store.Get(key);
    EXPECT_TRUE(bytes.ok()) << key;
    if (!bytes.ok()) continue;
    auto manifest = ParseManifest(*bytes);
    EXPECT_TRUE(manifest.ok()) << key << ": " << manifest.status().ToString();
    if (!manifest.ok()) continue;
    urls.push_back(manifest->s3_prefix);
    for (const ManifestShard& shard : manifest->shards) {
      if (shard.db_url) urls.push_back(*shard.db_url);
    }
    const nlohmann::json& vector = manifest->custom["vector"];
    for (const char* field : {"centroids_ref", "hyperplanes_ref"}) {
      if (vector.contains(field)) urls.push_back(vector[field].get<std::string>());
    }
  }
  auto pointer = store.Get("_CURRENT");
  if (pointer.ok()) {
    auto parsed = ParseCurrentPointer(*pointer);
    EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
    if (parsed.ok()) urls.push_back(parsed->manifest_ref);
  }
  return urls;
}

}  // namespace shardvec::testing
