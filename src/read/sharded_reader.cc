// ShardedVectorReader: one immutable snapshot (manifest + routing + its own shard cache) held by a
// shared_ptr. A search copies the pointer, so Refresh() can swap in a new snapshot at any time and
// the old one's shards close when the last search using them finishes.
#include "shardvec/reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>

#include "common/digest.h"
#include "common/status_macros.h"
#include "common/thread_pool.h"
#include "common/vector_check.h"
#include "common/time_util.h"
#include "read/merge.h"
#include "read/shard_cache.h"
#include "read/snapshot_loader.h"
#include "shard/shard_searcher.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

struct Snapshot {
  std::unique_ptr<LoadedSnapshot> loaded;
  std::shared_ptr<ShardCache> cache;
};

Status CheckQuery(const LoadedSnapshot& s, std::span<const float> query) {
  if (static_cast<int64_t>(query.size()) != s.dim) {
    return Status::InvalidArgument(
        fmt::format("query has {} values, but the snapshot's dim is {}", query.size(), s.dim));
  }
  return CheckVectorValues(query, s.metric, "query");
}

Status CheckTopK(int64_t top_k) {
  if (top_k < 1 || top_k > kMaxKnnK) {
    return Status::InvalidArgument(fmt::format("top_k must be in 1..{} (got {})", kMaxKnnK, top_k));
  }
  return Status::OK();
}

// The shard list a query searches: the override (de-duplicated, range-checked) or the router's probes.
Result<std::vector<int64_t>> Targets(const LoadedSnapshot& s, std::span<const float> query,
                                     const SearchOptions& options) {
  if (options.shard_ids) {
    std::vector<int64_t> out;
    std::set<int64_t> seen;
    for (int64_t id : *options.shard_ids) {
      if (id < 0 || id >= s.num_dbs) {
        return Status::InvalidArgument(fmt::format("shard_ids contains {}, outside [0, {})", id, s.num_dbs));
      }
      if (seen.insert(id).second) out.push_back(id);
    }
    return out;
  }
  const int64_t probes = options.num_probes.value_or(s.num_probes);
  if (probes < 1) return Status::InvalidArgument(fmt::format("num_probes must be >= 1 (got {})", probes));
  if (s.router->RoutesByContext()) {
    const RoutingContext* context = options.routing_context ? &*options.routing_context : nullptr;
    ASSIGN_OR_RETURN(const int64_t shard, s.router->ProbeContext(context));
    return std::vector<int64_t>{shard};
  }
  return s.router->Probe(query.data(), probes);
}

SearchHit ToHit(ShardHit&& h) { return SearchHit{std::move(h.id), h.score, std::move(h.payload_json)}; }

}  // namespace

class ShardedVectorReader::Impl {
 public:
  Impl(ReaderOptions options, std::shared_ptr<ObjectStore> store)
      : options_(std::move(options)), store_(std::move(store)),
        pool_(ThreadPool::DefaultSize(options_.max_workers)) {
    cache_root_ = options_.cache_dir.empty()
                      ? fs::temp_directory_path() / "shardvec-cache" /
                            Xxh3Digest(store_->PrefixUrl()).substr(5)
                      : fs::path(options_.cache_dir);
  }

  Status Load() {
    ASSIGN_OR_RETURN(std::unique_ptr<LoadedSnapshot> loaded,
                     LoadCurrentSnapshot(*store_, options_.max_fallback_attempts));
    auto snapshot = MakeSnapshot(std::move(loaded));
    if (options_.preload_shards) RETURN_IF_ERROR(Preload(*snapshot));
    std::lock_guard<std::mutex> lock(mu_);
    current_ = std::move(snapshot);
    return Status::OK();
  }

