#include "shard/vec0_storage.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "common/sqlite/sqlite_statement.h"
#include "common/status_macros.h"

namespace shardvec {
namespace {

// The shadow tables exactly as sqlite-vec v0.1.9 declares them for a table named vec_index.
constexpr std::string_view kChunksDdl =
    "CREATE TABLE \"vec_index_chunks\"(chunk_id INTEGER PRIMARY KEY AUTOINCREMENT,size INTEGER NOT "
    "NULL,validity BLOB NOT NULL,rowids BLOB NOT NULL)";
constexpr std::string_view kRowidsDdl =
    "CREATE TABLE \"vec_index_rowids\"(rowid INTEGER PRIMARY KEY AUTOINCREMENT,id,chunk_id INTEGER,"
    "chunk_offset INTEGER)";
constexpr std::string_view kVectorChunksDdl =
    "CREATE TABLE \"vec_index_vector_chunks00\"(rowid PRIMARY KEY,vectors BLOB NOT NULL)";

struct Chunk {
  int64_t id = 0;
  int64_t slots = 0;
  std::string validity;  // one bit per slot, least significant first
  std::string rowids;    // one little-endian int64 per slot
};

bool SlotValid(const Chunk& chunk, int64_t slot) { return Vec0SlotValid(chunk.validity, slot); }

// The sql of every schema object whose name starts with vec_index, by name.
std::vector<std::pair<std::string, std::string>> VecIndexObjects(sqlite3* db) {
  std::vector<std::pair<std::string, std::string>> out;
  SqliteStatement stmt(db, "SELECT name, sql FROM sqlite_master WHERE name LIKE 'vec\\_index%' ESCAPE '\\'");
  if (!stmt.ok()) return out;
  while (stmt.Step() == SQLITE_ROW) out.emplace_back(stmt.Text(0), stmt.Text(1));
  return out;
}

// True when vec_index's arguments are only the `embedding float[N]` column (with its
// distance_metric) and chunk_size.
bool OnlyPlainArguments(const std::string& create_sql) {
  const size_t open = create_sql.find('(');
  const size_t close = create_sql.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  // "embedding float[N] [distance_metric=M]" or "chunk_size=N", each argument on its own.
  static const std::regex kPlain(
      R"(\s*(embedding\s+float\s*\[\s*\d+\s*\](\s+distance_metric\s*=\s*['"]?[A-Za-z0-9_]+['"]?)?|chunk_size\s*=\s*\d+)\s*)",
      std::regex::icase);
  const std::string args = create_sql.substr(open + 1, close - open - 1);
  size_t start = 0;
  while (start <= args.size()) {
    const size_t comma = std::min(args.find(',', start), args.size());
    if (!std::regex_match(args.substr(start, comma - start), kPlain)) return false;
    start = comma + 1;
  }
  return true;
}

}  // namespace

bool IsKnownVec0Layout(sqlite3* db) {
  SqliteStatement version(db, "SELECT value FROM vec_index_info WHERE key = 'CREATE_VERSION'");
  if (!version.ok() || version.Step() != SQLITE_ROW) return false;
  const std::string created_by = version.Text(0);
  if (std::find(std::begin(kKnownVec0Versions), std::end(kKnownVec0Versions), created_by) ==
      std::end(kKnownVec0Versions)) {
    return false;
  }
  bool chunks = false, rowids = false, vector_chunks = false, plain = false;
  for (const auto& [name, sql] : VecIndexObjects(db)) {
    if (name == "vec_index") plain = OnlyPlainArguments(sql);
    if (name == "vec_index_chunks") chunks = sql == kChunksDdl;
    if (name == "vec_index_rowids") rowids = sql == kRowidsDdl;
    if (name == "vec_index_vector_chunks00") vector_chunks = sql == kVectorChunksDdl;
    if (name.starts_with("vec_index_vector_chunks") && name != "vec_index_vector_chunks00") return false;
  }
  return chunks && rowids && vector_chunks && plain;
}

namespace {

class Loader {
 public:
  Loader(sqlite3* db, int64_t dim, Metric metric, std::string_view shard_name, const RowArranger& arrange)
      : db_(db), dim_(dim), metric_(metric), shard_name_(shard_name), arrange_(arrange) {}

