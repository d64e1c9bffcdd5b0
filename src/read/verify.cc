// VerifySnapshot: the manifest and its routing as the reader loads them, then every shard checked on
// a thread pool: a HEAD for presence and size, and for the shards whose contents are read, the digest
// over ranged reads (nothing is written locally) and the schema and row counts through SQLite reading
// the object in place.
#include "shardvec/verify.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <random>

#include "common/digest.h"
#include "common/status_macros.h"
#include "common/thread_pool.h"
#include "read/snapshot_loader.h"
#include "shard/ranged_object_vfs.h"
#include "shard/shard_searcher.h"
#include "snapshot/history.h"

namespace shardvec {
namespace {

// Bytes per ranged read while digesting a shard.
constexpr int64_t kDigestChunkBytes = int64_t{8} << 20;
// Pages of a shard SQLite keeps while the schema and row counts are read.
constexpr int64_t kSchemaPageCachePages = 256;

struct ShardCheck {
  const ShardLocation* loc = nullptr;
  int64_t expected_rows = 0;
  bool read_contents = false;
};

struct ShardOutcome {
  std::vector<VerifyProblem> problems;
  int64_t bytes_read = 0;
  bool contents_read = false;  // every byte digested
  bool digest_absent = false;
};

class ShardVerifier {
 public:
  ShardVerifier(std::shared_ptr<ObjectStore> store, const LoadedSnapshot& s, bool schema_known)
      : store_(std::move(store)), s_(s), schema_known_(schema_known) {}

  ShardOutcome Check(const ShardCheck& c) const {
    ShardOutcome out;
    const ShardLocation& loc = *c.loc;
    const std::string url = store_->Url(loc.key);
    auto problem = [&](std::string check, std::string message) {
      out.problems.push_back(VerifyProblem{std::move(check), loc.db_id, url, std::move(message)});
      return out;
    };
    Result<ObjectInfo> head = store_->Head(loc.key);
    if (!head.ok() && head.status().code() == StatusCode::kNotFound) {
      return problem("missing", fmt::format("shard {} is missing: '{}' does not exist", loc.db_id, url));
    }
    if (!head.ok()) return problem("read", fmt::format("shard {}: {}", loc.db_id, head.status().message()));
    if (head->size != loc.size) {
      return problem("size", fmt::format("shard {} has {} bytes in '{}', the manifest records {}", loc.db_id,
                                         head->size, url, loc.size));
    }
    if (!c.read_contents) return out;
    std::string first_page;
    Result<std::string> digest = Digest(loc, &first_page, &out.bytes_read);
    if (!digest.ok()) return problem("read", fmt::format("shard {}: {}", loc.db_id, digest.status().message()));
    out.contents_read = true;
    if (!loc.digest) {
      out.digest_absent = true;
    } else if (*digest != *loc.digest) {
      // Nothing more is learnt from bytes known to be wrong.
      return problem("digest", fmt::format("shard {} has digest {} in '{}', the manifest records {}", loc.db_id,
                                           *digest, url, *loc.digest));
    }
    if (!schema_known_) return out;
    Result<ShardRowCounts> rows = SchemaAndRows(loc, first_page);
    if (!rows.ok()) {
      const bool damaged = rows.status().code() == StatusCode::kCorruption;
      return problem(damaged ? "schema" : "read", fmt::format("shard {} in '{}': {}", loc.db_id, url,
                                                              rows.status().message()));
    }
    if (rows->vectors != c.expected_rows) {
      problem("row_count", fmt::format("shard {} holds {} vectors in vec_index ('{}'), the manifest records {}",
                                       loc.db_id, rows->vectors, url, c.expected_rows));
    }
    if (rows->ids != c.expected_rows) {
      problem("row_count", fmt::format("shard {} holds {} ids in vec_id_map ('{}'), the manifest records {}",
                                       loc.db_id, rows->ids, url, c.expected_rows));
    }
    return out;
  }

 private:
  // The digest of every byte of the shard, read in ranges; `first_page` receives its first
  // kMaxSqlitePageBytes (or all of it, when smaller).
  Result<std::string> Digest(const ShardLocation& loc, std::string* first_page, int64_t* bytes_read) const {
    Xxh3Stream stream;
    for (int64_t offset = 0; offset < loc.size; offset += kDigestChunkBytes) {
      const int64_t length = std::min(kDigestChunkBytes, loc.size - offset);
      ASSIGN_OR_RETURN(std::string chunk, store_->GetRange(loc.key, offset, length));
      if (static_cast<int64_t>(chunk.size()) != length) {
        return Status::Corruption(fmt::format("'{}' answered {} bytes at offset {}, expected {}", store_->Url(loc.key),
                                              chunk.size(), offset, length));
      }
      if (offset == 0) *first_page = chunk.substr(0, static_cast<size_t>(kMaxSqlitePageBytes));
      stream.Update(chunk);
      *bytes_read += length;
    }
    return stream.Digest();
  }

  // Opens the shard as the reader's range tier does (its schema checked against the snapshot's dim
  // and metric) and counts its rows.
  Result<ShardRowCounts> SchemaAndRows(const ShardLocation& loc, const std::string& first_page) const {
    const std::string name = std::to_string(loc.db_id);
    ASSIGN_OR_RETURN(std::shared_ptr<RangedObject> object,
                     MakeSqliteRangedObject(store_, loc.key, loc.size, first_page, name, kSchemaPageCachePages,
                                            nullptr, nullptr));
    ASSIGN_OR_RETURN(std::unique_ptr<ShardSearcher> searcher,
                     ShardSearcher::OpenRanged(std::move(object), s_.dim, s_.metric, name, 1, ScanPath::kVec0Knn));
    return searcher->CountRows();
  }

