// ShardSearcher: read-only KNN over one sealed shard (docs/architecture.md#search). The file is opened as an
// immutable URI with mmap covering the whole file; connections come from a small pool opened on
// demand, so several threads can scan the same shard at once. When the shard's vec0 storage is a
// layout we know (vec0_storage.h), its vectors are loaded once into memory and scanned by our own
// kernel (scan_kernel.h); otherwise every scan is vec0's KNN query.
#pragma once

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "shard/filter_columns.h"
#include "shard/scan_kernel.h"
#include "shard/sq8.h"
#include "shard/sublists.h"
#include "shardvec/status.h"
#include "store/ranged_object.h"
#include "shardvec/types.h"

namespace shardvec {

// sqlite-vec 0.1.9 refuses larger k in a KNN query.
inline constexpr int64_t kMaxKnnK = 4096;
inline constexpr int kDefaultShardConnections = 4;

struct ShardHit {
  RecordId id;
  double score = 0;                         // the sqlite-vec distance; lower is better
  std::optional<std::string> payload_json;  // the stored payload text, or none
  int64_t rowid = 0;                        // the internal rowid inside the shard
};

// How many rows a shard's tables hold.
struct ShardRowCounts {
  int64_t vectors = 0;  // vec_index (its vec_index_rowids table)
  int64_t ids = 0;      // vec_id_map
};

enum class ScanPath {
  kAuto,     // our kernel when the storage layout is recognised, else vec0's KNN
  kVec0Knn,  // always vec0's KNN query (the reference the kernel is tested against)
};

// The allowed rows up to which a filtered scan of a shard of `rows` rows takes the index path
// (ShardSearcher::set_filter_index_rows).
int64_t DefaultFilterIndexRows(int64_t rows);

class ShardSearcher {
 public:
  // Validates that `file` is an SQLite shard whose vec_index declares `dim` and `metric`
  // (Corruption naming `shard_name` otherwise; NotFound when the file is missing).
  // `max_connections` bounds the pool (at least 1).
  static Result<std::unique_ptr<ShardSearcher>> Open(
      const std::filesystem::path& file, int64_t dim, Metric metric, std::string_view shard_name,
      int max_connections = kDefaultShardConnections, ScanPath scan_path = ScanPath::kAuto);
  // Open for the file this process holds open as `fd`, which the searcher takes over (closed with
  // it, or at once on failure): every connection, including those opened later, reads that very
  // file, whatever `file` (named in messages) holds by then.
  // `mmap_size`: the bytes of the file SQLite maps (PRAGMA mmap_size); default the whole file.
  static Result<std::unique_ptr<ShardSearcher>> OpenPinned(
      int fd, const std::filesystem::path& file, int64_t dim, Metric metric, std::string_view shard_name,
      int max_connections = kDefaultShardConnections, ScanPath scan_path = ScanPath::kAuto,
      std::optional<int64_t> mmap_size = std::nullopt);
  // Open for a shard read in place through ranged reads (no local copy): SQLite reads its pages
  // through `object`'s page cache. A store error during a read is returned as that error.
  static Result<std::unique_ptr<ShardSearcher>> OpenRanged(
      std::shared_ptr<RangedObject> object, int64_t dim, Metric metric, std::string_view shard_name,
      int max_connections = kDefaultShardConnections, ScanPath scan_path = ScanPath::kAuto);
  // Open for a shard file on its own, outside a snapshot: the dimension and metric are the ones its
  // vec_index declares (Corruption naming `shard_name` when it declares none we can search).
  static Result<std::unique_ptr<ShardSearcher>> OpenDeclared(const std::filesystem::path& file,
                                                             std::string_view shard_name,
                                                             int max_connections = kDefaultShardConnections);
  ~ShardSearcher();
  ShardSearcher(const ShardSearcher&) = delete;
  ShardSearcher& operator=(const ShardSearcher&) = delete;

