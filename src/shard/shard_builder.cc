#include "shard/shard_builder.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "common/digest.h"
#include "common/sqlite/sqlite_statement.h"
#include "common/json_text.h"
#include "common/status_macros.h"
#include "shard/filter_column_builder.h"
#include "shard/filter_column_table.h"
#include "shard/row_spool.h"
#include "shard/sq8_table.h"
#include "shard/sqlite_vec.h"
#include "shard/sublists.h"
#include "shard/vec0_chunk_writer.h"
#include "shard/vec0_storage.h"

namespace shardvec {

std::string EncodeOriginalId(const RecordId& id) {
  if (const auto* i = std::get_if<int64_t>(&id)) return fmt::format("{{\"v\": {}, \"t\": \"int\"}}", *i);
  const std::string quoted = nlohmann::json(std::get<std::string>(id)).dump(-1, ' ', true);
  return fmt::format("{{\"v\": {}, \"t\": \"str\"}}", quoted);
}

int64_t DefaultChunkSize(int64_t dim) {
  // A multiple of 8 (vec0 requires it) in [64, vec0's default].
  const int64_t fit = kChunkTargetBytes / (std::max<int64_t>(dim, 1) * static_cast<int64_t>(sizeof(float)));
  return std::clamp<int64_t>(fit / 8 * 8, 64, kVec0DefaultChunkSize);
}

int64_t ChunkSizeFor(int64_t dim, int64_t rows) {
  const int64_t largest = DefaultChunkSize(dim);
  if (rows <= 0) return largest;
  const int64_t chunks = (rows + largest - 1) / largest;
  const int64_t per_chunk = (rows + chunks - 1) / chunks;
  return (per_chunk + 7) / 8 * 8;  // <= largest, a multiple of 8
}

int64_t PageSizeFor(int64_t dim, int64_t rows) {
  if (rows <= 0) return kShardPageSize;
  const int64_t vector_bytes = rows * std::max<int64_t>(dim, 1) * static_cast<int64_t>(sizeof(float));
  int64_t page_size = kSmallestShardPageSize;
  while (page_size < kShardPageSize && page_size * 2 <= vector_bytes / 512) page_size *= 2;
  return page_size;
}

ShardBuilder::ShardBuilder(std::filesystem::path path, ShardBuildOptions options)
    : path_(std::move(path)), options_(options) {
  if (options_.hash_ids && options_.expected_rows > 0) id_hashes_.reserve(static_cast<size_t>(options_.expected_rows));
}

ShardBuilder::~ShardBuilder() {
  // The statements go before the connection closes.
  chunk_writer_.reset();
  spool_.reset();
  ResetStatements();
  if (db_ != nullptr) sqlite3_close(db_);
}

Result<std::unique_ptr<ShardBuilder>> ShardBuilder::Create(const std::filesystem::path& path,
                                                           const ShardBuildOptions& options) {
  RETURN_IF_ERROR(EnsureSqliteVecLoaded());
  if (std::filesystem::exists(path)) {
    return Status::AlreadyExists(fmt::format("shard build file '{}' already exists", path.string()));
  }
  std::unique_ptr<ShardBuilder> builder(new ShardBuilder(path, options));
  RETURN_IF_ERROR(builder->Open());
  return builder;
}

void ShardBuilder::ResetStatements() {
  insert_id_.reset();
  insert_vector_.reset();
  insert_payload_.reset();
}

Status ShardBuilder::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    Status st = Status::IOError(fmt::format("shard '{}': {}: {}", path_.string(), sql, err ? err : "?"));
    sqlite3_free(err);
    return st;
  }
  return Status::OK();
}

