// ShardedVectorReader: one immutable snapshot (manifest + routing + its own shard cache) held by a
// shared_ptr. A search copies the pointer, so Refresh() can swap in a new snapshot at any time and
// the old one's shards close when the last search using them finishes.
#include "shardvec/reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <set>

#include "common/digest.h"
#include "common/log.h"
#include "common/private_dir.h"
#include "common/text_util.h"
#include "metrics/emit.h"
#include "common/status_macros.h"
#include "common/thread_pool.h"
#include "common/vector_check.h"
#include "common/time_util.h"
#include "read/filter_bitmap_cache.h"
#include "read/filter_call.h"
#include "read/merge.h"
#include "read/shard_cache.h"
#include "read/snapshot_loader.h"
#include "read/sublist_router.h"
#include "shard/filter_predicate.h"
#include "shard/shard_searcher.h"
#include "shard/sqlite_vec.h"
#include "snapshot/history.h"
#include "store/local_store.h"

namespace shardvec {
namespace fs = std::filesystem;

namespace {

struct Snapshot {
  std::unique_ptr<LoadedSnapshot> loaded;
  SnapshotSublists sublists;  // what the manifest says of the shards' sub-lists
  // The filter columns the manifest declares (custom.shardvec.filter_columns), or why they are unreadable.
  Result<std::vector<FilterColumnSpec>> filter_columns = std::vector<FilterColumnSpec>();
  std::map<int64_t, ShardFilterStats> filter_stats;  // what prunes shards under a filter
  uint64_t generation = 0;  // this reader's count of snapshots made, at this one (keys kept bitmaps)
  std::shared_ptr<ShardCache> cache;
  ReaderMode mode = ReaderMode::kDownload;  // resolved: kDownload or kRange
  // Every shard's sub-lists in one table (shard_of: an index into `shards`), made by the first
  // filtered query that ranks them all.
  struct ListDirectory {
    SnapshotListTable table;
    std::vector<const ShardLocation*> shards;
  };
  mutable std::mutex directory_mu;
  mutable std::shared_ptr<const ListDirectory> directory;
};

// Parallel parts of one ranged read (a shard's scan reads ahead in windows split into parts).
constexpr size_t kRangeFetchThreads = 8;
// A page cache beyond this many pages per shard is refused (at 64 KiB pages: 64 GiB).
constexpr int64_t kMaxPageCachePages = int64_t{1} << 20;

// Each tier's settings must be valid, and a setting of a tier the reader cannot use is refused.
Status CheckTierOptions(const ReaderOptions& o) {
  const ReaderMode mode = o.reader_mode;
  if (mode != ReaderMode::kDownload && mode != ReaderMode::kRange && mode != ReaderMode::kAuto) {
    return Status::InvalidArgument(fmt::format("reader_mode {} is not download, range or auto", static_cast<int>(mode)));
  }
  if (o.page_cache_pages < 0 || o.page_cache_pages > kMaxPageCachePages) {
    return Status::InvalidArgument(
        fmt::format("page_cache_pages must be in 0..{} (got {})", kMaxPageCachePages, o.page_cache_pages));
  }
  if (o.mmap_size && *o.mmap_size < 0) {
    return Status::InvalidArgument(fmt::format("mmap_size must be >= 0 (got {})", *o.mmap_size));
  }
  if (o.auto_per_shard_threshold_bytes <= 0 || o.auto_total_budget_bytes <= 0) {
    return Status::InvalidArgument(fmt::format(
        "auto_per_shard_threshold_bytes and auto_total_budget_bytes must be > 0 (got {} and {})",
        o.auto_per_shard_threshold_bytes, o.auto_total_budget_bytes));
  }
  const std::string_view name = ReaderModeName(mode);
  if (mode == ReaderMode::kDownload && o.page_cache_pages != kDefaultPageCachePages) {
    return Status::InvalidArgument(fmt::format(
        "page_cache_pages ({}) applies to the range tier; reader_mode is {}", o.page_cache_pages, name));
  }
  if (mode == ReaderMode::kRange && o.mmap_size) {
    return Status::InvalidArgument(fmt::format(
        "mmap_size ({}) applies to the download tier; reader_mode is {}", *o.mmap_size, name));
  }
  if (mode != ReaderMode::kAuto && (o.auto_per_shard_threshold_bytes != kDefaultAutoPerShardThresholdBytes ||
                                    o.auto_total_budget_bytes != kDefaultAutoTotalBudgetBytes)) {
    return Status::InvalidArgument(fmt::format(
        "auto_per_shard_threshold_bytes and auto_total_budget_bytes apply to reader_mode auto; it is {}", name));
  }
  if (o.filter_cache_bytes < 0) {
    return Status::InvalidArgument(fmt::format("filter_cache_bytes must be >= 0 (got {})", o.filter_cache_bytes));
  }
  if (o.max_cache_bytes < 0) {
    return Status::InvalidArgument(fmt::format("max_cache_bytes must be >= 0 (got {})", o.max_cache_bytes));
  }
  if (mode == ReaderMode::kRange && o.max_cache_bytes != kDefaultMaxCacheBytes) {
    return Status::InvalidArgument(fmt::format(
        "max_cache_bytes ({}) applies to the download tier; reader_mode is {}", o.max_cache_bytes, name));
  }
  if (o.shard_store_options && !IsS3Prefix(o.store)) {
    return Status::InvalidArgument(fmt::format(
        "shard_store_options applies to an s3:// store; '{}' is a folder", o.store));
  }
  return Status::OK();
}

Status ReaderClosed() {
  return Status::FailedPrecondition("reader is closed").WithKind(ErrorKind::kReaderClosed);
}

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
// `lists_per_shard` > 0 (sub-list routing) widens a routed probe list to the candidate shards whose
// sub-lists are ranked (DefaultSublistRouting); the num_probes nearest come first.
Result<std::vector<int64_t>> Targets(const LoadedSnapshot& s, std::span<const float> query,
                                     const SearchOptions& options, double lists_per_shard = 0) {
  if (options.shard_ids) {
    // shard_ids replaces routing, so a routing setting beside it could not take effect.
    if (options.num_probes) {
      return Status::InvalidArgument(fmt::format(
          "num_probes ({}) cannot be combined with shard_ids: shard_ids names the shards searched, so give one",
          *options.num_probes));
    }
    if (options.routing_context) {
      return Status::InvalidArgument(
          "routing_context cannot be combined with shard_ids: shard_ids names the shards searched, so give one");
    }
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
  // A given num_probes must take effect; the manifest's own default is only capped (a snapshot
  // another tool wrote may ask for more shards than its routing reaches).
  if (options.num_probes && *options.num_probes > s.router->MaxProbes()) {
    return Status::InvalidArgument(fmt::format(
        "num_probes ({}) exceeds the {} shard(s) this {} snapshot's routing can probe (num_dbs {})",
        *options.num_probes, s.router->MaxProbes(), StrategyName(s.strategy), s.num_dbs));
  }
  if (options.routing_context && !s.router->RoutesByContext()) {
    return Status::InvalidArgument(fmt::format("routing_context applies to CEL snapshots only; this one uses {}",
                                               StrategyName(s.strategy)));
  }
  if (s.router->RoutesByContext()) {
    const RoutingContext* context = options.routing_context ? &*options.routing_context : nullptr;
    ASSIGN_OR_RETURN(const int64_t shard, s.router->ProbeContext(context));
    return std::vector<int64_t>{shard};
  }
  if (lists_per_shard > 0) {
    return s.router->Probe(query.data(),
                           DefaultSublistRouting(probes, s.router->MaxProbes(), lists_per_shard).candidate_shards);
  }
  return s.router->Probe(query.data(), probes);
}

// The filter columns a manifest declares: custom.shardvec.filter_columns, {name: type} (none: empty).
Result<std::vector<FilterColumnSpec>> ReadFilterColumns(const Manifest& manifest) {
  const nlohmann::json& custom = manifest.custom;
  if (!custom.is_object() || !custom.contains("shardvec") || !custom["shardvec"].is_object() ||
      !custom["shardvec"].contains("filter_columns")) {
    return std::vector<FilterColumnSpec>();
  }
  const nlohmann::json& declared = custom["shardvec"]["filter_columns"];
  std::map<std::string, std::string> columns;
  if (declared.is_object()) {
    for (const auto& [name, type] : declared.items()) {
      if (!type.is_string()) {
        return Status::Corruption(fmt::format("the manifest's custom.shardvec.filter_columns['{}'] is not a type name",
                                              name));
      }
      columns[name] = type.get<std::string>();
    }
  } else {
    return Status::Corruption("the manifest's custom.shardvec.filter_columns is not an object");
  }
  Result<std::vector<FilterColumnSpec>> specs = ParseFilterColumnSpecs(columns, "the manifest's filter_columns");
  if (!specs.ok()) return Status::Corruption(std::string(specs.status().message()));
  return specs;
}

// The query's filter compiled against the snapshot's columns, or none; max_extra_probes checked.
Result<std::optional<FilterPredicate>> CompileFilter(const LoadedSnapshot& s,
                                                     const Result<std::vector<FilterColumnSpec>>& columns,
                                                     const SearchOptions& options) {
  if (options.max_extra_probes) {
    if (!options.filter) {
      return Status::InvalidArgument(fmt::format(
          "max_extra_probes ({}) applies to filtered searches only: give a filter", *options.max_extra_probes));
    }
    if (*options.max_extra_probes < 0) {
      return Status::InvalidArgument(fmt::format("max_extra_probes must be >= 0 (got {})", *options.max_extra_probes));
    }
    // Those name the shards a query may see, so no further shard is searched: a bound could not take effect.
    if (options.shard_ids) {
      return Status::InvalidArgument(fmt::format(
          "max_extra_probes ({}) cannot be combined with shard_ids: only the named shards are searched",
          *options.max_extra_probes));
    }
    if (s.router->RoutesByContext()) {
      return Status::InvalidArgument(fmt::format(
          "max_extra_probes ({}) does not apply to CEL snapshots: routing_context names the one shard searched",
          *options.max_extra_probes));
    }
  }
  if (!options.filter) return std::optional<FilterPredicate>();
  if (!columns.ok()) return columns.status();
  ASSIGN_OR_RETURN(FilterPredicate predicate, FilterPredicate::Compile(*options.filter, *columns));
  return std::optional<FilterPredicate>(std::move(predicate));
}

// The sub-lists each query scans, or nullopt when shards are searched whole: the option, else the
// default that follows num_probes.
Result<std::optional<int64_t>> SublistBudget(const LoadedSnapshot& s, const SnapshotSublists& sublists,
                                             const SearchOptions& options) {
  if (options.sublist_probes) {
    if (*options.sublist_probes < 1) {
      return Status::InvalidArgument(fmt::format("sublist_probes must be >= 1 (got {})", *options.sublist_probes));
    }
    if (sublists.lists == 0) {
      return Status::InvalidArgument(fmt::format(
          "sublist_probes ({}) applies to snapshots built with sub-lists; manifest '{}' has none",
          *options.sublist_probes, s.manifest_ref));
    }
    return std::optional<int64_t>(*options.sublist_probes);
  }
  // Named shards are searched whole unless told how many sub-lists to scan; so is a CEL snapshot's one shard.
  if (sublists.lists == 0 || options.shard_ids || s.router->RoutesByContext()) return std::optional<int64_t>();
  const int64_t probes = std::min(options.num_probes.value_or(s.num_probes), s.router->MaxProbes());
  if (probes >= s.router->MaxProbes()) return std::optional<int64_t>();  // every shard probed: exact, as ever
  return std::optional<int64_t>(
      DefaultSublistRouting(probes, s.router->MaxProbes(), sublists.per_shard()).sublist_probes);
}

// One query's work: the shards it probes and, beside each, that shard's scanned hits.
struct QueryPlan {
  std::vector<const ShardLocation*> shards;
  std::vector<std::vector<ScanHit>> scanned;
  // With sub-lists: beside each shard, the sub-lists it scans (a shard without any: the whole shard).
  std::vector<std::vector<int32_t>> lists;
  std::optional<int64_t> sublist_budget;  // set: sub-lists are chosen for this query
  // > 0: a filtered query, which picks its sub-lists until they hold this many passing rows
  // (PickFilteredSublists; PlanFilteredSublists says among which shards' lists).
  int64_t filter_need = 0;
  bool lists_chosen = false;  // a filtered query's lists are chosen already (ChooseSublists leaves them)
  int64_t extra_probes = 0;   // shards beyond its routed ones that PlanFilteredSublists chose
  size_t whole_shards = 0;  // the first this many shards are searched whole when they have no sub-lists
};

// Queries per scan task in a batch: enough to reuse each block of a shard across many of them,
// few enough that a popular shard still spreads over the pool.
constexpr size_t kQueriesPerScanTask = 64;

// A filtered search searches shards until they hold this many passing rows per hit asked for (or
// every shard): at the default probing on a 20k-row, 8-shard clustered set, recall@10 of a 1 % filter
// went from 0.82 (stopping once top_k rows were found) to 1.0, and 0.96-1.0 for every filter of
// tests/python/test_filtered_search.py.
constexpr int64_t kFilterRowsPerHit = 10;
// A filtered query whose routed shards say that the sub-lists an unfiltered query would scan hold
// fewer passing rows than it needs ranks the sub-lists of the whole snapshot (its nearest passing
// rows lie beyond its neighbourhood): the nearest that should hold twice its need by the routed
// shards' density of passing rows, at least kFilterRankedLists; when the snapshot's passing rows are
// estimated at no more than kFilterExhaustivePerNeed times its need, it scores them all instead.
constexpr int64_t kFilterRankedLists = 256;
// (Measured on the 1M x 384 benchmark set, 64 shards: at 0.1 %, 1,000 passing rows, scoring them all
// took 0.46 ms a query and ranking lists 0.58 ms.)
constexpr int64_t kFilterExhaustivePerNeed = 16;

// The shard cache folder, created and checked private: `cache_dir`, or this user's default
// <private root>/shards/<hash of the store's prefix>.
Result<fs::path> PrepareCacheRoot(const std::string& cache_dir, const ObjectStore& store) {
  if (!cache_dir.empty()) {
    RETURN_IF_ERROR(EnsurePrivateFolder(cache_dir, "shard cache folder (cache_dir)"));
    return fs::path(cache_dir);
  }
  return EnsureDefaultPrivateFolder({"shards", Xxh3Digest(store.PrefixUrl()).substr(5)},
                                    "default shard cache folder");
}

}  // namespace

std::string_view ReaderModeName(ReaderMode mode) {
  switch (mode) {
    case ReaderMode::kDownload: return "download";
    case ReaderMode::kRange: return "range";
    case ReaderMode::kAuto: return "auto";
  }
  return "unknown";
}

Result<ReaderMode> ParseReaderMode(std::string_view text, std::string_view field) {
  for (ReaderMode mode : {ReaderMode::kDownload, ReaderMode::kRange, ReaderMode::kAuto}) {
    if (text == ReaderModeName(mode)) return mode;
  }
  return Status::InvalidArgument(
      fmt::format("{} must be download, range or auto (got '{}')", field, EscapeForDisplay(text)));
}

ReaderMode ResolveReaderMode(ReaderMode mode, const std::vector<int64_t>& shard_bytes,
                             int64_t per_shard_threshold_bytes, int64_t total_budget_bytes) {
  if (mode != ReaderMode::kAuto) return mode;
  int64_t total = 0;
  for (int64_t bytes : shard_bytes) {
    if (bytes >= per_shard_threshold_bytes) return ReaderMode::kRange;
    total += bytes;
  }
  return total >= total_budget_bytes ? ReaderMode::kRange : ReaderMode::kDownload;
}

class ShardedVectorReader::Impl {
 public:
  Impl(ReaderOptions options, std::shared_ptr<ObjectStore> store, std::shared_ptr<ObjectStore> shard_store,
       std::unique_ptr<ThreadPool> pool, std::shared_ptr<ThreadPool> fetch_pool)
      : options_(std::move(options)),
        store_(std::move(store)),
        manifests_(options_.manifest_store ? options_.manifest_store : MakeObjectManifestStore(store_)),
        shard_store_(std::move(shard_store)),
        pool_(std::move(pool)),
        fetch_pool_(std::move(fetch_pool)) {}

