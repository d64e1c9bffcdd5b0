#include "shard/sq8_table.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "common/sqlite/sqlite_blob.h"
#include "common/sqlite/sqlite_statement.h"
#include "common/status_macros.h"
#include "shard/vec0_storage.h"

namespace shardvec {
namespace {

Status Corrupt(std::string_view shard_name, std::string_view table, const std::string& what) {
  return Status::Corruption(fmt::format("shard {}: table {}: {}", shard_name, table, what));
}

// The table's rows in rowid order, in their own column order, row-major, and their rowids
// (ascending, each once).
struct RowsInRowidOrder {
  std::vector<float> rows;
  std::vector<int64_t> rowids;
};

// The table's rows (their indexes) in rowid order.
std::vector<int64_t> OrderByRowid(const ScanTable& table) {
  std::vector<int64_t> order(static_cast<size_t>(table.vectors.rows()));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return table.rowids[static_cast<size_t>(a)] < table.rowids[static_cast<size_t>(b)];
  });
  return order;
}

Result<RowsInRowidOrder> RowsByRowid(const ScanTable& table, std::string_view shard_name) {
  const int64_t n = table.vectors.rows(), dim = table.vectors.dim();
  const std::vector<int64_t> order = OrderByRowid(table);
  RowsInRowidOrder out;
  out.rows.resize(static_cast<size_t>(n * dim));
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = order[static_cast<size_t>(k)], rowid = table.rowids[static_cast<size_t>(i)];
    if (rowid < 0 || (!out.rowids.empty() && out.rowids.back() == rowid)) {
      return Status::Internal(fmt::format("shard {}: rowid {} is negative or held twice", shard_name, rowid));
    }
    out.rowids.push_back(rowid);
    const float* r = table.vectors.row(i);
    float* dst = out.rows.data() + k * dim;
    for (int64_t j = 0; j < dim; ++j) {
      dst[table.column_order.empty() ? j : table.column_order[static_cast<size_t>(j)]] = r[j];
    }
  }
  return out;
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

namespace {

// Inserts the code blocks of rowids [from, extent), kSq8BlockRows rows each: rowids[k]'s codes
// (rowids ascending, each in the range) written by write_row(k, its place), every other row zeros.
Status InsertCodeBlocks(sqlite3* db, int64_t from, int64_t extent, int64_t dim, std::span<const int64_t> rowids,
                        const std::function<void(size_t, uint8_t*)>& write_row, std::string_view shard_name) {
  const auto failed = [&] {
    return Status::IOError(fmt::format("shard '{}': writing {} failed: {}", shard_name, kSq8CodesTable, sqlite3_errmsg(db)));
  };
  SqliteStatement insert(db, fmt::format("INSERT INTO {} VALUES (?, ?, ?)", kSq8CodesTable).c_str());
  if (!insert.ok()) return failed();
  std::vector<uint8_t> block;
  size_t k = 0;
  for (int64_t lo = from; lo < extent; lo += kSq8BlockRows) {
    const int64_t hi = std::min(extent, lo + kSq8BlockRows);
    block.assign(static_cast<size_t>((hi - lo) * dim), 0);  // a rowid no row holds: zeros
    for (; k < rowids.size() && rowids[k] < hi; ++k) write_row(k, block.data() + (rowids[k] - lo) * dim);
    sqlite3_bind_int64(insert.get(), 1, lo);
    sqlite3_bind_int64(insert.get(), 2, hi);
    sqlite3_bind_blob(insert.get(), 3, block.data(), static_cast<int>(block.size()), SQLITE_STATIC);
    if (insert.Run() != SQLITE_DONE) return failed();
  }
  return Status::OK();
}

// Trains ranges on the shard's rows (read back from vec0's storage) and fills the two (empty) tables
// in `format`: 1 (a build's: its rowids must be 0..n-1, in the order its rows are searched), or 2 (by
// rowid up to the largest, whatever order the rows are in).
Status FillSq8Tables(sqlite3* db, int64_t dim, Metric metric, int64_t format, std::string_view shard_name) {
  ASSIGN_OR_RETURN(std::optional<ScanTable> table, LoadVec0Table(db, dim, metric, shard_name));
  if (!table) {
    return Status::Internal(fmt::format("shard '{}': int8 codes need vec0 storage this build can read", shard_name));
  }
  ASSIGN_OR_RETURN(const RowsInRowidOrder by_rowid, RowsByRowid(*table, shard_name));
  const auto n = static_cast<int64_t>(by_rowid.rowids.size());
  const int64_t extent = n == 0 ? 0 : by_rowid.rowids.back() + 1;
  if (format == kSq8Format && extent != n) {
    return Status::Internal(fmt::format("shard {}: its rowids are not 0..{}", shard_name, n - 1));
  }
  const Sq8Params params = TrainSq8(by_rowid.rows.data(), n, dim);
  auto failed = [&](std::string_view table_name) {
    return Status::IOError(fmt::format("shard '{}': writing {} failed: {}", shard_name, table_name, sqlite3_errmsg(db)));
  };
  {
    SqliteStatement insert(db, fmt::format("INSERT INTO {} VALUES (0, ?, ?, ?, ?, ?)", kSq8ParamsTable).c_str());
    if (!insert.ok()) return failed(kSq8ParamsTable);
    const std::string_view mins = FloatBytes(params.mins), scales = FloatBytes(params.scales);
    sqlite3_bind_int64(insert.get(), 1, format);
    sqlite3_bind_int64(insert.get(), 2, dim);
    sqlite3_bind_int64(insert.get(), 3, extent);
    sqlite3_bind_blob(insert.get(), 4, mins.data(), static_cast<int>(mins.size()), SQLITE_STATIC);
    sqlite3_bind_blob(insert.get(), 5, scales.data(), static_cast<int>(scales.size()), SQLITE_STATIC);
    if (insert.Run() != SQLITE_DONE) return failed(kSq8ParamsTable);
  }
  return InsertCodeBlocks(db, 0, extent, dim, by_rowid.rowids, [&](size_t k, uint8_t* dst) {
    EncodeSq8(params, by_rowid.rows.data() + static_cast<int64_t>(k) * dim, dst);
  }, shard_name);
}

}  // namespace

