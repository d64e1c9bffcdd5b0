// ShardSearcher: read-only KNN over one sealed shard (spec §4.5). The file is opened as an
// immutable URI with mmap covering the whole file; connections come from a small pool opened on
// demand, so several threads can scan the same shard at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"
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

class ShardSearcher {
 public:
  // Validates that `file` is an SQLite shard whose vec_index declares `dim` and `metric`
  // (Corruption naming `shard_name` otherwise; NotFound when the file is missing).
  // `max_connections` bounds the pool (at least 1).
  static Result<std::unique_ptr<ShardSearcher>> Open(
      const std::filesystem::path& file, int64_t dim, Metric metric, std::string_view shard_name,
      int max_connections = kDefaultShardConnections);
  ~ShardSearcher();
  ShardSearcher(const ShardSearcher&) = delete;
  ShardSearcher& operator=(const ShardSearcher&) = delete;

  // The k nearest rows to `query` (dim floats), ascending distance. k must be in 0..4096.
  // Thread-safe.
  Result<std::vector<ShardHit>> Search(const float* query, int64_t k);

  int64_t file_bytes() const { return file_bytes_; }
  int64_t dim() const { return dim_; }
  Metric metric() const { return metric_; }
  const std::string& shard_name() const { return shard_name_; }
  // Connections opened so far (for tests and stats).
  int open_connections() const;

 private:
  struct Connection;
  class ConnectionLease;

  ShardSearcher(std::filesystem::path file, int64_t dim, Metric metric, std::string shard_name,
                int max_connections, int64_t file_bytes);

  Result<std::unique_ptr<Connection>> OpenConnection() const;
  Status ValidateSchema(Connection& conn) const;
  Result<std::unique_ptr<Connection>> BorrowConnection();
  void ReturnConnection(std::unique_ptr<Connection> conn);

  Status RunKnn(Connection& conn, const float* query, int64_t k,
                std::vector<std::pair<int64_t, double>>* rows) const;
  Status LookupIds(Connection& conn, const std::vector<int64_t>& rowids,
                   std::vector<std::optional<RecordId>>* ids) const;
  Status LookupPayloads(Connection& conn, const std::vector<int64_t>& rowids,
                        std::vector<std::optional<std::string>>* payloads) const;
  // Maps an SQLite failure to a Status naming this shard (Corruption for damaged files).
  Status SqliteError(Connection& conn, int rc, std::string_view what) const;

  const std::filesystem::path file_;
  const int64_t dim_;
  const Metric metric_;
  const std::string shard_name_;
  const int max_connections_;
  const int64_t file_bytes_;

  mutable std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int opened_ = 0;  // connections alive, idle or borrowed
};

// Decodes a vec_id_map value {"v": 10, "t": "int"} / {"v": "doc", "t": "str"};
// Corruption otherwise.
Result<RecordId> DecodeOriginalId(std::string_view text);

}  // namespace shardvec
