// ShardedVectorReader: pinned to one published snapshot until Refresh(); routes each query to a few
// shards, scans them in parallel on a shared pool, and merges one stable global top-k.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/admin.h"
#include "shardvec/metrics.h"
#include "shardvec/object_store.h"
#include "shardvec/shard_cache_admin.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

class ManifestStore;  // shardvec/manifest_store.h

// How a reader reaches a shard's bytes (its tier).
enum class ReaderMode {
  kDownload,  // download each probed shard once into cache_dir, verify it (size, digest), map it
  kRange,     // query each shard in place through ranged reads: only the pages a search needs are
              // fetched (into a per-shard page cache), nothing is written locally; the shard's size
              // is checked, its digest is not (that would need every byte)
  kAuto,      // per snapshot: kRange when any shard is >= auto_per_shard_threshold_bytes or all of
              // them add up to >= auto_total_budget_bytes, else kDownload
};
// "download" | "range" | "auto".
std::string_view ReaderModeName(ReaderMode mode);
// The mode a name spells; InvalidArgument naming `field` and the text otherwise.
Result<ReaderMode> ParseReaderMode(std::string_view text, std::string_view field = "reader_mode");
// What kAuto picks for shards of these sizes (kDownload or kRange).
ReaderMode ResolveReaderMode(ReaderMode mode, const std::vector<int64_t>& shard_bytes,
                             int64_t per_shard_threshold_bytes, int64_t total_budget_bytes);

inline constexpr int64_t kDefaultPageCachePages = 1024;
inline constexpr int64_t kDefaultAutoPerShardThresholdBytes = int64_t{16} << 20;  // 16 MiB
inline constexpr int64_t kDefaultAutoTotalBudgetBytes = int64_t{2} << 30;         // 2 GiB

inline constexpr int64_t kDefaultFilterCacheBytes = int64_t{64} << 20;  // 64 MiB

struct ReaderOptions {
  std::string store;  // prefix: a folder, file:///abs/path or s3://bucket/prefix
  StoreOptions store_options;  // how to reach an s3:// store
  // Where the current pointer and the manifests are read (open, refresh, fallback); null: the
  // object-store layout beside the shards (_CURRENT and manifests/… under `store`).
  std::shared_ptr<ManifestStore> manifest_store;
  // Where downloaded shards are cached; default $XDG_CACHE_HOME/shardvec/shards/<hash of the store
  // URL> (or ~/.cache/shardvec/shards/…). Created 0700; refused unless owned by this user and not
  // writable by group or others. Partial downloads killed readers left in it are removed at open.
  std::string cache_dir;
  int64_t max_workers = 0;            // search threads, 0..1024; 0 = one per usable CPU
  int64_t max_fallback_attempts = 3;  // older manifests tried when the current one does not parse
  int64_t max_cached_shards = 0;      // open shards kept; 0 = unbounded
  // Download tier: the bytes cache_dir may hold (>= 0). After each refresh() and each download the
  // reader removes unused shard folders, least recently used first, until the folder holds at most
  // this (0: every unused one); a shard any live snapshot uses (this reader's, an older one an
  // in-flight search still holds, another process's reader's) is never removed, so the cache exceeds
  // the budget only by what live snapshots use. A folder store's shards are read in place and never
  // enter the cache. See include/shardvec/shard_cache_admin.h.
  int64_t max_cache_bytes = kDefaultMaxCacheBytes;
  bool preload_shards = false;
  // Filtered searches keep each searched shard's bitmap of passing rows, by shard and filter (its
  // compiled form: spacing and literal placement do not matter), in a least recently used cache of
  // at most this many bytes (>= 0; 0 keeps none), so a filter served again is not evaluated again.
  // The cache is emptied when refresh() moves to another snapshot.
  int64_t filter_cache_bytes = kDefaultFilterCacheBytes;
  // Open this published manifest instead of the one _CURRENT names: exactly one of run_id (its
  // newest manifest), ref (a manifest URL or its key), offset (0 = the newest manifest) or previous
  // (the one before the current), as for RollbackSnapshot. None found is an error naming the
  // selector (NotFound), and a chosen manifest that does not parse is an error (no fallback). Such
  // a reader stays on it: Refresh() returns false without reading _CURRENT.
  std::optional<RollbackTarget> manifest;
  // Receives the vector.reader.* metric events (include/shardvec/metrics.h); none when null.
  std::shared_ptr<MetricsSink> metrics;
  // The sqlite-vec 0.1.9 loadable extension (vec0.so). Empty: the SHARDVEC_VEC0_PATH environment
  // variable, else the Python package's sqlite-vec wheel (under Python), else the path the library
  // was configured with. A file that does not exist is refused naming vec0_path; vec0 loads once per
  // process, so a path other than the one already loaded is refused too.
  std::string vec0_path;

  // The tier (ReaderMode). A setting of a tier the reader does not use is refused (naming it).
  ReaderMode reader_mode = ReaderMode::kDownload;
  // Range tier: pages each open shard keeps in its LRU page cache (0: none, every read fetched).
  int64_t page_cache_pages = kDefaultPageCachePages;
  // Auto: the thresholds of ReaderMode::kAuto (> 0).
  int64_t auto_per_shard_threshold_bytes = kDefaultAutoPerShardThresholdBytes;
  int64_t auto_total_budget_bytes = kDefaultAutoTotalBudgetBytes;
  // Download tier: SQLite's PRAGMA mmap_size on each shard (>= 0; 0 turns mapping off); none maps
  // the whole file.
  std::optional<int64_t> mmap_size;
  // When set, shards are read with these connection settings instead of store_options (manifests
  // and the pointer still with store_options); an s3:// store only.
  std::optional<StoreOptions> shard_store_options;
};