Status WriteSq8Tables(sqlite3* db, int64_t dim, Metric metric, std::string_view shard_name) {
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
  return FillSq8Tables(db, dim, metric, kSq8Format, shard_name);
}

Status RetrainSq8Tables(sqlite3* db, int64_t dim, Metric metric, std::string_view shard_name) {
  RETURN_IF_ERROR(Exec(db, fmt::format("DELETE FROM {}", kSq8ParamsTable), shard_name));
  RETURN_IF_ERROR(Exec(db, fmt::format("DELETE FROM {}", kSq8CodesTable), shard_name));
  return FillSq8Tables(db, dim, metric, kSq8FormatByRowid, shard_name);
}

namespace {

// The params row, checked: a format this build reads, the shard's dim, a row count whose codes fit an
// int64 byte count, finite ranges.
struct ParamsRow {
  int64_t format = 0;
  int64_t rows = 0;
  Sq8Params params;
};

Result<ParamsRow> ReadParamsRow(sqlite3* db, int64_t dim, std::string_view shard_name) {
  SqliteStatement stmt(db, fmt::format("SELECT format, dim, rows, mins, scales FROM {}", kSq8ParamsTable).c_str());
  if (!stmt.ok()) return Corrupt(shard_name, kSq8ParamsTable, fmt::format("unreadable: {}", sqlite3_errmsg(db)));
  if (stmt.Step() != SQLITE_ROW) return Corrupt(shard_name, kSq8ParamsTable, "has no row");
  ParamsRow p;
  p.format = stmt.Int(0);
  if (p.format != kSq8Format && p.format != kSq8FormatByRowid) {
    return Corrupt(shard_name, kSq8ParamsTable,
                   fmt::format("format {} is not {} or {}", p.format, kSq8Format, kSq8FormatByRowid));
  }
  if (stmt.Int(1) != dim) {
    return Corrupt(shard_name, kSq8ParamsTable, fmt::format("dim {} is not the shard's {}", stmt.Int(1), dim));
  }
  p.rows = stmt.Int(2);
  if (p.rows < 0 || p.rows > std::numeric_limits<int64_t>::max() / std::max<int64_t>(dim, 1)) {
    return Corrupt(shard_name, kSq8ParamsTable, fmt::format("rows {} is out of range", p.rows));
  }
  ASSIGN_OR_RETURN(p.params.mins, ReadFloats(stmt.Blob(3), dim, false, "mins", shard_name));
  ASSIGN_OR_RETURN(p.params.scales, ReadFloats(stmt.Blob(4), dim, true, "scales", shard_name));
  if (stmt.Step() != SQLITE_DONE) return Corrupt(shard_name, kSq8ParamsTable, "has more than one row");
  return p;
}

// Checks that block [lo, hi) continues the blocks before it (which reached `next`) within [0, rows)
// and holds `bytes`, dim a row.
Status CheckBlock(int64_t lo, int64_t hi, int64_t bytes, int64_t next, int64_t rows, int64_t dim,
                  std::string_view shard_name) {
  if (lo != next || hi <= lo || hi > rows) {
    return Corrupt(shard_name, kSq8CodesTable,
                   fmt::format("block [{}, {}) does not continue rowids [0, {}) of {} rows", lo, hi, next, rows));
  }
  if (bytes != (hi - lo) * dim) {
    return Corrupt(shard_name, kSq8CodesTable,
                   fmt::format("block [{}, {}) holds {} bytes, expected {} rows × {}", lo, hi, bytes, hi - lo, dim));
  }
  return Status::OK();
}

Status CheckBlocksEnd(int64_t next, int64_t rows, std::string_view shard_name) {
  if (next != rows) {
    return Corrupt(shard_name, kSq8CodesTable, fmt::format("codes cover rowids [0, {}) of {} rows", next, rows));
  }
  return Status::OK();
}

}  // namespace