  Result<ScanTable> Load() {
    ASSIGN_OR_RETURN(std::vector<Chunk> chunks, ReadChunks());
    // Every valid slot's rowid, in vec0's scan order.
    std::vector<int64_t> slot_rowids;
    for (const Chunk& chunk : chunks) {
      for (int64_t slot = 0; slot < chunk.slots; ++slot) {
        if (!SlotValid(chunk, slot)) continue;
        int64_t rowid;
        std::memcpy(&rowid, chunk.rowids.data() + slot * 8, sizeof(rowid));
        slot_rowids.push_back(rowid);
      }
    }
    const auto rows = static_cast<int64_t>(slot_rowids.size());
    ASSIGN_OR_RETURN(const int64_t expected, CountRowids());
    if (rows != expected) {
      return Corrupt(fmt::format("vec0 chunks hold {} valid rows but vec_index_rowids has {}", rows, expected));
    }
    ScanTable table;
    table.metric = metric_;
    table.vectors = ScanMatrix(rows, dim_);
    if (arrange_) {
      ASSIGN_OR_RETURN(table.slots, arrange_(slot_rowids));
      if (!table.slots.empty() && static_cast<int64_t>(table.slots.size()) != rows) {
        return Status::Internal(fmt::format("shard {}: {} rows arranged, {} expected", shard_name_,
                                            table.slots.size(), rows));
      }
    }
    // The row each slot fills.
    std::vector<int64_t> row_of_slot;
    if (!table.slots.empty()) {
      row_of_slot.assign(static_cast<size_t>(rows), -1);
      for (int64_t row = 0; row < rows; ++row) {
        const int64_t slot = table.slots[static_cast<size_t>(row)];
        if (slot < 0 || slot >= rows || row_of_slot[static_cast<size_t>(slot)] >= 0) {
          return Status::Internal(fmt::format("shard {}: the rows' arrangement is not a permutation", shard_name_));
        }
        row_of_slot[static_cast<size_t>(slot)] = row;
      }
    }
    table.rowids.resize(static_cast<size_t>(rows));
    for (int64_t slot = 0; slot < rows; ++slot) {
      const int64_t row = row_of_slot.empty() ? slot : row_of_slot[static_cast<size_t>(slot)];
      table.rowids[static_cast<size_t>(row)] = slot_rowids[static_cast<size_t>(slot)];
    }
    RETURN_IF_ERROR(CopyVectors(chunks, row_of_slot, &table));
    OrderColumnsBySpread(&table);
    if (metric_ == Metric::kCosine) {
      ComputeNorms(&table);
      for (size_t i = 0; i < table.norms.size(); ++i) {
        if (table.norms[i] == 0) return Corrupt(fmt::format("rowid {} is a zero vector under cosine", table.rowids[i]));
      }
    }
    return table;
  }

 private:
  Status Corrupt(std::string what) const {
    return Status::Corruption(fmt::format("shard {}: {}", shard_name_, what));
  }
  Status SqlError(std::string_view what) const {
    return Corrupt(fmt::format("reading {} failed: {}", what, sqlite3_errmsg(db_)));
  }