Status ShardBuilder::Open() {
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    return Status::IOError(fmt::format("cannot create shard '{}': {}", path_.string(),
                                       db_ ? sqlite3_errmsg(db_) : "out of memory"));
  }
  // page_size must precede the first table; the rest trade durability we do not need (the file is
  // sealed and uploaded whole, or thrown away) for insert speed.
  const int64_t page_size = options_.page_size > 0 ? options_.page_size : PageSizeFor(options_.dim, options_.expected_rows);
  RETURN_IF_ERROR(Exec(fmt::format("PRAGMA page_size={}", page_size).c_str()));
  RETURN_IF_ERROR(Exec("PRAGMA journal_mode=OFF"));
  RETURN_IF_ERROR(Exec("PRAGMA synchronous=OFF"));
  RETURN_IF_ERROR(Exec("PRAGMA locking_mode=EXCLUSIVE"));
  RETURN_IF_ERROR(Exec("PRAGMA temp_store=MEMORY"));
  RETURN_IF_ERROR(Exec("PRAGMA cache_size=-2048"));
  RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"));
  // vec0's default chunk size is left unsaid, so the DDL stays the reference's byte for byte.
  const int64_t chunk_size =
      options_.chunk_size > 0 ? options_.chunk_size : ChunkSizeFor(options_.dim, options_.expected_rows);
  const std::string chunk_option = chunk_size == kVec0DefaultChunkSize ? "" : fmt::format(", chunk_size={}", chunk_size);
  RETURN_IF_ERROR(Exec(fmt::format(
      "CREATE VIRTUAL TABLE IF NOT EXISTS vec_index USING vec0(embedding float[{}] distance_metric={}{})",
      options_.dim, MetricName(options_.metric), chunk_option).c_str()));
  RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS vec_payloads (rowid INTEGER PRIMARY KEY, payload TEXT NOT NULL)"));
  RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS vec_id_map (internal_id INTEGER PRIMARY KEY, original_id TEXT NOT NULL)"));
  RETURN_IF_ERROR(Exec("BEGIN"));
  auto prepare = [this](const char* sql, std::unique_ptr<SqliteStatement>* stmt) -> Status {
    *stmt = std::make_unique<SqliteStatement>(db_, sql);
    if (!(*stmt)->ok()) {
      return Status::Internal(fmt::format("shard '{}': cannot prepare '{}': {}", path_.string(), sql,
                                          sqlite3_errmsg(db_)));
    }
    return Status::OK();
  };
  RETURN_IF_ERROR(prepare("INSERT INTO vec_id_map(internal_id, original_id) VALUES (?, ?)", &insert_id_));
  if (options_.write_chunks_directly && IsKnownVec0Layout(db_)) {
    ASSIGN_OR_RETURN(chunk_writer_, Vec0ChunkWriter::Create(db_, options_.dim, chunk_size, path_.string()));
  } else {
    RETURN_IF_ERROR(prepare("INSERT INTO vec_index(rowid, embedding) VALUES (?, ?)", &insert_vector_));
  }
  RETURN_IF_ERROR(prepare("INSERT INTO vec_payloads(rowid, payload) VALUES (?, ?)", &insert_payload_));
  if (options_.sublists < 0 || options_.sublists > kMaxSublistsPerShard) {
    return Status::InvalidArgument(fmt::format("sublists_per_shard must be in 0..{} (got {})", kMaxSublistsPerShard,
                                               options_.sublists));
  }
  if (options_.sublists != 1) {
    ASSIGN_OR_RETURN(spool_, RowSpool::Create(path_, options_.dim));
  }
  if (!options_.filter_columns.empty()) filters_ = std::make_unique<FilterColumnsBuilder>(options_.filter_columns);
  return Status::OK();
}

Status ShardBuilder::Add(const RecordId& id, const float* vector,
                         const std::optional<std::string>& payload_json) {
  if (sealed_) return Status::Internal(fmt::format("shard '{}' is already sealed", path_.string()));
  if (filters_ != nullptr) RETURN_IF_ERROR(filters_->AddRow(id, payload_json));
  if (spool_ != nullptr) {
    RETURN_IF_ERROR(spool_->Add(id, vector, payload_json));
  } else {
    RETURN_IF_ERROR(Insert(next_rowid_, id, vector, payload_json));
  }
  (std::holds_alternative<int64_t>(id) ? saw_int_id_ : saw_str_id_) = true;
  ++next_rowid_;
  return Status::OK();
}