Result<std::optional<Sq8Codes>> LoadSq8Codes(sqlite3* db, const ScanTable& table, std::string_view shard_name) {
  if (!HasTable(db, kSq8ParamsTable)) return std::optional<Sq8Codes>();
  const int64_t n = table.vectors.rows(), dim = table.vectors.dim();
  ASSIGN_OR_RETURN(ParamsRow p, ReadParamsRow(db, dim, shard_name));
  // The table's rows in rowid order (format 1: they are rowids 0..n-1 in order already).
  std::vector<int64_t> order;
  if (p.format == kSq8Format) {
    if (p.rows != n) {
      return Corrupt(shard_name, kSq8ParamsTable, fmt::format("rows {} but the shard holds {}", p.rows, n));
    }
    for (int64_t i = 0; i < n; ++i) {
      if (table.rowids[static_cast<size_t>(i)] != i) {
        return Corrupt(shard_name, kSq8CodesTable,
                       fmt::format("vec0 row {} holds rowid {}: codes are stored by rowid 0..{} in order", i,
                                   table.rowids[static_cast<size_t>(i)], n - 1));
      }
    }
    order.resize(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
  } else {
    order = OrderByRowid(table);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t rowid = table.rowids[static_cast<size_t>(i)];
      if (rowid < 0 || rowid >= p.rows) {
        return Corrupt(shard_name, kSq8CodesTable,
                       fmt::format("vec0 row {} holds rowid {}, outside the codes' rowids [0, {})", i, rowid, p.rows));
      }
    }
  }
  // Each block's codes go to the table rows of its rowids.
  std::vector<uint8_t> codes(static_cast<size_t>(n * dim));
  SqliteStatement stmt(db, fmt::format("SELECT rowid_lo, rowid_hi, codes FROM {} ORDER BY rowid_lo", kSq8CodesTable).c_str());
  if (!stmt.ok()) return Corrupt(shard_name, kSq8CodesTable, fmt::format("unreadable: {}", sqlite3_errmsg(db)));
  int64_t next = 0;
  size_t k = 0;  // into order
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    const int64_t lo = stmt.Int(0), hi = stmt.Int(1);
    const std::string_view blob = stmt.Blob(2);
    RETURN_IF_ERROR(CheckBlock(lo, hi, static_cast<int64_t>(blob.size()), next, p.rows, dim, shard_name));
    for (; k < order.size(); ++k) {
      const int64_t row = order[k], rowid = table.rowids[static_cast<size_t>(row)];
      if (rowid >= hi) break;
      std::memcpy(codes.data() + row * dim, blob.data() + (rowid - lo) * dim, static_cast<size_t>(dim));
    }
    next = hi;
  }
  if (rc != SQLITE_DONE) return Corrupt(shard_name, kSq8CodesTable, fmt::format("unreadable: {}", sqlite3_errmsg(db)));
  RETURN_IF_ERROR(CheckBlocksEnd(next, p.rows, shard_name));
  return std::optional<Sq8Codes>(std::in_place, std::move(p.params), codes, table);
}