  Result<bool> Refresh() {
    std::lock_guard<std::mutex> refresh_lock(refresh_mu_);
    ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> now, Current());
    ASSIGN_OR_RETURN(CurrentPointer pointer, LoadCurrentPointer(*store_));
    if (pointer.manifest_ref == now->loaded->manifest_ref) return false;
    ASSIGN_OR_RETURN(std::unique_ptr<LoadedSnapshot> loaded,
                     LoadSnapshot(*store_, pointer.manifest_ref, pointer.run_id, pointer.updated_at));
    auto snapshot = MakeSnapshot(std::move(loaded));
    if (options_.preload_shards) RETURN_IF_ERROR(Preload(*snapshot));
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return Status::InvalidArgument("reader is closed");
    current_ = std::move(snapshot);  // the old snapshot lives on while searches hold it
    return true;
  }

  Result<SearchResponse> Search(std::span<const float> query, int64_t top_k, const SearchOptions& options,
                                bool fan_out) {
    const auto t0 = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snap, Current());
    const LoadedSnapshot& s = *snap->loaded;
    RETURN_IF_ERROR(CheckTopK(top_k));
    RETURN_IF_ERROR(CheckQuery(s, query));
    ASSIGN_OR_RETURN(std::vector<int64_t> targets, Targets(s, query, options));
    std::vector<const ShardLocation*> shards;
    for (int64_t id : targets) {
      auto it = s.shards.find(id);
      if (it != s.shards.end()) shards.push_back(&it->second);
    }
    std::vector<std::vector<ShardHit>> per_shard(shards.size());
    if (fan_out && shards.size() > 1) {
      std::vector<std::future<Status>> futures;
      for (size_t i = 0; i < shards.size(); ++i) {
        futures.push_back(pool_.Submit([&, i] { return SearchShard(*snap, *shards[i], query, top_k, &per_shard[i]); }));
      }
      Status first;
      for (auto& f : futures) {
        Status st = f.get();
        if (first.ok() && !st.ok()) first = st;
      }
      RETURN_IF_ERROR(first);
    } else {
      for (size_t i = 0; i < shards.size(); ++i) {
        RETURN_IF_ERROR(SearchShard(*snap, *shards[i], query, top_k, &per_shard[i]));
      }
    }
    SearchResponse response;
    for (ShardHit& h : MergeTopK(std::move(per_shard), top_k)) response.results.push_back(ToHit(std::move(h)));
    response.num_shards_queried = static_cast<int64_t>(shards.size());
    response.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return response;
  }

  Result<std::vector<SearchResponse>> BatchSearch(const Matrix& queries, int64_t top_k,
                                                  const SearchOptions& options) {
    ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snap, Current());
    if (queries.cols != snap->loaded->dim) {
      return Status::InvalidArgument(fmt::format("queries have {} columns, but the snapshot's dim is {}",
                                                 queries.cols, snap->loaded->dim));
    }
    // One task per query, each scanning its shards in turn: parallel across queries without
    // nesting pool tasks (which could deadlock a bounded pool).
    std::vector<std::future<Result<SearchResponse>>> futures;
    futures.reserve(static_cast<size_t>(queries.rows));
    for (int64_t i = 0; i < queries.rows; ++i) {
      futures.push_back(pool_.Submit([&, i] {
        return Search(std::span<const float>(queries.row(i), static_cast<size_t>(queries.cols)), top_k,
                      options, /*fan_out=*/false);
      }));
    }
    std::vector<SearchResponse> out;
    Status first;
    for (int64_t i = 0; i < queries.rows; ++i) {
      auto r = futures[static_cast<size_t>(i)].get();
      if (!r.ok()) {
        if (first.ok()) first = r.status().WithContext(fmt::format("query row {}", i));
        continue;
      }
      out.push_back(std::move(r).value());
    }
    RETURN_IF_ERROR(first);
    return out;
  }

  Result<std::vector<int64_t>> Route(std::span<const float> query, std::optional<int64_t> num_probes,
                                     const std::optional<RoutingContext>& routing_context) {
    ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snap, Current());
    RETURN_IF_ERROR(CheckQuery(*snap->loaded, query));
    SearchOptions options;
    options.num_probes = num_probes;
    options.routing_context = routing_context;
    return Targets(*snap->loaded, query, options);
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    current_.reset();  // shards close as in-flight searches release them
  }

  std::shared_ptr<const Snapshot> Peek() const {
    std::lock_guard<std::mutex> lock(mu_);
    return current_;
  }
  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  Result<std::shared_ptr<const Snapshot>> Current() const {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || !current_) return Status::InvalidArgument("reader is closed");
    return current_;
  }

  std::shared_ptr<const Snapshot> MakeSnapshot(std::unique_ptr<LoadedSnapshot> loaded) {
    auto snapshot = std::make_shared<Snapshot>();
    snapshot->cache = std::make_shared<ShardCache>(store_, cache_root_, loaded->dim, loaded->metric,
                                                   options_.max_cached_shards);
    snapshot->loaded = std::move(loaded);
    return snapshot;
  }

  Status Preload(const Snapshot& snap) {
    for (const auto& [id, loc] : snap.loaded->shards) {
      ASSIGN_OR_RETURN(ShardLease lease, snap.cache->Acquire(loc));
      (void)lease;
    }
    return Status::OK();
  }

  static Status SearchShard(const Snapshot& snap, const ShardLocation& loc, std::span<const float> query,
                            int64_t top_k, std::vector<ShardHit>* out) {
    ASSIGN_OR_RETURN(ShardLease lease, snap.cache->Acquire(loc));
    ASSIGN_OR_RETURN(*out, lease.searcher().Search(query.data(), top_k));
    return Status::OK();
  }

  ReaderOptions options_;
  std::shared_ptr<ObjectStore> store_;
  fs::path cache_root_;
  ThreadPool pool_;
  mutable std::mutex mu_;
  std::mutex refresh_mu_;
  std::shared_ptr<const Snapshot> current_;
  bool closed_ = false;
};