  // The k nearest rows to `query` (dim floats), ascending distance. k must be in 0..4096.
  // Thread-safe. Equals Resolve(Scan({query}, k)[0]).
  Result<std::vector<ShardHit>> Search(const float* query, int64_t k);
  // The k nearest rows to each query, ascending distance, ids not yet looked up; with the kernel,
  // one pass over the shard serves all the queries. Rows farther than max_distance are left out
  // (the kernel skips them early). Thread-safe.
  // `lists_of_query` (when not empty: one entry per query, sub-list indices ascending) limits each
  // query to those sub-lists of the shard; a batch reads each list once for all queries that scan it.
  // It is ignored by a shard without sub-lists (searched whole).
  // `allowed` (when not empty: a bitmap over the shard's rows, BitmapWords(rows) words, as a
  // FilterPredicate gives) limits every query to the rows whose bit is set: only those are scored, so
  // the answer is exactly the top k of the allowed rows searched (its lists' allowed rows, which may
  // be fewer than k; a filtered query given no list searches every allowed row of the shard). Refused
  // (FailedPrecondition) on a shard searched through vec0's KNN.
  Result<std::vector<std::vector<ScanHit>>> Scan(std::span<const float* const> queries, int64_t k,
                                                 double max_distance = std::numeric_limits<double>::infinity(),
                                                 std::span<const std::vector<int32_t>> lists_of_query = {},
                                                 std::span<const uint64_t> allowed = {});
  // The shard's sub-lists (shard/sublists.h), or null: none, or scans run on vec0's KNN.
  const SubLists* sublists() const { return sublists_ ? &*sublists_ : nullptr; }
  // The shard's filter columns (shard/filter_columns.h: row i is rowid i), or null: none, or scans
  // run on vec0's KNN.
  const FilterColumns* filter_columns() const { return filter_columns_ ? &*filter_columns_ : nullptr; }
  // The ids and payloads of `hits`, in their order (a rowid may repeat). Thread-safe.
  Result<std::vector<ShardHit>> Resolve(std::span<const ScanHit> hits);

  // The value of `key` in the shard's kv table (shardyfusion's unified KV + vector shards fill it;
  // vector snapshots leave it empty), or nullopt. Thread-safe.
  Result<std::optional<std::string>> GetKv(std::string_view key);

  // The rows of vec_index and vec_id_map (every page of both is read). Thread-safe.
  Result<ShardRowCounts> CountRows();

  // True when scans run on the in-memory kernel rather than vec0's KNN.
  bool uses_scan_kernel() const { return table_ != nullptr; }
  // True when the shard carries int8 codes (shardvec_sq8_* tables) and scans pre-scan them.
  bool uses_int8_codes() const { return sq8_ != nullptr; }
  // Bytes of vectors (and int8 codes and filter columns) held in memory for the kernel (0 with vec0's KNN).
  int64_t resident_bytes() const {
    return (table_ ? table_->vectors.bytes() : 0) + (sq8_ ? sq8_->bytes() : 0) +
           (filter_columns_ ? filter_columns_->bytes() : 0);
  }
  // A filtered query that searches every allowed row of the shard (no sub-lists, or its sub-lists
  // hold fewer than k allowed rows) scores exactly those rows, one by one, instead of scanning their
  // runs (the index path) when they are at most this many. Default DefaultFilterIndexRows(rows).
  // Set before searching: not synchronised with scans.
  void set_filter_index_rows(int64_t rows) { filter_index_rows_ = rows; }
  int64_t filter_index_rows() const;
  // Candidates the int8 pre-scan keeps per hit wanted (≥ 1; kDefaultRescoreOversample unless set).
  // Set before searching: not synchronised with scans.
  void set_rescore_oversample(int64_t oversample) { rescore_oversample_ = std::max<int64_t>(oversample, 1); }

  int64_t file_bytes() const { return file_bytes_; }
  int64_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  const std::string& shard_name() const { return shard_name_; }
  // Connections opened so far (for tests and stats).
  int open_connections() const;
  // What `PRAGMA mmap_size` answers on a connection of this searcher (for tests).
  Result<int64_t> MmapSize();