  Status Load() {
    ASSIGN_OR_RETURN(std::unique_ptr<LoadedSnapshot> loaded, LoadFirstSnapshot());
    // Once there is a snapshot to cache: the cache folder checked private (created if missing), and
    // the partial downloads killed readers left in it removed.
    ASSIGN_OR_RETURN(cache_root_, PrepareCacheRoot(options_.cache_dir, *store_));
    ShardCache::RemoveStaleDownloads(cache_root_);
    auto snapshot = MakeSnapshot(std::move(loaded));
    if (options_.preload_shards) RETURN_IF_ERROR(Preload(*snapshot));
    {
      std::lock_guard<std::mutex> lock(mu_);
      current_ = std::move(snapshot);
    }
    EnforceCacheBudget();
    return Status::OK();
  }

  // The manifest options_.manifest selects, else the one _CURRENT names (with fallback).
  // A selected manifest is found in the manifest store (in the object layout, a ref may also be a
  // key or a local path).
  Result<std::unique_ptr<LoadedSnapshot>> LoadFirstSnapshot() {
    if (!options_.manifest) return LoadCurrentSnapshot(*store_, *manifests_, options_.max_fallback_attempts);
    ASSIGN_OR_RETURN(ManifestEntry entry, options_.manifest_store ? FindManifest(*manifests_, *options_.manifest)
                                                                  : FindManifest(*store_, *options_.manifest));
    return LoadSnapshot(*store_, *manifests_, ManifestRef{entry.ref, entry.run_id, entry.published_at});
  }

