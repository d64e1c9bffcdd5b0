#include "shard/sq8_table.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common/sqlite/sqlite_statement.h"
#include "common/status_macros.h"
#include "shard/vec0_storage.h"

namespace shardvec {
namespace {

Status Corrupt(std::string_view shard_name, std::string_view table, const std::string& what) {
  return Status::Corruption(fmt::format("shard {}: table {}: {}", shard_name, table, what));
}

// The table's rows back in rowid order and in their own column order, row-major.
Result<std::vector<float>> RowsByRowid(const ScanTable& table, std::string_view shard_name) {
  const int64_t n = table.vectors.rows(), dim = table.vectors.dim();
  std::vector<float> rows(static_cast<size_t>(n * dim));
  std::vector<bool> seen(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t rowid = table.rowids[static_cast<size_t>(i)];
    if (rowid < 0 || rowid >= n || seen[static_cast<size_t>(rowid)]) {
      return Status::Internal(fmt::format("shard {}: rowid {} is not one of 0..{} once each", shard_name, rowid, n - 1));
    }
    seen[static_cast<size_t>(rowid)] = true;
    const float* r = table.vectors.row(i);
    float* dst = rows.data() + rowid * dim;
    for (int64_t j = 0; j < dim; ++j) {
      dst[table.column_order.empty() ? j : table.column_order[static_cast<size_t>(j)]] = r[j];
    }
  }
  return rows;
}

Status Exec(sqlite3* db, const std::string& sql, std::string_view shard_name) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Status st = Status::IOError(fmt::format("shard '{}': {}: {}", shard_name, sql, err ? err : "?"));
    sqlite3_free(err);
    return st;
  }
  return Status::OK();
}

std::string_view FloatBytes(const std::vector<float>& v) {
  return {reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)};
}

bool HasTable(sqlite3* db, std::string_view name) {
  SqliteStatement stmt(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  if (!stmt.ok()) return false;
  sqlite3_bind_text(stmt.get(), 1, name.data(), static_cast<int>(name.size()), SQLITE_STATIC);
  return stmt.Step() == SQLITE_ROW;
}

// A float32[dim] blob of params: every value finite, and ≥ 0 when `non_negative`.
Result<std::vector<float>> ReadFloats(std::string_view blob, int64_t dim, bool non_negative, std::string_view column,
                                      std::string_view shard_name) {
  if (blob.size() != static_cast<size_t>(dim) * sizeof(float)) {
    return Corrupt(shard_name, kSq8ParamsTable,
                   fmt::format("{} holds {} bytes, expected {} float32s", column, blob.size(), dim));
  }
  std::vector<float> v(static_cast<size_t>(dim));
  std::memcpy(v.data(), blob.data(), blob.size());
  for (size_t j = 0; j < v.size(); ++j) {
    if (!std::isfinite(v[j]) || (non_negative && v[j] < 0)) {
      return Corrupt(shard_name, kSq8ParamsTable, fmt::format("{}[{}] is {}", column, j, v[j]));
    }
  }
  return v;
}

}  // namespace

Status WriteSq8Tables(sqlite3* db, int64_t dim, Metric metric, std::string_view shard_name) {
  ASSIGN_OR_RETURN(std::optional<ScanTable> table, LoadVec0Table(db, dim, metric, shard_name));
  if (!table) {
    return Status::Internal(fmt::format("shard '{}': int8 codes need vec0 storage this build can read", shard_name));
  }
  ASSIGN_OR_RETURN(const std::vector<float> rows, RowsByRowid(*table, shard_name));
  const int64_t n = table->vectors.rows();
  const Sq8Params params = TrainSq8(rows.data(), n, dim);
  RETURN_IF_ERROR(Exec(db,
                       fmt::format("CREATE TABLE {} (id INTEGER PRIMARY KEY CHECK (id = 0), format INTEGER NOT NULL, "
                                   "dim INTEGER NOT NULL, rows INTEGER NOT NULL, mins BLOB NOT NULL, scales BLOB NOT NULL)",
                                   kSq8ParamsTable),
                       shard_name));
  RETURN_IF_ERROR(Exec(db,
                       fmt::format("CREATE TABLE {} (rowid_lo INTEGER PRIMARY KEY, rowid_hi INTEGER NOT NULL, "
                                   "codes BLOB NOT NULL)",
                                   kSq8CodesTable),
                       shard_name));
  auto failed = [&](std::string_view table_name) {
    return Status::IOError(fmt::format("shard '{}': writing {} failed: {}", shard_name, table_name, sqlite3_errmsg(db)));
  };
  {
    SqliteStatement insert(db, fmt::format("INSERT INTO {} VALUES (0, ?, ?, ?, ?, ?)", kSq8ParamsTable).c_str());
    if (!insert.ok()) return failed(kSq8ParamsTable);
    const std::string_view mins = FloatBytes(params.mins), scales = FloatBytes(params.scales);
    sqlite3_bind_int64(insert.get(), 1, kSq8Format);
    sqlite3_bind_int64(insert.get(), 2, dim);
    sqlite3_bind_int64(insert.get(), 3, n);
    sqlite3_bind_blob(insert.get(), 4, mins.data(), static_cast<int>(mins.size()), SQLITE_STATIC);
    sqlite3_bind_blob(insert.get(), 5, scales.data(), static_cast<int>(scales.size()), SQLITE_STATIC);
    if (insert.Run() != SQLITE_DONE) return failed(kSq8ParamsTable);
  }
  SqliteStatement insert(db, fmt::format("INSERT INTO {} VALUES (?, ?, ?)", kSq8CodesTable).c_str());
  if (!insert.ok()) return failed(kSq8CodesTable);
  std::vector<uint8_t> codes;
  for (int64_t lo = 0; lo < n; lo += kSq8BlockRows) {
    const int64_t hi = std::min(n, lo + kSq8BlockRows);
    codes.resize(static_cast<size_t>((hi - lo) * dim));
    for (int64_t r = lo; r < hi; ++r) {
      EncodeSq8(params, rows.data() + r * dim, codes.data() + (r - lo) * dim);
    }
    sqlite3_bind_int64(insert.get(), 1, lo);
    sqlite3_bind_int64(insert.get(), 2, hi);
    sqlite3_bind_blob(insert.get(), 3, codes.data(), static_cast<int>(codes.size()), SQLITE_STATIC);
    if (insert.Run() != SQLITE_DONE) return failed(kSq8CodesTable);
  }
  return Status::OK();
}