 private:
  struct Connection;
  class ConnectionLease;

  ShardSearcher(std::filesystem::path file, std::string uri, int pinned_fd, int64_t dim, Metric metric,
                std::string shard_name, int max_connections, int64_t file_bytes);
  // Open and OpenPinned: `uri` names the file for SQLite, `pinned_fd` (or -1) is closed with the searcher.
  // `ranged_name` (or empty): the RangedObject registration SQLite reads through.
  static Result<std::unique_ptr<ShardSearcher>> OpenUri(const std::filesystem::path& file, std::string uri,
                                                        int pinned_fd, int64_t file_bytes, int64_t dim,
                                                        Metric metric, std::string_view shard_name,
                                                        int max_connections, ScanPath scan_path,
                                                        std::optional<int64_t> mmap_size = std::nullopt,
                                                        std::string ranged_name = "");

  Result<std::unique_ptr<Connection>> OpenRawConnection() const;  // opened and hardened, nothing read
  Result<std::unique_ptr<Connection>> OpenConnection() const;
  Status ValidateSchema(Connection& conn) const;
  Result<std::unique_ptr<Connection>> BorrowConnection();
  void ReturnConnection(std::unique_ptr<Connection> conn);

  // The kernel's top k over `ranges` (all rows when empty; range_queries as ScanOptions'), through the
  // int8 pre-scan when the shard has codes and it pays.
  void ScanRanges(std::span<const float* const> queries, int64_t k, double max_distance,
                  std::span<const RowRange> ranges, std::span<const std::vector<int32_t>> range_queries,
                  std::vector<std::vector<ScanHit>>* out) const;
  Status RunKnn(Connection& conn, const float* query, int64_t k, std::vector<ScanHit>* rows) const;
  // Reads the whole id map into ids_ and whether vec_payloads has any row (kernel path only).
  Status LoadIdsAndPayloadPresence(Connection& conn);
  Status LookupIds(Connection& conn, const std::vector<int64_t>& rowids,
                   std::vector<std::optional<RecordId>>* ids) const;
  Status LookupPayloads(Connection& conn, const std::vector<int64_t>& rowids,
                        std::vector<std::optional<std::string>>* payloads) const;
  // Maps an SQLite failure to a Status naming this shard (Corruption for damaged files).
  Status SqliteError(Connection& conn, int rc, std::string_view what) const;

  const std::filesystem::path file_;
  const std::string uri_;
  const int pinned_fd_;
  const int64_t dim_;
  const Metric metric_;
  const std::string shard_name_;
  const int max_connections_;
  const int64_t file_bytes_;
  std::optional<int64_t> mmap_size_;  // none: the whole file
  std::string ranged_name_;           // set when SQLite reads through a RangedObject
  std::shared_ptr<void> ranged_registration_;  // ends that registration with the searcher
  std::unique_ptr<const ScanTable> table_;  // set when the kernel serves scans
  std::unique_ptr<const Sq8Codes> sq8_;      // set when the shard has int8 codes (with table_)
  int64_t rescore_oversample_ = kDefaultRescoreOversample;
  std::optional<int64_t> filter_index_rows_;  // none: DefaultFilterIndexRows
  std::optional<SubLists> sublists_;        // with the kernel, when the shard has them
  std::optional<FilterColumns> filter_columns_;  // with the kernel, when the shard has them
  // With the kernel, the id map is held in memory too, and payload lookups are skipped for a shard
  // without payloads: a query then touches SQLite only for payloads it returns.
  std::unordered_map<int64_t, RecordId> ids_;
  bool ids_in_memory_ = false;
  bool has_payloads_ = true;

  mutable std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int opened_ = 0;  // connections alive, idle or borrowed
};

// Decodes a vec_id_map value {"v": 10, "t": "int"} / {"v": "doc", "t": "str"};
// Corruption otherwise.
Result<RecordId> DecodeOriginalId(std::string_view text);

}  // namespace shardvec