  // Metric and log events are sent after the refresh lock is released.
  Result<bool> Refresh() {
    if (options_.manifest) {  // pinned to the manifest it was opened at
      RETURN_IF_ERROR(Current().status());
      return false;
    }
    std::string manifest_ref;
    bool refused_event = false;
    Result<bool> swapped = RefreshLocked(&manifest_ref, &refused_event);
    if (refused_event && metrics_) {
      EmitMetric(*metrics_, metric_events::kReaderRefreshRefused,
                 {{"manifest_ref", manifest_ref}, {"reason", swapped.status().message()}});
    }
    if (!swapped.ok()) {
      LogEvent(LogLevel::kWarning, "vector_reader_refresh_apply_failed",
               {{"s3_prefix", store_->PrefixUrl()}, {"error", swapped.status().message()}});
    } else if (*swapped && metrics_) {
      EmitMetric(*metrics_, metric_events::kReaderRefreshed, {{"manifest_ref", manifest_ref}});
    }
    if (swapped.ok() && *swapped) EnforceCacheBudget();
    return swapped;
  }

  // Refuses a snapshot live callers' queries cannot search: another dim or metric.
  static Status CheckSameSchema(const LoadedSnapshot& serving, const LoadedSnapshot& next) {
    if (serving.dim == next.dim && serving.metric == next.metric) return Status::OK();
    return Status::FailedPrecondition(fmt::format(
               "refresh refused: manifest '{}' has dim {} and metric {}, but this reader serves dim {} and metric {} "
               "(manifest '{}'); it keeps serving that snapshot. Open a new reader to read the new one",
               next.manifest_ref, next.dim, MetricName(next.metric), serving.dim, MetricName(serving.metric),
               serving.manifest_ref));
  }

  Result<bool> RefreshLocked(std::string* manifest_ref, bool* refused_event) {
    std::lock_guard<std::mutex> refresh_lock(refresh_mu_);
    ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> now, Current());
    ASSIGN_OR_RETURN(ManifestRef pointer, LoadCurrentRef(*manifests_));
    if (pointer.ref == now->loaded->manifest_ref) return false;
    // A snapshot already refused is refused again without reading it.
    if (pointer.ref == refused_ref_) {
      *refused_event = true;
      *manifest_ref = pointer.ref;
      return refused_;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<LoadedSnapshot> loaded,
                     LoadSnapshot(*store_, *manifests_, pointer));
    if (Status compatible = CheckSameSchema(*now->loaded, *loaded); !compatible.ok()) {
      refused_ref_ = pointer.ref;
      refused_ = compatible;
      *refused_event = true;
      *manifest_ref = pointer.ref;
      return compatible;
    }
    auto snapshot = MakeSnapshot(std::move(loaded));
    if (options_.preload_shards) RETURN_IF_ERROR(Preload(*snapshot));
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return ReaderClosed();
    *manifest_ref = snapshot->loaded->manifest_ref;
    const uint64_t generation = snapshot->generation;
    current_ = std::move(snapshot);  // the old snapshot lives on while searches hold it
    filter_cache_->Reset(generation);  // bitmaps belong to the snapshot they were evaluated on
    return true;
  }

  Result<SearchResponse> Search(std::span<const float> query, int64_t top_k, const SearchOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    ThreadPool::Caller working(*pool_);
    ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snap, Current());
    RETURN_IF_ERROR(CheckTopK(top_k));
    ASSIGN_OR_RETURN(const std::optional<FilterPredicate> filter, CompileFilter(*snap->loaded, snap->filter_columns, options));
    std::optional<FilterCall> filter_call;
    if (filter) filter_call.emplace(*filter, snap->filter_stats, *filter_cache_, snap->generation);
    FilterCall* predicate = filter_call ? &*filter_call : nullptr;
    std::vector<QueryPlan> plans(1);
    ASSIGN_OR_RETURN(plans[0], Plan(*snap, query, options, predicate));
    const float* query_row = query.data();
    if (predicate != nullptr) {
      RETURN_IF_ERROR(PlanFilteredSublists(*snap, options, *predicate, top_k, plans, std::span(&query_row, 1)));
    }
    RETURN_IF_ERROR(ChooseSublists(*snap, plans, std::span(&query_row, 1), predicate));
    QueryPlan& plan = plans[0];
    // Once a shard has given top_k hits, its last one bounds what any other shard need return: a
    // shard scanned after it (probes go nearest first) gives up on farther rows early.
    std::atomic<double> kth_distance{std::numeric_limits<double>::infinity()};
    std::vector<std::function<Status()>> scans;
    std::vector<int64_t> passing(plan.shards.size(), 0);  // with a filter: each shard's passing rows
    for (size_t slot = 0; slot < plan.shards.size(); ++slot) {
      scans.push_back([&, slot]() -> Status {
        const float* q = query.data();
        ASSIGN_OR_RETURN(auto scanned, ScanShard(*snap, *plan.shards[slot], std::span(&q, 1), top_k,
                                                 kth_distance.load(), ListsOf(plan, slot), predicate, &passing[slot]));
        std::vector<ScanHit>& hits = scanned.front();
        if (static_cast<int64_t>(hits.size()) == top_k && top_k > 0) {
          double seen = kth_distance.load();
          while (hits.back().score < seen && !kth_distance.compare_exchange_weak(seen, hits.back().score)) {
          }
        }
        plan.scanned[slot] = std::move(hits);
        return Status::OK();
      });
    }
    RETURN_IF_ERROR(pool_->RunAll(std::move(scans)));
    if (predicate != nullptr) {
      RETURN_IF_ERROR(FillFiltered(*snap, query_row, options, *predicate, top_k,
                                   std::accumulate(passing.begin(), passing.end(), int64_t{0}), plan));
    }
    ASSIGN_OR_RETURN(std::vector<SearchResponse> responses, Finish(*snap, plans, top_k, /*parallel=*/false));
    responses[0].latency_ms = MillisSince(t0);
    if (metrics_) EmitSearch(top_k, responses[0]);
    return std::move(responses[0]);
  }