  Result<std::vector<Chunk>> ReadChunks() const {
    SqliteStatement stmt(db_, "SELECT chunk_id, size, validity, rowids FROM vec_index_chunks ORDER BY chunk_id");
    if (!stmt.ok()) return SqlError("vec_index_chunks");
    std::vector<Chunk> chunks;
    int rc;
    while ((rc = stmt.Step()) == SQLITE_ROW) {
      Chunk chunk;
      chunk.id = sqlite3_column_int64(stmt.get(), 0);
      chunk.slots = sqlite3_column_int64(stmt.get(), 1);
      chunk.validity = std::string(stmt.Blob(2));
      chunk.rowids = std::string(stmt.Blob(3));
      if (chunk.slots <= 0 || chunk.slots % 8 != 0 || chunk.slots > (int64_t{1} << 20)) {
        return Corrupt(fmt::format("vec0 chunk {} has size {}", chunk.id, chunk.slots));
      }
      if (static_cast<int64_t>(chunk.validity.size()) != chunk.slots / 8 ||
          static_cast<int64_t>(chunk.rowids.size()) != chunk.slots * 8) {
        return Corrupt(fmt::format(
            "vec0 chunk {} of size {} has a {}-byte validity bitmap and {} bytes of rowids", chunk.id,
            chunk.slots, chunk.validity.size(), chunk.rowids.size()));
      }
      chunks.push_back(std::move(chunk));
    }
    if (rc != SQLITE_DONE) return SqlError("vec_index_chunks");
    return chunks;
  }

  Result<int64_t> CountRowids() const {
    SqliteStatement stmt(db_, "SELECT count(*) FROM vec_index_rowids");
    if (!stmt.ok() || stmt.Step() != SQLITE_ROW) return SqlError("vec_index_rowids");
    return sqlite3_column_int64(stmt.get(), 0);
  }

  // Copies every valid slot's vector into its row (row_of_slot; empty: the slot's own number).
  Status CopyVectors(const std::vector<Chunk>& chunks, const std::vector<int64_t>& row_of_slot, ScanTable* table) const {
    SqliteStatement stmt(db_, "SELECT vectors FROM vec_index_vector_chunks00 WHERE rowid = ?");
    if (!stmt.ok()) return SqlError("vec_index_vector_chunks00");
    const size_t row_bytes = static_cast<size_t>(dim_) * sizeof(float);
    int64_t next_slot = 0;
    for (const Chunk& chunk : chunks) {
      table->chunk_starts.push_back(next_slot);
      sqlite3_reset(stmt.get());
      sqlite3_bind_int64(stmt.get(), 1, chunk.id);
      const int rc = stmt.Step();
      if (rc == SQLITE_DONE) return Corrupt(fmt::format("vec0 chunk {} has no vectors", chunk.id));
      if (rc != SQLITE_ROW) return SqlError("vec_index_vector_chunks00");
      const std::string_view vectors = stmt.Blob(0);
      if (vectors.size() != static_cast<size_t>(chunk.slots) * row_bytes) {
        return Corrupt(fmt::format("vec0 chunk {} holds {} bytes of vectors, expected {} slots × {} floats",
                                   chunk.id, vectors.size(), chunk.slots, dim_));
      }
      for (int64_t slot = 0; slot < chunk.slots; ++slot) {
        if (!SlotValid(chunk, slot)) continue;
        const int64_t row = row_of_slot.empty() ? next_slot : row_of_slot[static_cast<size_t>(next_slot)];
        ++next_slot;
        float* dst = table->vectors.row(row);
        std::memcpy(dst, vectors.data() + static_cast<size_t>(slot) * row_bytes, row_bytes);
        if (!std::all_of(dst, dst + dim_, [](float v) { return std::isfinite(v); })) {
          return Corrupt(fmt::format("rowid {} has a NaN or infinite value", table->rowids[static_cast<size_t>(row)]));
        }
      }
    }
    return Status::OK();
  }

  sqlite3* db_;
  int64_t dim_;
  Metric metric_;
  std::string_view shard_name_;
  const RowArranger& arrange_;
};

}  // namespace

Result<std::optional<ScanTable>> LoadVec0Table(sqlite3* db, int64_t dim, Metric metric,
                                               std::string_view shard_name, const RowArranger& arrange) {
  static_assert(std::endian::native == std::endian::little, "vec0 stores little-endian rowids and floats");
  if (!IsKnownVec0Layout(db)) return std::optional<ScanTable>();
  ASSIGN_OR_RETURN(ScanTable table, Loader(db, dim, metric, shard_name, arrange).Load());
  return std::optional<ScanTable>(std::move(table));
}

}  // namespace shardvec