  std::shared_ptr<ObjectStore> store_;
  const LoadedSnapshot& s_;
  bool schema_known_;
};

Status CheckOptions(const ObjectStore* store, const VerifyOptions& o) {
  if (store == nullptr) return Status::InvalidArgument("VerifySnapshot needs a store (got none)");
  if (o.sample && *o.sample < 1) {
    return Status::InvalidArgument(fmt::format("sample must be >= 1 shard (got {})", *o.sample));
  }
  return CheckThreadCount("max_workers", o.max_workers);
}

Result<ManifestRef> ChosenManifest(ObjectStore& store, ManifestStore& manifests, const VerifyOptions& o) {
  if (!o.snapshot) return LoadCurrentRef(manifests);
  ASSIGN_OR_RETURN(ManifestEntry entry,
                   o.manifest_store ? FindManifest(manifests, *o.snapshot) : FindManifest(store, *o.snapshot));
  return ManifestRef{entry.ref, entry.run_id, entry.published_at};
}

// The shards to check, in db_id order, with the ones whose contents are read marked.
std::vector<ShardCheck> PlanChecks(const LoadedSnapshot& s, const VerifyOptions& o, VerifyReport& report) {
  std::map<int64_t, int64_t> rows;
  for (const ManifestShard& shard : s.manifest.shards) rows[shard.db_id] = shard.row_count;
  std::vector<ShardCheck> checks;
  for (const auto& [db_id, loc] : s.shards) checks.push_back(ShardCheck{&loc, rows[db_id], !o.sample});
  if (o.sample) {
    report.seed = o.seed.value_or(std::random_device{}());
    std::vector<size_t> order(checks.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937_64 rng(report.seed);
    std::shuffle(order.begin(), order.end(), rng);
    order.resize(std::min(order.size(), static_cast<size_t>(*o.sample)));
    std::sort(order.begin(), order.end());
    for (size_t i : order) {
      checks[i].read_contents = true;
      report.sampled.push_back(checks[i].loc->db_id);
    }
  }
  return checks;
}

// The manifest's own problems: shards with rows but nowhere to read them, then where the shards
// live, then custom.vector and the routing. Whether the shards' schema can be checked (dim and
// metric known) comes back; `shards_usable` says whether the shard locations are.
bool CheckManifest(ObjectStore& store, LoadedSnapshot& s, VerifyReport& report, bool* shards_usable) {
  for (const ManifestShard& shard : s.manifest.shards) {
    if (!shard.db_url && shard.row_count > 0) {
      report.problems.push_back({"manifest", shard.db_id, s.manifest_ref,
                                 fmt::format("shard {} records {} rows but no db_url", shard.db_id, shard.row_count)});
    }
  }
  Status located = ApplyShards(store, s);
  *shards_usable = located.ok();
  if (!located.ok()) report.problems.push_back({"manifest", std::nullopt, s.manifest_ref, located.message()});
  Status vector = ApplyVectorMetadata(store, s);
  // routing.dim is set once custom.vector's fields parsed: a failure after it is the routing's.
  const bool fields_known = s.routing.dim > 0;
  if (!vector.ok()) {
    report.problems.push_back({fields_known ? "routing" : "manifest", std::nullopt, s.manifest_ref, vector.message()});
  }
  return fields_known;
}

}  // namespace

Result<VerifyReport> VerifySnapshot(std::shared_ptr<ObjectStore> store, const VerifyOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(CheckOptions(store.get(), options));
  std::shared_ptr<ManifestStore> manifests = options.manifest_store;
  if (!manifests) manifests = MakeObjectManifestStore(store);
  ASSIGN_OR_RETURN(ManifestRef ref, ChosenManifest(*store, *manifests, options));
  VerifyReport report;
  report.manifest_ref = ref.ref;
  report.run_id = ref.run_id;
  auto finish = [&]() {
    report.elapsed_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return report;
  };
  Result<std::unique_ptr<LoadedSnapshot>> loaded = LoadManifestOnly(*manifests, ref);
  if (!loaded.ok() && loaded.status().code() != StatusCode::kCorruption) return loaded.status();
  if (!loaded.ok()) {
    report.problems.push_back({"manifest", std::nullopt, ref.ref, loaded.status().message()});
    return finish();
  }
  LoadedSnapshot& s = **loaded;
  report.run_id = s.run_id;
  report.num_dbs = s.manifest.num_dbs;
  bool shards_usable = false;
  const bool schema_known = CheckManifest(*store, s, report, &shards_usable);
  if (!shards_usable) return finish();

  const std::vector<ShardCheck> checks = PlanChecks(s, options, report);
  const ShardVerifier verifier(store, s, schema_known);
  const size_t threads = std::min(ThreadPool::DefaultSize(options.max_workers), std::max<size_t>(1, checks.size()));
  std::vector<std::future<ShardOutcome>> futures;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool, ThreadPool::Create(threads, "shard checks (max_workers)"));
    for (const ShardCheck& check : checks) {
      futures.push_back(pool->Submit([&verifier, check] { return verifier.Check(check); }));
    }
    const auto total = static_cast<int64_t>(futures.size());
    for (size_t i = 0; i < futures.size(); ++i) {
      futures[i].wait();
      if (options.on_progress) options.on_progress(static_cast<int64_t>(i) + 1, total);
    }
  }
  for (size_t i = 0; i < futures.size(); ++i) {
    ShardOutcome outcome = futures[i].get();
    ++report.shards_checked;
    if (outcome.contents_read) ++report.shards_read;
    if (outcome.digest_absent) ++report.digests_absent;
    report.bytes_read += outcome.bytes_read;
    for (VerifyProblem& p : outcome.problems) report.problems.push_back(std::move(p));
  }
  return finish();
}

}  // namespace shardvec