  // Scans each probed shard once for all the queries that probe it (a bounded group of queries
  // per task), then merges per query and looks up ids shard by shard.
  Result<std::vector<SearchResponse>> BatchSearch(MatrixView queries, int64_t top_k,
                                                  const SearchOptions& options) {
    const auto t0 = std::chrono::steady_clock::now();
    ThreadPool::Caller working(*pool_);
    ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snap, Current());
    RETURN_IF_ERROR(CheckTopK(top_k));
    const LoadedSnapshot& s = *snap->loaded;
    if (queries.cols != s.dim) {
      return Status::InvalidArgument(
          fmt::format("queries have {} columns, but the snapshot's dim is {}", queries.cols, s.dim));
    }
    auto row = [&queries](size_t i) {
      return std::span<const float>(queries.row(static_cast<int64_t>(i)), static_cast<size_t>(queries.cols));
    };
    ASSIGN_OR_RETURN(const std::optional<FilterPredicate> filter, CompileFilter(*snap->loaded, snap->filter_columns, options));
    std::optional<FilterCall> filter_call;
    if (filter) filter_call.emplace(*filter, snap->filter_stats, *filter_cache_, snap->generation);
    FilterCall* predicate = filter_call ? &*filter_call : nullptr;
    std::vector<QueryPlan> plans(static_cast<size_t>(queries.rows));
    std::map<const ShardLocation*, std::vector<std::pair<size_t, size_t>>> by_shard;  // -> (query, slot)
    std::vector<const float*> rows(plans.size());
    for (size_t i = 0; i < plans.size(); ++i) {
      Result<QueryPlan> plan = Plan(*snap, row(i), options, predicate);
      if (!plan.ok()) return plan.status().WithContext(fmt::format("query row {}", i));
      plans[i] = std::move(plan).value();
      rows[i] = row(i).data();
    }
    if (predicate != nullptr) RETURN_IF_ERROR(PlanFilteredSublists(*snap, options, *predicate, top_k, plans, rows));
    RETURN_IF_ERROR(ChooseSublists(*snap, plans, rows, predicate));
    for (size_t i = 0; i < plans.size(); ++i) {
      for (size_t slot = 0; slot < plans[i].shards.size(); ++slot) by_shard[plans[i].shards[slot]].emplace_back(i, slot);
    }
    std::vector<std::function<Status()>> scans;
    // With a filter: per query, each of its shards' passing rows.
    std::vector<std::vector<int64_t>> passing(plans.size());
    for (size_t i = 0; i < plans.size(); ++i) passing[i].assign(plans[i].shards.size(), 0);
    for (const auto& [loc, pairs] : by_shard) {
      for (size_t begin = 0; begin < pairs.size(); begin += kQueriesPerScanTask) {
        const size_t end = std::min(pairs.size(), begin + kQueriesPerScanTask);
        scans.push_back([&, loc = loc, group = &pairs, begin, end]() -> Status {
          std::vector<const float*> qs;
          std::vector<std::vector<int32_t>> lists;
          for (size_t j = begin; j < end; ++j) {
            const auto [query, slot] = (*group)[j];
            qs.push_back(row(query).data());
            if (plans[query].sublist_budget) lists.push_back(plans[query].lists[slot]);
          }
          // A shard's queries all route by sub-lists or none do (the options are the batch's).
          int64_t shard_passing = 0;
          ASSIGN_OR_RETURN(auto scanned, ScanShard(*snap, *loc, qs, top_k, std::numeric_limits<double>::infinity(), lists,
                                                   predicate, &shard_passing));
          for (size_t j = begin; j < end; ++j) {
            const auto [query, slot] = (*group)[j];
            plans[query].scanned[slot] = std::move(scanned[j - begin]);
            passing[query][slot] = shard_passing;
          }
          return Status::OK();
        });
      }
    }
    RETURN_IF_ERROR(pool_->RunAll(std::move(scans)));
    if (predicate != nullptr) {
      for (size_t i = 0; i < plans.size(); ++i) {
        RETURN_IF_ERROR(FillFiltered(*snap, rows[i], options, *predicate, top_k,
                                     std::accumulate(passing[i].begin(), passing[i].end(), int64_t{0}), plans[i]));
      }
    }
    ASSIGN_OR_RETURN(std::vector<SearchResponse> responses, Finish(*snap, plans, top_k, /*parallel=*/true));
    const double batch_ms = MillisSince(t0);
    for (SearchResponse& r : responses) r.latency_ms = batch_ms;
    // One event per query (each with the batch's latency), so counts match single searches.
    if (metrics_) {
      for (const SearchResponse& r : responses) EmitSearch(top_k, r);
    }
    return responses;
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
    bool was_open = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      was_open = !closed_;
      closed_ = true;
      current_.reset();  // shards close as in-flight searches release them
    }
    if (was_open && metrics_) EmitMetric(*metrics_, metric_events::kReaderClosed, {});
  }

  void EmitInitialized() {
    if (!metrics_) return;
    auto snap = Peek();
    EmitMetric(*metrics_, metric_events::kReaderInitialized,
               {{"s3_prefix", store_->PrefixUrl()}, {"num_shards", snap ? snap->loaded->num_dbs : int64_t{0}}});
  }

  // Prunes the cache folder to max_cache_bytes (shards live snapshots use are kept). One prune at a
  // time: a call while another runs waits for it, then lists the folder again (a download that ended
  // meanwhile may have taken it over the budget).
  void EnforceCacheBudget() {
    std::lock_guard<std::mutex> pruning(prune_mu_);
    pruned_downloads_ = download_counters_->shards.load();
    Result<ShardCachePruneResult> pruned = PruneShardCache(cache_root_.string(), options_.max_cache_bytes);
    if (!pruned.ok()) {
      LogEvent(LogLevel::kWarning, "shard_cache_prune_failed",
               {{"path", cache_root_.string()}, {"error", pruned.status().message()}});
    } else if (pruned->removed_folders > 0) {
      LogEvent(LogLevel::kInfo, "shard_cache_pruned",
               {{"path", cache_root_.string()}, {"folders", pruned->removed_folders},
                {"bytes", pruned->removed_bytes}, {"kept_bytes", pruned->kept_bytes}});
    }
  }

  // After a download: the budget is enforced again (a download may have taken the folder over it).
  void EnforceCacheBudgetAfterDownloads() {
    if (download_counters_->shards.load() != pruned_downloads_.load()) EnforceCacheBudget();
  }

  ReadStats Stats() const {
    ReadStats stats;
    if (auto snap = Peek()) stats.reader_mode = snap->mode;
    stats.range_bytes_fetched = range_counters_->bytes_fetched.load();
    stats.range_requests = range_counters_->requests.load();
    stats.shards_downloaded = download_counters_->shards.load();
    stats.bytes_downloaded = download_counters_->bytes.load();
    stats.filter_bitmaps_evaluated = filter_cache_->evaluated();
    stats.filter_bitmaps_reused = filter_cache_->reused();
    return stats;
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
    if (closed_ || !current_) return ReaderClosed();
    return current_;
  }

  std::shared_ptr<const Snapshot> MakeSnapshot(std::unique_ptr<LoadedSnapshot> loaded) {
    auto snapshot = std::make_shared<Snapshot>();
    std::vector<int64_t> shard_bytes;
    for (const auto& [id, loc] : loaded->shards) shard_bytes.push_back(loc.size);
    snapshot->mode = ResolveReaderMode(options_.reader_mode, shard_bytes, options_.auto_per_shard_threshold_bytes,
                                       options_.auto_total_budget_bytes);
    ShardAccess access;
    access.ranged = snapshot->mode == ReaderMode::kRange;
    access.page_cache_pages = options_.page_cache_pages;
    access.counters = range_counters_;
    access.fetch_pool = fetch_pool_;
    access.downloads = download_counters_;
    access.mmap_size = options_.mmap_size;
    access.in_place = dynamic_cast<LocalStore*>(shard_store_.get()) != nullptr;
    snapshot->cache = std::make_shared<ShardCache>(shard_store_, cache_root_, loaded->dim, loaded->metric,
                                                   options_.max_cached_shards, /*record_downloads=*/metrics_ != nullptr,
                                                   std::move(access));
    snapshot->sublists = ReadSnapshotSublists(loaded->manifest);
    snapshot->filter_columns = ReadFilterColumns(loaded->manifest);
    snapshot->filter_stats = ReadFilterStats(loaded->manifest);
    snapshot->generation = ++generations_;
    snapshot->loaded = std::move(loaded);
    return snapshot;
  }


  Status Preload(const Snapshot& snap) {
    for (const auto& [id, loc] : snap.loaded->shards) {
      ASSIGN_OR_RETURN(ShardLease lease, snap.cache->Acquire(loc));
      (void)lease;
      EmitDownloads(*snap.cache);
    }
    EnforceCacheBudgetAfterDownloads();
    return Status::OK();
  }

  static double MillisSince(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }

  // Checks one query and finds the shards it probes (a shard with no rows is skipped, and so is a
  // routed shard `filter`'s statistics rule out: the next shard in routing order takes its place).
  static Result<QueryPlan> Plan(const Snapshot& snap, std::span<const float> query, const SearchOptions& options,
                                const FilterCall* filter) {
    const LoadedSnapshot& s = *snap.loaded;
    RETURN_IF_ERROR(CheckQuery(s, query));
    QueryPlan plan;
    ASSIGN_OR_RETURN(plan.sublist_budget, SublistBudget(s, snap.sublists, options));
    const bool widen = plan.sublist_budget && !options.shard_ids && !s.router->RoutesByContext();
    ASSIGN_OR_RETURN(std::vector<int64_t> targets, Targets(s, query, options, widen ? snap.sublists.per_shard() : 0));
    // Shards named by shard_ids or a CEL snapshot's routing_context are searched as named.
    if (filter != nullptr && filter->AnyPruned() && !options.shard_ids && !s.router->RoutesByContext()) {
      ASSIGN_OR_RETURN(targets, Unpruned(s, query, *filter, targets.size()));
    }
    const size_t probes = widen ? static_cast<size_t>(std::min(options.num_probes.value_or(s.num_probes),
                                                               s.router->MaxProbes()))
                                : targets.size();
    for (size_t i = 0; i < targets.size(); ++i) {
      auto it = s.shards.find(targets[i]);
      if (it != s.shards.end()) plan.shards.push_back(&it->second);
      if (i < probes) plan.whole_shards = plan.shards.size();
    }
    plan.scanned.resize(plan.shards.size());
    plan.lists.resize(plan.shards.size());
    return plan;
  }

  // The first `count` shards in the query's routing order that `filter` does not prune: a routed
  // probe list keeps its length, a pruned shard's slot going to the next shard in routing order (so
  // pruning never leaves fewer shards that can hold hits). A routed probe list is the head of the
  // full routing order.
  static Result<std::vector<int64_t>> Unpruned(const LoadedSnapshot& s, std::span<const float> query,
                                               const FilterCall& filter, size_t count) {
    ASSIGN_OR_RETURN(const std::vector<int64_t> order, s.router->Probe(query.data(), s.router->MaxProbes()));
    std::vector<int64_t> out;
    for (const int64_t id : order) {
      if (out.size() == count) break;
      if (!filter.Pruned(id)) out.push_back(id);
    }
    return out;
  }

  // Sub-list routing for the plans with a budget: each candidate shard ranks its sub-lists for all
  // the queries that consider it at once (a batch scan of its centroids), then each query keeps its
  // `budget` nearest across its shards (a filtered query: PickFilteredSublists, with each list's
  // passing rows counted on `filter`'s bitmap). A shard without sub-lists is searched whole when it
  // is one of the num_probes nearest, else dropped; so is a shard none of whose lists was picked.
  Status ChooseSublists(const Snapshot& snap, std::vector<QueryPlan>& plans, std::span<const float* const> queries,
                        FilterCall* filter) {
    std::map<const ShardLocation*, std::vector<std::pair<size_t, size_t>>> by_shard;  // -> (query, slot)
    for (size_t q = 0; q < plans.size(); ++q) {
      if (!plans[q].sublist_budget || plans[q].lists_chosen) continue;
      for (size_t slot = 0; slot < plans[q].shards.size(); ++slot) by_shard[plans[q].shards[slot]].emplace_back(q, slot);
    }
    if (by_shard.empty()) return Status::OK();
    std::vector<std::vector<ListCandidate>> candidates(plans.size());
    std::vector<std::vector<char>> whole(plans.size());
    for (size_t q = 0; q < plans.size(); ++q) whole[q].assign(plans[q].shards.size(), 0);
    std::vector<const float*> qs;
    std::vector<std::vector<ScanHit>> nearest;
    for (const auto& [loc, pairs] : by_shard) {
      ASSIGN_OR_RETURN(ShardLease lease, snap.cache->Acquire(*loc));
      EmitDownloads(*snap.cache);
      const SubLists* sublists = lease.searcher().sublists();
      if (sublists == nullptr) {
        for (const auto& [q, slot] : pairs) whole[q][slot] = slot < plans[q].whole_shards ? 1 : 0;
        continue;
      }
      qs.clear();
      const int64_t lists = sublists->centroids.vectors.rows();
      int64_t budget = 0;
      bool filtered = false;
      for (const auto& [q, slot] : pairs) {
        qs.push_back(queries[q]);
        filtered = filtered || plans[q].filter_need > 0;
        budget = std::max(budget, plans[q].filter_need > 0 ? lists : *plans[q].sublist_budget);
      }
      std::shared_ptr<const FilterBitmap> allowed;  // a filtered query's, with each list's passing rows
      if (filtered) {
        ASSIGN_OR_RETURN(allowed, filter->Bitmap(*loc, lease.searcher()));
      }
      Sq8Rank(*sublists->centroid_codes, qs, std::min(budget, lists), &nearest);
      for (size_t j = 0; j < pairs.size(); ++j) {
        const auto [q, slot] = pairs[j];
        const bool counts = plans[q].filter_need > 0;
        for (const ScanHit& hit : nearest[j]) {
          candidates[q].push_back(ListCandidate{hit.score, static_cast<int32_t>(slot), static_cast<int32_t>(hit.row),
                                                counts ? allowed->list_passing[static_cast<size_t>(hit.row)] : 0});
        }
      }
    }
    EnforceCacheBudgetAfterDownloads();
    for (size_t q = 0; q < plans.size(); ++q) {
      QueryPlan& plan = plans[q];
      if (!plan.sublist_budget || plan.lists_chosen) continue;
      std::vector<std::vector<int32_t>> lists =
          plan.filter_need > 0
              ? PickFilteredSublists(std::move(candidates[q]), *plan.sublist_budget, plan.filter_need, plan.shards.size())
              : PickSublists(std::move(candidates[q]), *plan.sublist_budget, plan.shards.size());
      QueryPlan kept;
      kept.sublist_budget = plan.sublist_budget;
      kept.filter_need = plan.filter_need;
      for (size_t slot = 0; slot < plan.shards.size(); ++slot) {
        if (lists[slot].empty() && !whole[q][slot]) continue;
        kept.shards.push_back(plan.shards[slot]);
        kept.lists.push_back(std::move(lists[slot]));
      }
      kept.scanned.resize(kept.shards.size());
      kept.whole_shards = kept.shards.size();
      plan = std::move(kept);
    }
    return Status::OK();
  }

  // The sub-lists `plan` scans in its shard `slot` (empty span: the whole shard).
  static std::span<const std::vector<int32_t>> ListsOf(const QueryPlan& plan, size_t slot) {
    if (!plan.sublist_budget) return {};
    return std::span(&plan.lists[slot], 1);
  }

  Result<std::vector<std::vector<ScanHit>>> ScanShard(
      const Snapshot& snap, const ShardLocation& loc, std::span<const float* const> queries, int64_t top_k,
      double max_distance = std::numeric_limits<double>::infinity(),
      std::span<const std::vector<int32_t>> lists = {}, FilterCall* filter = nullptr,
      int64_t* passing = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    Result<std::vector<std::vector<ScanHit>>> scanned = [&]() -> Result<std::vector<std::vector<ScanHit>>> {
      ASSIGN_OR_RETURN(ShardLease lease, snap.cache->Acquire(loc));
      ShardSearcher& searcher = lease.searcher();
      if (filter == nullptr) return searcher.Scan(queries, top_k, max_distance, lists);
      ASSIGN_OR_RETURN(const std::shared_ptr<const FilterBitmap> allowed, filter->Bitmap(loc, searcher));
      if (passing != nullptr) *passing = allowed->passing;
      return searcher.Scan(queries, top_k, max_distance, lists, allowed->bits);
    }();  // the lease is back before any event is sent
    if (!metrics_) {
      EnforceCacheBudgetAfterDownloads();
      return scanned;
    }
    EmitDownloads(*snap.cache);
    EnforceCacheBudgetAfterDownloads();
    if (scanned.ok()) {
      int64_t results = 0;
      for (const auto& hits : *scanned) results += static_cast<int64_t>(hits.size());
      EmitMetric(*metrics_, metric_events::kShardSearch,
                 {{"shard_id", loc.db_id}, {"top_k", top_k}, {"num_results", results},
                  {"num_queries", static_cast<int64_t>(queries.size())}, {"elapsed_ms", MillisSince(t0)}});
    }
    return scanned;
  }

  // A filtered query's plan after its scans, whose shards hold `passing` rows the filter passes:
  // further shards the filter's statistics do not rule out are searched whole (every passing row), in
  // routing order and then by id, until the query has top_k hits and its shards hold
  // kFilterRowsPerHit x top_k passing rows, or options.max_extra_probes shards were added, or none
  // that can match is left (so it never stops short of top_k hits that exist). A query that picked
  // sub-lists by their passing rows (PlanFilteredSublists) rarely needs any.
  // Not with shard_ids or CEL routing, which name the shards a query may see.
  Status FillFiltered(const Snapshot& snap, const float* query, const SearchOptions& options,
                      FilterCall& filter, int64_t top_k, int64_t passing, QueryPlan& plan) {
    const LoadedSnapshot& s = *snap.loaded;
    if (options.shard_ids || s.router->RoutesByContext()) return Status::OK();
    int64_t found = 0;
    for (const auto& hits : plan.scanned) found += static_cast<int64_t>(hits.size());
    auto enough = [&] { return found >= top_k && passing >= kFilterRowsPerHit * top_k; };
    if (enough()) return Status::OK();
    const std::set<const ShardLocation*> searched(plan.shards.begin(), plan.shards.end());
    ASSIGN_OR_RETURN(const std::vector<const ShardLocation*> order, ShardsThatCanMatch(s, query, filter));
    int64_t extra = plan.extra_probes;
    for (const ShardLocation* loc : order) {
      if (searched.contains(loc)) continue;
      if (enough() || (options.max_extra_probes && extra >= *options.max_extra_probes)) break;
      int64_t more = 0;
      ASSIGN_OR_RETURN(auto scanned, ScanShard(snap, *loc, std::span(&query, 1), top_k,
                                               std::numeric_limits<double>::infinity(), {}, &filter, &more));
      ++extra;
      passing += more;
      found += static_cast<int64_t>(scanned.front().size());
      plan.shards.push_back(loc);
      plan.scanned.push_back(std::move(scanned.front()));
      plan.lists.emplace_back();
    }
    return Status::OK();
  }

  // The shards `filter`'s statistics do not rule out, in `query`'s routing order, then by id those
  // its routing does not reach.
  static Result<std::vector<const ShardLocation*>> ShardsThatCanMatch(const LoadedSnapshot& s, const float* query,
                                                                     const FilterCall& filter) {
    ASSIGN_OR_RETURN(const std::vector<int64_t> routed, s.router->Probe(query, s.router->MaxProbes()));
    std::vector<const ShardLocation*> out;
    std::set<const ShardLocation*> seen;
    auto add = [&](int64_t id) {
      auto it = s.shards.find(id);
      if (it != s.shards.end() && !filter.Pruned(id) && seen.insert(&it->second).second) out.push_back(&it->second);
    };
    for (const int64_t id : routed) add(id);
    for (const auto& [id, loc] : s.shards) add(id);
    return out;
  }

  // What a filtered query learns of a shard: its passing rows, rows and sub-lists (FilterCall keeps
  // the bitmap for the scans).
  struct ShardPassing {
    std::shared_ptr<const FilterBitmap> bitmap;
    int64_t rows = 0;
  };
  Result<ShardPassing> Passing(const Snapshot& snap, FilterCall& filter, const ShardLocation& loc) {
    ASSIGN_OR_RETURN(ShardLease lease, snap.cache->Acquire(loc));
    EmitDownloads(*snap.cache);
    ShardPassing out;
    ASSIGN_OR_RETURN(out.bitmap, filter.Bitmap(loc, lease.searcher()));
    const FilterColumns* columns = lease.searcher().filter_columns();
    out.rows = columns != nullptr ? columns->rows : 0;
    return out;
  }

  // How each filtered query that picks sub-lists finds them (filter_need: the passing rows it wants
  // in them, kFilterRowsPerHit x top_k). From its routed candidate shards' passing rows, the
  // sub-lists an unfiltered query would scan hold about `density x their rows` passing rows:
  //  - enough: it picks its lists among those shards' (ChooseSublists, PickFilteredSublists);
  //  - too few, and the whole snapshot is estimated to hold no more than kFilterExhaustivePerNeed x
  //    the need: every shard the statistics do not rule out is searched, every passing row scored;
  //  - else the nearest lists of the whole snapshot are ranked (one table, SnapshotListTable; as
  //    many as should hold twice its need, at least kFilterRankedLists) and it picks among those.
  Status PlanFilteredSublists(const Snapshot& snap, const SearchOptions& options, FilterCall& filter,
                              int64_t top_k, std::vector<QueryPlan>& plans, std::span<const float* const> queries) {
    const LoadedSnapshot& s = *snap.loaded;
    if (options.shard_ids || s.router->RoutesByContext() || top_k == 0) return Status::OK();
    std::map<const ShardLocation*, ShardPassing> known;
    for (const QueryPlan& plan : plans) {
      if (!plan.sublist_budget) continue;
      for (const ShardLocation* loc : plan.shards) known[loc];
    }
    if (known.empty()) return Status::OK();
    std::vector<std::function<Status()>> tasks;
    for (auto& [loc, passing] : known) {
      tasks.push_back([&, loc = loc, passing = &passing]() -> Status {
        ASSIGN_OR_RETURN(*passing, Passing(snap, filter, *loc));
        return Status::OK();
      });
    }
    const Status evaluated = pool_->RunAll(std::move(tasks));
    EnforceCacheBudgetAfterDownloads();
    RETURN_IF_ERROR(evaluated);
    auto passing_of = [&](const ShardLocation* loc) -> Result<const ShardPassing*> {
      auto it = known.find(loc);
      if (it == known.end()) {
        ASSIGN_OR_RETURN(ShardPassing p, Passing(snap, filter, *loc));
        EnforceCacheBudgetAfterDownloads();
        it = known.emplace(loc, std::move(p)).first;
      }
      return &it->second;
    };
    const int64_t need = kFilterRowsPerHit * top_k;
    std::map<size_t, std::set<const ShardLocation*>> bounded;  // with max_extra_probes: the shards a query may search
    auto outside = [&](size_t q, const ShardLocation* loc) {
      auto it = bounded.find(q);
      return it != bounded.end() && !it->second.contains(loc);
    };
    std::shared_ptr<const Snapshot::ListDirectory> directory;
    std::vector<size_t> ranked;  // the queries that rank the whole snapshot's lists
    int64_t ranked_lists = kFilterRankedLists;  // how many they rank
    for (size_t q = 0; q < plans.size(); ++q) {
      QueryPlan& plan = plans[q];
      if (!plan.sublist_budget) continue;
      plan.filter_need = need;
      double held = 0, rows = 0, lists = 0;
      for (const ShardLocation* loc : plan.shards) {
        const ShardPassing& p = known[loc];
        held += static_cast<double>(p.bitmap->passing);
        rows += static_cast<double>(p.rows);
        lists += static_cast<double>(p.bitmap->list_passing.size());
      }
      if (rows <= 0 || lists <= 0) continue;
      const double density = held / rows;
      if (density * static_cast<double>(*plan.sublist_budget) * rows / lists >= static_cast<double>(need)) continue;
      if (!directory) {
        ASSIGN_OR_RETURN(directory, Directory(snap));
      }
      plan.lists_chosen = true;
      const bool exhaustive =
          density * static_cast<double>(directory->table.rows) <= static_cast<double>(kFilterExhaustivePerNeed * need);
      std::vector<const ShardLocation*> matching;  // what the bound and the exhaustive search need
      if (options.max_extra_probes || exhaustive) {
        ASSIGN_OR_RETURN(matching, ShardsThatCanMatch(s, queries[q], filter));
      }
      if (options.max_extra_probes) {
        // Its routed shards and, beyond them, at most max_extra_probes more in that order.
        std::set<const ShardLocation*>& allowed = bounded[q];
        allowed.insert(plan.shards.begin(), plan.shards.end());
        int64_t more = 0;
        for (const ShardLocation* loc : matching) {
          if (more >= *options.max_extra_probes) break;
          if (allowed.insert(loc).second) ++more;
        }
      }
      if (!exhaustive) {
        ranked.push_back(q);
        const double per_list = density * rows / lists;  // > 0 here
        ranked_lists = std::max(ranked_lists, static_cast<int64_t>(std::min(
            2.0 * static_cast<double>(need) / per_list, static_cast<double>(directory->table.shard_of.size()))));
        continue;
      }
      // Every shard that can match, each searched whole (empty lists).
      const std::set<const ShardLocation*> routed(plan.shards.begin(), plan.shards.end());
      plan.shards.clear();
      for (const ShardLocation* loc : matching) {
        if (outside(q, loc)) continue;
        plan.shards.push_back(loc);
        if (!routed.contains(loc)) ++plan.extra_probes;
      }
      plan.lists.assign(plan.shards.size(), {});
      plan.scanned.assign(plan.shards.size(), {});
      plan.whole_shards = plan.shards.size();
    }
    if (ranked.empty()) return Status::OK();
    std::vector<const float*> qs;
    for (const size_t q : ranked) qs.push_back(queries[q]);
    std::vector<std::vector<ScanHit>> nearest;
    RankSnapshotLists(directory->table, qs, std::min<int64_t>(ranked_lists, directory->table.centroids.vectors.rows()),
                      &nearest);
    for (size_t j = 0; j < ranked.size(); ++j) {
      QueryPlan& plan = plans[ranked[j]];
      const std::set<const ShardLocation*> routed(plan.shards.begin(), plan.shards.end());
      // Per directory shard: its slot here (-1: none yet, -2: left out) and its passing rows.
      std::vector<int32_t> slot_of(directory->shards.size(), -1);
      std::vector<const ShardPassing*> passing_at(directory->shards.size(), nullptr);
      std::vector<const ShardLocation*> shards;
      std::vector<ListCandidate> candidates;
      candidates.reserve(nearest[j].size());
      for (const ScanHit& hit : nearest[j]) {
        const auto shard = static_cast<size_t>(directory->table.shard_of[static_cast<size_t>(hit.row)]);
        if (slot_of[shard] == -2) continue;
        const ShardLocation* loc = directory->shards[shard];
        if (slot_of[shard] == -1) {
          if (filter.Pruned(loc->db_id) || outside(ranked[j], loc)) {
            slot_of[shard] = -2;
            continue;
          }
          ASSIGN_OR_RETURN(passing_at[shard], passing_of(loc));
          slot_of[shard] = static_cast<int32_t>(shards.size());
          shards.push_back(loc);
        }
        const std::vector<int64_t>& list_passing = passing_at[shard]->bitmap->list_passing;
        const int32_t list = directory->table.list_of[static_cast<size_t>(hit.row)];
        if (static_cast<size_t>(list) >= list_passing.size()) continue;
        candidates.push_back(ListCandidate{hit.score, slot_of[shard], list, list_passing[static_cast<size_t>(list)]});
      }
      std::vector<std::vector<int32_t>> lists =
          PickFilteredSublists(std::move(candidates), *plan.sublist_budget, plan.filter_need, shards.size());
      plan.shards.clear();
      plan.lists.clear();
      for (size_t slot = 0; slot < shards.size(); ++slot) {
        if (lists[slot].empty()) continue;
        plan.shards.push_back(shards[slot]);
        plan.lists.push_back(std::move(lists[slot]));
        if (!routed.contains(shards[slot])) ++plan.extra_probes;
      }
      plan.scanned.assign(plan.shards.size(), {});
      plan.whole_shards = plan.shards.size();
    }
    return Status::OK();
  }

  // The snapshot's ListDirectory, made on first use from every shard's sub-lists (each shard opened).
  Result<std::shared_ptr<const Snapshot::ListDirectory>> Directory(const Snapshot& snap) {
    std::lock_guard<std::mutex> lock(snap.directory_mu);
    if (snap.directory) return snap.directory;
    auto directory = std::make_shared<Snapshot::ListDirectory>();
    const LoadedSnapshot& s = *snap.loaded;
    for (const auto& [id, loc] : s.shards) {
      Result<ShardLease> lease = snap.cache->Acquire(loc);
      EmitDownloads(*snap.cache);
      if (!lease.ok()) {
        EnforceCacheBudgetAfterDownloads();
        return lease.status();
      }
      if (const SubLists* lists = lease->searcher().sublists()) {
        directory->table.Add(static_cast<int32_t>(directory->shards.size()), *lists, s.dim);
        directory->shards.push_back(&loc);
      }
    }
    EnforceCacheBudgetAfterDownloads();
    RETURN_IF_ERROR(directory->table.Finish(s.dim, s.metric));
    snap.directory = directory;
    return snap.directory;
  }

  void EmitSearch(int64_t top_k, const SearchResponse& r) {
    EmitMetric(*metrics_, metric_events::kSearch,
               {{"top_k", top_k}, {"num_shards_queried", r.num_shards_queried},
                {"num_results", static_cast<int64_t>(r.results.size())}, {"elapsed_ms", r.latency_ms}});
  }

  void EmitDownloads(ShardCache& cache) {
    if (!metrics_) return;
    for (const ShardDownload& d : cache.TakeDownloads()) {
      EmitMetric(*metrics_, metric_events::kShardDownload,
                 {{"shard_id", d.db_id}, {"bytes", d.bytes}, {"elapsed_ms", d.elapsed_ms}});
    }
  }

  // Merges each query's scanned lists into its top_k, then resolves the winners' ids and payloads
  // with one lookup per shard for all queries (in parallel across shards when `parallel`).
  Result<std::vector<SearchResponse>> Finish(const Snapshot& snap, const std::vector<QueryPlan>& plans,
                                             int64_t top_k, bool parallel) {
    struct Winners {
      std::vector<ScanHit> hits;
      std::vector<std::pair<size_t, size_t>> places;  // (query, rank) each hit fills
    };
    std::vector<SearchResponse> responses(plans.size());
    std::map<const ShardLocation*, Winners> by_shard;
    for (size_t q = 0; q < plans.size(); ++q) {
      const std::vector<MergedRef> merged = MergeTopK(plans[q].scanned, top_k);
      responses[q].results.resize(merged.size());
      responses[q].num_shards_queried = static_cast<int64_t>(plans[q].shards.size());
      for (const ShardLocation* loc : plans[q].shards) responses[q].shard_ids.push_back(loc->db_id);
      for (size_t rank = 0; rank < merged.size(); ++rank) {
        Winners& w = by_shard[plans[q].shards[merged[rank].list]];
        w.hits.push_back(plans[q].scanned[merged[rank].list][merged[rank].index]);
        w.places.emplace_back(q, rank);
      }
    }
    std::vector<std::function<Status()>> lookups;
    for (const auto& [loc, winners] : by_shard) {
      lookups.push_back([&, loc = loc, w = &winners]() -> Status {
        ASSIGN_OR_RETURN(ShardLease lease, snap.cache->Acquire(*loc));
        ASSIGN_OR_RETURN(std::vector<ShardHit> hits, lease.searcher().Resolve(w->hits));
        for (size_t i = 0; i < hits.size(); ++i) {
          const auto [q, rank] = w->places[i];
          responses[q].results[rank] = SearchHit{std::move(hits[i].id), hits[i].score, std::move(hits[i].payload_json)};
        }
        return Status::OK();
      });
    }
    if (!parallel) {
      for (auto& lookup : lookups) RETURN_IF_ERROR(lookup());
      return responses;
    }
    RETURN_IF_ERROR(pool_->RunAll(std::move(lookups)));
    return responses;
  }

  ReaderOptions options_;
  std::shared_ptr<ObjectStore> store_;
  std::shared_ptr<ManifestStore> manifests_;
  std::shared_ptr<ObjectStore> shard_store_;  // store_, or one with shard_store_options
  const std::shared_ptr<MetricsSink> metrics_ = options_.metrics;
  fs::path cache_root_;
  std::unique_ptr<ThreadPool> pool_;
  std::shared_ptr<ThreadPool> fetch_pool_;  // ranged reads' parts (null unless a tier may range)
  const std::shared_ptr<RangeReadCounters> range_counters_ = std::make_shared<RangeReadCounters>();
  const std::shared_ptr<DownloadCounters> download_counters_ = std::make_shared<DownloadCounters>();
  // Filtered searches' bitmaps kept across calls (options_.filter_cache_bytes).
  const std::unique_ptr<FilterBitmapCache> filter_cache_ = std::make_unique<FilterBitmapCache>(options_.filter_cache_bytes);
  std::atomic<uint64_t> generations_{0};  // snapshots made so far
  mutable std::mutex mu_;
  std::mutex refresh_mu_;
  std::mutex prune_mu_;
  std::atomic<int64_t> pruned_downloads_{0};  // downloads counted when the cache was last pruned
  std::shared_ptr<const Snapshot> current_;
  bool closed_ = false;
  // The last snapshot Refresh refused (another dim or metric) and why; refresh_mu_ guards them.
  std::string refused_ref_;
  Status refused_;
};