Result<std::optional<Sq8Codes>> LoadSq8Codes(sqlite3* db, const ScanTable& table, std::string_view shard_name) {
  if (!HasTable(db, kSq8ParamsTable)) return std::optional<Sq8Codes>();
  const int64_t n = table.vectors.rows(), dim = table.vectors.dim();
  Sq8Params params;
  {
    SqliteStatement stmt(db, fmt::format("SELECT format, dim, rows, mins, scales FROM {}", kSq8ParamsTable).c_str());
    if (!stmt.ok()) return Corrupt(shard_name, kSq8ParamsTable, fmt::format("unreadable: {}", sqlite3_errmsg(db)));
    const int rc = stmt.Step();
    if (rc != SQLITE_ROW) return Corrupt(shard_name, kSq8ParamsTable, "has no row");
    if (stmt.Int(0) != kSq8Format) {
      return Corrupt(shard_name, kSq8ParamsTable, fmt::format("format {} is not {}", stmt.Int(0), kSq8Format));
    }
    if (stmt.Int(1) != dim) {
      return Corrupt(shard_name, kSq8ParamsTable, fmt::format("dim {} is not the shard's {}", stmt.Int(1), dim));
    }
    if (stmt.Int(2) != n) {
      return Corrupt(shard_name, kSq8ParamsTable, fmt::format("rows {} but the shard holds {}", stmt.Int(2), n));
    }
    ASSIGN_OR_RETURN(params.mins, ReadFloats(stmt.Blob(3), dim, false, "mins", shard_name));
    ASSIGN_OR_RETURN(params.scales, ReadFloats(stmt.Blob(4), dim, true, "scales", shard_name));
    if (stmt.Step() != SQLITE_DONE) return Corrupt(shard_name, kSq8ParamsTable, "has more than one row");
  }
  // Code row i is rowid i, so the table's row i must be rowid i.
  for (int64_t i = 0; i < n; ++i) {
    if (table.rowids[static_cast<size_t>(i)] != i) {
      return Corrupt(shard_name, kSq8CodesTable,
                     fmt::format("vec0 row {} holds rowid {}: codes are stored by rowid 0..{} in order", i,
                                 table.rowids[static_cast<size_t>(i)], n - 1));
    }
  }
  std::vector<uint8_t> codes(static_cast<size_t>(n * dim));
  SqliteStatement stmt(db, fmt::format("SELECT rowid_lo, rowid_hi, codes FROM {} ORDER BY rowid_lo", kSq8CodesTable).c_str());
  if (!stmt.ok()) return Corrupt(shard_name, kSq8CodesTable, fmt::format("unreadable: {}", sqlite3_errmsg(db)));
  int64_t next = 0;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    const int64_t lo = stmt.Int(0), hi = stmt.Int(1);
    if (lo != next || hi <= lo || hi > n) {
      return Corrupt(shard_name, kSq8CodesTable,
                     fmt::format("block [{}, {}) does not continue rowids [0, {}) of {} rows", lo, hi, next, n));
    }
    const std::string_view blob = stmt.Blob(2);
    if (blob.size() != static_cast<size_t>((hi - lo) * dim)) {
      return Corrupt(shard_name, kSq8CodesTable,
                     fmt::format("block [{}, {}) holds {} bytes, expected {} rows × {}", lo, hi, blob.size(), hi - lo, dim));
    }
    std::memcpy(codes.data() + lo * dim, blob.data(), blob.size());
    next = hi;
  }
  if (rc != SQLITE_DONE) return Corrupt(shard_name, kSq8CodesTable, fmt::format("unreadable: {}", sqlite3_errmsg(db)));
  if (next != n) {
    return Corrupt(shard_name, kSq8CodesTable, fmt::format("codes cover rowids [0, {}) of {} rows", next, n));
  }
  return std::optional<Sq8Codes>(std::in_place, std::move(params), codes, table);
}

}  // namespace shardvec