// What reading shards has cost so far, over every snapshot this reader served.
struct ReadStats {
  ReaderMode reader_mode = ReaderMode::kDownload;  // the current snapshot's tier (kAuto resolved)
  int64_t range_bytes_fetched = 0;  // range tier: bytes of ranged GETs (a shard's HEAD not counted)
  int64_t range_requests = 0;
  int64_t shards_downloaded = 0;    // download tier
  int64_t bytes_downloaded = 0;
  // Filtered searches: bitmaps of passing rows evaluated over a shard's filter columns (one per
  // shard and filter in a call), and those taken from the cache instead (filter_cache_bytes).
  int64_t filter_bitmaps_evaluated = 0;
  int64_t filter_bitmaps_reused = 0;
};

// Every option given must take effect, or the search is refused (InvalidArgument naming it).
struct SearchOptions {
  // Default: the manifest's num_probes (capped at what the routing can probe). A given value above
  // what the snapshot's routing can probe (num_dbs; 1 + hash bits for LSH; 1 for CEL) is refused.
  std::optional<int64_t> num_probes;
  // Bypasses routing for every strategy; num_probes and routing_context cannot be given with it.
  std::optional<std::vector<int64_t>> shard_ids;
  // CEL snapshots: the query's variables; they select the one shard searched. Refused on others.
  std::optional<RoutingContext> routing_context;
  // Snapshots built with sub-lists: how many sub-lists are scanned, the nearest across the candidate
  // shards (or across shard_ids). Default: it follows num_probes (ceil(num_probes x the sub-lists per
  // shard / 6), among the 2 x num_probes nearest shards); a num_probes that reaches every shard scans
  // every row, as without sub-lists. Must be >= 1; refused on a snapshot without sub-lists.
  std::optional<int64_t> sublist_probes;
  // A filter over the snapshot's filter columns (README "Filtered search"), e.g.
  // "lang == 'en' && year >= 2020 && 'sale' in tags": only rows it passes are scored, so the results
  // are exactly the filtered top k of the shards searched. When the routed shards hold fewer than
  // top_k passing rows, further shards are searched in routing order until top_k are found or every
  // shard was searched (SearchResponse::shard_ids says which).
  std::optional<std::string> filter;
  // With a filter: at most this many shards beyond the routed ones are searched to fill top_k
  // (default: no bound). Must be >= 0; refused without a filter.
  std::optional<int64_t> max_extra_probes;
};

struct SearchHit {
  RecordId id;
  double score = 0;  // sqlite-vec distance, lower is better
  // Always one valid JSON object nesting at most 512 levels, or none. A shard's stored payload that
  // is not one (not JSON, another JSON type, bytes that are not UTF-8, nested deeper) comes back as
  // {"__raw_payload__": "<the stored text>"}, bytes that are not UTF-8 replaced by U+FFFD.
  std::optional<std::string> payload_json;
};

struct SearchResponse {
  std::vector<SearchHit> results;
  int64_t num_shards_queried = 0;
  // The db ids of the shards searched (num_shards_queried of them), in the order they were probed.
  std::vector<int64_t> shard_ids;
  double latency_ms = 0;
};

struct SnapshotInfo {
  std::string run_id;
  int64_t num_dbs = 0;
  int64_t dim = 0;
  Metric metric = Metric::kCosine;
  Strategy strategy = Strategy::kExplicit;
  int64_t num_probes = 1;
  std::string manifest_ref;
  int64_t total_vectors = 0;
  std::string created_at;
  std::string published_at;  // _CURRENT's updated_at (or the manifest's timestamp after fallback)
  // CEL snapshots: the expression, its variables' types and the categorical tokens, if any.
  std::string cel_expr;
  std::map<std::string, std::string> cel_columns;
  std::optional<std::vector<RoutingValue>> routing_values;
};

struct ShardDetail {
  int64_t db_id = 0;
  std::optional<std::string> db_url;  // none for an empty shard
  int64_t vector_count = 0;
  int64_t db_bytes = 0;
  std::optional<std::string> checkpoint_id;
  std::optional<std::string> digest;
};

struct ReaderHealth {
  std::string status;  // "healthy" | "degraded" | "unhealthy"
  std::optional<std::string> manifest_ref;
  std::optional<double> manifest_age_seconds;
  int64_t num_shards = 0;
  bool is_closed = false;
};

class ShardedVectorReader {
 public:
  static Result<std::unique_ptr<ShardedVectorReader>> Open(const ReaderOptions& options,
                                                           std::shared_ptr<ObjectStore> store = nullptr);
  ~ShardedVectorReader();

  Result<SearchResponse> Search(std::span<const float> query, int64_t top_k,
                                const SearchOptions& options = {});
  // Runs every row of `queries` in parallel across the pool; results in row order. The rows are
  // read where they are (a Matrix converts to a view), never copied.
  Result<std::vector<SearchResponse>> BatchSearch(MatrixView queries, int64_t top_k,
                                                  const SearchOptions& options = {});
  // The shards a query would probe (routing only).
  Result<std::vector<int64_t>> Route(std::span<const float> query,
                                     std::optional<int64_t> num_probes = std::nullopt,
                                     const std::optional<RoutingContext>& routing_context = std::nullopt);
  // Re-reads _CURRENT and swaps to the snapshot it names, atomically. False when nothing changed;
  // an error when the new snapshot could not be loaded (the old one keeps serving).
  Result<bool> Refresh();
  void Close();  // idempotent

  SnapshotInfo Info() const;
  std::vector<ShardDetail> ShardDetails() const;
  ReadStats Stats() const;
  ReaderHealth Health(std::optional<std::chrono::seconds> staleness_threshold = std::nullopt) const;

  class Impl;

 private:
  explicit ShardedVectorReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shardvec
