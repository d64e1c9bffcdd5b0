// ShardBuilder writes one shard: a fresh SQLite file with the exact schema in docs/snapshot-format.md, 64 KiB pages
// set before the schema, journal off, and every row inserted in a single transaction.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shard/filter_columns.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

struct sqlite3;

namespace shardvec {

inline constexpr int64_t kShardPageSize = 65536;

struct ShardBuildOptions {
  int64_t dim = 0;
  Metric metric = Metric::kCosine;
  int64_t page_size = kShardPageSize;  // 0 = PageSizeFor(dim, expected_rows)
  int64_t chunk_size = 0;  // vec0 vectors per chunk; 0 = ChunkSizeFor(dim, expected_rows)
  // The rows the caller will add, when it knows them (0 = unknown): sizes the chunks so the last one
  // is not mostly empty. Adding more or fewer rows still builds a valid shard, only a less compact one.
  int64_t expected_rows = 0;
  // Fill vec0's storage a chunk at a time (Vec0ChunkWriter) when its layout is one we know; false
  // inserts every row through vec0 (the tests compare the two).
  bool write_chunks_directly = true;
  // Write int8 codes of every row (shardvec_sq8_* tables, sq8_table.h) at Seal, for the reader's
  // quantized pre-scan.
  bool int8_codes = false;
  // Sub-lists (shard/sublists.h): 0 = auto (about sqrt(rows), none for small shards), 1 = none, n = at
  // most n. With sub-lists, rows are parked in a spool beside the file until Seal, which clusters them
  // and inserts them list by list (memory: about 20 bytes per row besides the mapped spool). The
  // writer passes its config's sublists_per_shard (default auto).
  int64_t sublists = 1;
  // Filter columns (shard/filter_columns.h): each row's values taken from its payload as it is added
  // (a value of another type fails Add), written at Seal in the final rowid order to the
  // shardvec_filter_columns table (filter_column_table.h). Empty: no such table.
  std::vector<FilterColumnSpec> filter_columns = {};
  // Keep each row's id hash (xxh3 of its id-map text: IdIndexHash, write/id_index.h) for the
  // snapshot's id index, 8 bytes per row, taken with TakeIdHashes after Seal. No id text is kept.
  bool hash_ids = false;
};

// vec0 rewrites a chunk's blob through its overflow pages on every insert, so large chunks make
// high-dimensional inserts slow (docs/snapshot-format.md#shard-files): chunks are kept near kChunkTargetBytes.
inline constexpr int64_t kVec0DefaultChunkSize = 1024;
inline constexpr int64_t kChunkTargetBytes = int64_t{1} << 20;
int64_t DefaultChunkSize(int64_t dim);
// The chunk size for `rows` rows (0 = unknown: DefaultChunkSize(dim)): as few chunks as
// DefaultChunkSize allows, filled evenly, so at most 7 slots per chunk stay empty; a multiple of 8.
int64_t ChunkSizeFor(int64_t dim, int64_t rows);

// A shard holds about ten tables and indexes of at least one page each, so 64 KiB pages make a small
// shard mostly empty pages. The page size for `rows` rows (0 = unknown: kShardPageSize): the largest
// power of two in [kSmallestShardPageSize, kShardPageSize] that is at most 1/512 of the rows' vector
// bytes, which keeps the pages every shard needs to about 2% of it.
inline constexpr int64_t kSmallestShardPageSize = 4096;
int64_t PageSizeFor(int64_t dim, int64_t rows);

class SqliteStatement;
class Vec0ChunkWriter;
class RowSpool;
class FilterColumnsBuilder;

class ShardBuilder {
 public:
  // Fails if `path` already exists: a build directory is never reused.
  static Result<std::unique_ptr<ShardBuilder>> Create(const std::filesystem::path& path,
                                                      const ShardBuildOptions& options);
  ~ShardBuilder();
  ShardBuilder(const ShardBuilder&) = delete;
  ShardBuilder& operator=(const ShardBuilder&) = delete;

  // Rows get internal ids 0, 1, 2… in the order they are added (with sub-lists: in the order of
  // their lists, each list's rows in the order they were added). `payload_json` must already be the
  // canonical text to store.
  Status Add(const RecordId& id, const float* vector, const std::optional<std::string>& payload_json);
  // Commits, runs PRAGMA optimize and closes the file. Returns the file size in bytes.
  Result<int64_t> Seal();

  int64_t row_count() const { return next_rowid_; }
  // The sub-lists the shard was given (0: none; set by Seal).
  int64_t sublist_count() const { return sublist_count_; }
  // The filter columns' statistics (FilterColumnStats) as compact JSON text, set by Seal; empty
  // without filter columns or rows.
  const std::string& filter_stats_json() const { return filter_stats_json_; }
  // The ids' type: "int", "str", "mixed" (both), or "" before the first row.
  std::string_view id_type() const;
  // With options.hash_ids, every row's id hash (in rowid order), moved out; empty otherwise.
  std::vector<uint64_t> TakeIdHashes() { return std::move(id_hashes_); }
  // Whether vectors go straight into vec0's chunks (see ShardBuildOptions::write_chunks_directly).
  bool writes_chunks_directly() const { return chunk_writer_ != nullptr; }

 private:
  ShardBuilder(std::filesystem::path path, ShardBuildOptions options);
  Status Open();
  Status Exec(const char* sql);
  // Writes one row under `rowid`.
  Status Insert(int64_t rowid, const RecordId& id, const float* vector, const std::optional<std::string>& payload_json);
  // Seal's first step with a spool: the rows clustered into sub-lists and inserted list by list.
  Status InsertSpooledRows();
  // Finalizes the insert statements (before COMMIT, and before the connection closes).
  void ResetStatements();

  std::filesystem::path path_;
  ShardBuildOptions options_;
  sqlite3* db_ = nullptr;
  std::unique_ptr<SqliteStatement> insert_id_;
  std::unique_ptr<SqliteStatement> insert_vector_;
  std::unique_ptr<SqliteStatement> insert_payload_;
  std::unique_ptr<Vec0ChunkWriter> chunk_writer_;  // null: insert_vector_ goes through vec0
  std::unique_ptr<RowSpool> spool_;  // set while rows wait for their sub-lists
  std::unique_ptr<FilterColumnsBuilder> filters_;  // set with filter columns
  std::vector<int64_t> row_order_;  // with sub-lists: rowid i holds the row added row_order_[i]-th
  std::string filter_stats_json_;
  int64_t next_rowid_ = 0;
  int64_t sublist_count_ = 0;
  bool saw_int_id_ = false;
  bool saw_str_id_ = false;
  bool sealed_ = false;
  std::string id_text_;  // reused buffer for the id map JSON
  std::vector<uint64_t> id_hashes_;  // with options_.hash_ids
};

// The id map's JSON for an original id: {"v": 10, "t": "int"} or {"v": "doc", "t": "str"}.
std::string EncodeOriginalId(const RecordId& id);

}  // namespace shardvec