ShardedVectorReader::ShardedVectorReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ShardedVectorReader::~ShardedVectorReader() = default;

Result<std::unique_ptr<ShardedVectorReader>> ShardedVectorReader::Open(const ReaderOptions& options,
                                                                     std::shared_ptr<ObjectStore> store) {
  RETURN_IF_ERROR(CheckThreadCount("max_workers", options.max_workers));
  RETURN_IF_ERROR(UseSqliteVec("vec0_path", options.vec0_path));
  if (!store) {
    ASSIGN_OR_RETURN(store, OpenStore(options.store, options.store_options));
  }
  if (options.max_fallback_attempts < 0) {
    return Status::InvalidArgument(fmt::format("max_fallback_attempts must be >= 0 (got {})", options.max_fallback_attempts));
  }
  RETURN_IF_ERROR(CheckTierOptions(options));
  std::shared_ptr<ObjectStore> shard_store = store;
  if (options.shard_store_options) {
    ASSIGN_OR_RETURN(shard_store, OpenStore(options.store, *options.shard_store_options));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool,
                   ThreadPool::Create(ThreadPool::DefaultSize(options.max_workers), "the reader's searches (max_workers)"));
  std::shared_ptr<ThreadPool> fetch_pool;
  if (options.reader_mode != ReaderMode::kDownload) {
    ASSIGN_OR_RETURN(fetch_pool, ThreadPool::Create(kRangeFetchThreads, "the reader's ranged reads"));
  }
  auto impl = std::make_unique<Impl>(options, std::move(store), std::move(shard_store), std::move(pool),
                                     std::move(fetch_pool));
  RETURN_IF_ERROR(impl->Load());
  impl->EmitInitialized();
  return std::unique_ptr<ShardedVectorReader>(new ShardedVectorReader(std::move(impl)));
}

Result<SearchResponse> ShardedVectorReader::Search(std::span<const float> query, int64_t top_k,
                                                   const SearchOptions& options) {
  return impl_->Search(query, top_k, options);
}

Result<std::vector<SearchResponse>> ShardedVectorReader::BatchSearch(MatrixView queries, int64_t top_k,
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

ReadStats ShardedVectorReader::Stats() const { return impl_->Stats(); }

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