Status ShardBuilder::InsertSpooledRows() {
  RETURN_IF_ERROR(spool_->Finish());
  const int64_t rows = spool_->rows();
  const int64_t count = SublistCount(rows, options_.sublists);
  std::optional<SublistPlan> plan;
  if (count > 1) {
    ASSIGN_OR_RETURN(plan, PlanSublists(spool_->vector(0), rows, options_.dim, options_.metric, count));
  }
  RecordId id;
  std::optional<std::string> payload;
  for (int64_t rowid = 0; rowid < rows; ++rowid) {
    const int64_t row = plan ? plan->order[static_cast<size_t>(rowid)] : rowid;
    RETURN_IF_ERROR(spool_->Read(row, &id, &payload));
    RETURN_IF_ERROR(Insert(rowid, id, spool_->vector(row), payload));
  }
  spool_.reset();
  if (plan && plan->ranges.size() > 1) {
    RETURN_IF_ERROR(WriteSublistsTable(db_, *plan, path_.string()));
    sublist_count_ = static_cast<int64_t>(plan->ranges.size());
  }
  if (plan) row_order_ = std::move(plan->order);
  return Status::OK();
}

Status ShardBuilder::Insert(int64_t rowid, const RecordId& id, const float* vector,
                            const std::optional<std::string>& payload_json) {
  auto step = [this, rowid](SqliteStatement& stmt, std::string_view table) -> Status {
    if (stmt.Run() != SQLITE_DONE) {
      return Status::IOError(fmt::format("shard '{}': insert into {} (rowid {}) failed: {}",
                                         path_.string(), table, rowid, sqlite3_errmsg(db_)));
    }
    return Status::OK();
  };
  id_text_ = EncodeOriginalId(id);
  sqlite3_bind_int64(insert_id_->get(), 1, rowid);
  sqlite3_bind_text(insert_id_->get(), 2, id_text_.data(), static_cast<int>(id_text_.size()), SQLITE_STATIC);
  RETURN_IF_ERROR(step(*insert_id_, "vec_id_map"));
  if (options_.hash_ids) id_hashes_.push_back(Xxh3_64(id_text_));

  if (chunk_writer_ != nullptr) {
    RETURN_IF_ERROR(chunk_writer_->Add(rowid, vector));
  } else {
    sqlite3_bind_int64(insert_vector_->get(), 1, rowid);
    sqlite3_bind_blob(insert_vector_->get(), 2, vector, static_cast<int>(options_.dim * sizeof(float)),
                      SQLITE_STATIC);
    RETURN_IF_ERROR(step(*insert_vector_, "vec_index"));
  }

  if (payload_json) {
    sqlite3_bind_int64(insert_payload_->get(), 1, rowid);
    sqlite3_bind_text(insert_payload_->get(), 2, payload_json->data(), static_cast<int>(payload_json->size()),
                      SQLITE_STATIC);
    RETURN_IF_ERROR(step(*insert_payload_, "vec_payloads"));
  }
  return Status::OK();
}

std::string_view ShardBuilder::id_type() const {
  if (saw_int_id_ && saw_str_id_) return "mixed";
  if (saw_int_id_) return "int";
  return saw_str_id_ ? "str" : "";
}

Result<int64_t> ShardBuilder::Seal() {
  if (sealed_) return Status::Internal(fmt::format("shard '{}' is already sealed", path_.string()));
  sealed_ = true;
  if (spool_ != nullptr) RETURN_IF_ERROR(InsertSpooledRows());
  if (chunk_writer_ != nullptr) {
    RETURN_IF_ERROR(chunk_writer_->Finish());
    chunk_writer_.reset();
  }
  ResetStatements();
  if (options_.int8_codes && next_rowid_ > 0) RETURN_IF_ERROR(WriteSq8Tables(db_, options_.dim, options_.metric, path_.string()));
  if (filters_ != nullptr && next_rowid_ > 0) {
    const FilterColumns columns = filters_->Finish(row_order_);
    RETURN_IF_ERROR(WriteFilterColumnsTable(db_, columns, path_.string()));
    filter_stats_json_ = CompactJsonDumps(FilterColumnStats(columns));
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  RETURN_IF_ERROR(Exec("PRAGMA optimize"));
  if (sqlite3_close(db_) != SQLITE_OK) {
    return Status::IOError(fmt::format("cannot close shard '{}': {}", path_.string(), sqlite3_errmsg(db_)));
  }
  db_ = nullptr;
  std::error_code ec;
  const auto size = std::filesystem::file_size(path_, ec);
  if (ec) return Status::IOError(fmt::format("cannot stat shard '{}': {}", path_.string(), ec.message()));
  return static_cast<int64_t>(size);
}

}  // namespace shardvec