ShardedVectorReader::ShardedVectorReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShardedVectorReader::~ShardedVectorReader() = default;

Result<std::unique_ptr<ShardedVectorReader>> ShardedVectorReader::Open(const ReaderOptions& options,
                                                                     std::shared_ptr<ObjectStore> store) {
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(options.store, options.store_options));
  }
  if (options.max_fallback_attempts < 0) {
    return Status::InvalidArgument(fmt::format("max_fallback_attempts must be >= 0 (got {})", options.max_fallback_attempts));
  }
  auto impl = std::make_unique<Impl>(options, std::move(store));
  RETURN_IF_ERROR(impl->Load());
  return std::unique_ptr<ShardedVectorReader>(new ShardedVectorReader(std::move(impl)));
}

Result<SearchResponse> ShardedVectorReader::Search(std::span<const float> query, int64_t top_k,
                                                   const SearchOptions& options) {
  return impl_->Search(query, top_k, options, /*fan_out=*/true);
}

Result<std::vector<SearchResponse>> ShardedVectorReader::BatchSearch(const Matrix& queries, int64_t top_k,
                                                                     const SearchOptions& options) {
  return impl_->BatchSearch(queries, top_k, options);
}

Result<std::vector<int64_t>> ShardedVectorReader::Route(std::span<const float> query,
                                                        std::optional<int64_t> num_probes,
                                                        const std::optional<RoutingContext>& routing_context) {
  return impl_->Route(query, num_probes, routing_context);
}

Result<bool> ShardedVectorReader::Refresh() { return impl_->Refresh(); }
void ShardedVectorReader::Close() { impl_->Close(); }

SnapshotInfo ShardedVectorReader::Info() const {
  SnapshotInfo info;
  auto snap = impl_->Peek();
  if (!snap) return info;
  const LoadedSnapshot& s = *snap->loaded;
  info.run_id = s.run_id;
  info.num_dbs = s.num_dbs;
  info.dim = s.dim;
  info.metric = s.metric;
  info.strategy = s.strategy;
  info.num_probes = s.num_probes;
  info.manifest_ref = s.manifest_ref;
  for (const auto& shard : s.manifest.shards) info.total_vectors += shard.row_count;
  info.created_at = s.manifest.created_at;
  info.published_at = s.published_at;
  info.cel_expr = s.routing.cel_expr;
  info.cel_columns = s.routing.cel_columns;
  info.routing_values = s.routing.routing_values;
  return info;
}

std::vector<ShardDetail> ShardedVectorReader::ShardDetails() const {
  std::vector<ShardDetail> out;
  auto snap = impl_->Peek();
  if (!snap) return out;
  const LoadedSnapshot& s = *snap->loaded;
  for (int64_t id = 0; id < s.num_dbs; ++id) out.push_back(ShardDetail{id, std::nullopt, 0, 0, std::nullopt, std::nullopt});
  for (const auto& shard : s.manifest.shards) {
    ShardDetail& d = out[static_cast<size_t>(shard.db_id)];
    d.db_url = shard.db_url;
    d.vector_count = shard.row_count;
    d.db_bytes = shard.db_bytes;
    d.checkpoint_id = shard.checkpoint_id;
    auto it = s.shards.find(shard.db_id);
    if (it != s.shards.end()) d.digest = it->second.digest;
  }
  return out;
}

ReaderHealth ShardedVectorReader::Health(std::optional<std::chrono::seconds> staleness) const {
  ReaderHealth h;
  auto snap = impl_->Peek();
  if (impl_->closed() || !snap) {
    h.status = "unhealthy";
    h.is_closed = true;
    return h;
  }
  const LoadedSnapshot& s = *snap->loaded;
  h.manifest_ref = s.manifest_ref;
  h.num_shards = s.num_dbs;
  h.status = "healthy";
  if (auto published = ParseTimestamp(s.published_at)) {
    h.manifest_age_seconds = std::chrono::duration<double>(NowUtc() - *published).count();
    if (staleness && *h.manifest_age_seconds > static_cast<double>(staleness->count())) h.status = "degraded";
  }
  return h;
}

}  // namespace shardvec