Result<std::optional<Sq8TableInfo>> ReadSq8TableInfo(sqlite3* db, int64_t dim, std::string_view shard_name) {
  if (!HasTable(db, kSq8ParamsTable)) return std::optional<Sq8TableInfo>();
  ASSIGN_OR_RETURN(ParamsRow p, ReadParamsRow(db, dim, shard_name));
  Sq8TableInfo info{.params = std::move(p.params), .code_rows = p.rows, .block_starts = {}};
  SqliteStatement stmt(
      db, fmt::format("SELECT rowid_lo, rowid_hi, length(codes) FROM {} ORDER BY rowid_lo", kSq8CodesTable).c_str());
  if (!stmt.ok()) return Corrupt(shard_name, kSq8CodesTable, fmt::format("unreadable: {}", sqlite3_errmsg(db)));
  int64_t next = 0;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    const int64_t lo = stmt.Int(0), hi = stmt.Int(1);
    RETURN_IF_ERROR(CheckBlock(lo, hi, stmt.Int(2), next, p.rows, dim, shard_name));
    info.block_starts.push_back(lo);
    next = hi;
  }
  if (rc != SQLITE_DONE) return Corrupt(shard_name, kSq8CodesTable, fmt::format("unreadable: {}", sqlite3_errmsg(db)));
  RETURN_IF_ERROR(CheckBlocksEnd(next, p.rows, shard_name));
  return std::optional<Sq8TableInfo>(std::move(info));
}

Status EditSq8Codes(sqlite3* db, const Sq8TableInfo& info, int64_t dim, std::span<const int64_t> cleared,
                    std::span<const int64_t> rowids, std::span<const uint8_t> codes, std::string_view shard_name) {
  const auto failed = [&](std::string_view what) {
    return Status::IOError(fmt::format("shard '{}': {}: {}", shard_name, what, sqlite3_errmsg(db)));
  };
  const std::string table(kSq8CodesTable);
  SqliteBlobCursor blocks(db, table.c_str(), "codes");
  // Rowid `rowid` (under code_rows) at its block's rowid_lo, the block's own rowid.
  const auto put = [&](int64_t rowid, const uint8_t* row) {
    const auto it = std::upper_bound(info.block_starts.begin(), info.block_starts.end(), rowid);
    const int64_t lo = *(it - 1);
    return blocks.Write(lo, row, static_cast<int>(dim), (rowid - lo) * dim);
  };
  const std::vector<uint8_t> zeros(static_cast<size_t>(dim), 0);
  for (const int64_t rowid : cleared) {
    if (rowid < info.code_rows && put(rowid, zeros.data()) != SQLITE_OK) return failed("clearing a removed row's int8 codes");
  }
  int64_t extent = info.code_rows;
  std::vector<std::pair<int64_t, size_t>> past;  // (rowid, index) of the rows past the blocks
  for (size_t i = 0; i < rowids.size(); ++i) {
    if (rowids[i] < info.code_rows) {
      if (put(rowids[i], codes.data() + i * dim) != SQLITE_OK) return failed("writing a row's int8 codes");
    } else {
      past.emplace_back(rowids[i], i);
      extent = std::max(extent, rowids[i] + 1);
    }
  }
  std::sort(past.begin(), past.end());
  std::vector<int64_t> past_rowids;
  for (const auto& [rowid, i] : past) past_rowids.push_back(rowid);
  RETURN_IF_ERROR(InsertCodeBlocks(db, info.code_rows, extent, dim, past_rowids, [&](size_t k, uint8_t* dst) {
    std::memcpy(dst, codes.data() + past[k].second * dim, static_cast<size_t>(dim));
  }, shard_name));
  SqliteStatement update(db, fmt::format("UPDATE {} SET format = ?, rows = ?", kSq8ParamsTable).c_str());
  if (!update.ok()) return failed(fmt::format("preparing an update of {}", kSq8ParamsTable));
  sqlite3_bind_int64(update.get(), 1, kSq8FormatByRowid);
  sqlite3_bind_int64(update.get(), 2, extent);
  if (update.Run() != SQLITE_DONE) return failed(fmt::format("updating {}", kSq8ParamsTable));
  return Status::OK();
}

}  // namespace shardvec
