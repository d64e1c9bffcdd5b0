#include "shard/filter_column_table.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <map>
#include <span>
#include <vector>

#include "common/sqlite/sqlite_statement.h"
#include "common/status_macros.h"
#include "common/text_util.h"

namespace shardvec {
namespace {

static_assert(std::endian::native == std::endian::little, "filter column blobs are little-endian");

template <typename T>
void Put(std::string* out, const std::vector<T>& values) {
  out->append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), sizeof(v)); }

void PutDictionary(std::string* out, const std::vector<std::string>& dictionary) {
  PutU64(out, dictionary.size());
  uint64_t end = 0;
  for (const std::string& s : dictionary) PutU64(out, end += s.size());
  for (const std::string& s : dictionary) out->append(s);
}

// Reads a blob front to back; every count is checked against the bytes left before anything is
// allocated, so a hostile blob costs at most its own size.
class BlobReader {
 public:
  explicit BlobReader(std::string_view data) : data_(data) {}
  template <typename T>
  bool Read(uint64_t count, std::vector<T>* out) {
    if (count > (data_.size() - pos_) / sizeof(T)) return false;
    out->resize(static_cast<size_t>(count));
    if (count > 0) std::memcpy(out->data(), data_.data() + pos_, static_cast<size_t>(count) * sizeof(T));
    pos_ += static_cast<size_t>(count) * sizeof(T);
    return true;
  }
  bool ReadU64(uint64_t* v) {
    std::vector<uint64_t> one;
    if (!Read(1, &one)) return false;
    *v = one[0];
    return true;
  }
  bool ReadText(uint64_t bytes, std::string_view* out) {
    if (bytes > data_.size() - pos_) return false;
    *out = data_.substr(pos_, static_cast<size_t>(bytes));
    pos_ += static_cast<size_t>(bytes);
    return true;
  }
  size_t left() const { return data_.size() - pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

// A bitmap over `rows` rows with no bit set past them.
bool BitsWithinRows(const std::vector<uint64_t>& bits, int64_t rows) {
  if (rows % 64 == 0 || bits.empty()) return true;
  return (bits.back() >> (rows % 64)) == 0;
}

class Decoder {
 public:
  Decoder(std::string_view data, FilterColumn* column, std::string_view shard_name)
      : in_(data), c_(*column), shard_name_(shard_name) {}

  Status Run() {
    const size_t words = BitmapWords(c_.rows);
    if (!in_.Read(words, &c_.valid)) return Bad("its validity bitmap is cut short");
    if (!BitsWithinRows(c_.valid, c_.rows)) return Bad("its validity bitmap has bits past the last row");
    int64_t present = 0;
    for (const uint64_t w : c_.valid) present += std::popcount(w);
    c_.null_count = c_.rows - present;
    const auto rows = static_cast<uint64_t>(c_.rows);
    switch (c_.type) {
      case FilterType::kInt:
        if (!in_.Read(rows, &c_.ints)) return Bad("its values are cut short");
        for (int64_t r = 0; r < c_.rows; ++r) {
          if (!c_.IsValid(r) && c_.ints[static_cast<size_t>(r)] != 0) return Bad(fmt::format("null row {} holds a value", r));
        }
        break;
      case FilterType::kDouble:
        if (!in_.Read(rows, &c_.doubles)) return Bad("its values are cut short");
        for (int64_t r = 0; r < c_.rows; ++r) {
          const double v = c_.doubles[static_cast<size_t>(r)];
          if (!std::isfinite(v)) return Bad(fmt::format("row {} holds {}, not a finite number", r, v));
          if (!c_.IsValid(r) && v != 0) return Bad(fmt::format("null row {} holds a value", r));
        }
        break;
      case FilterType::kBool:
        if (!in_.Read(words, &c_.bools)) return Bad("its values are cut short");
        for (size_t w = 0; w < words; ++w) {
          if ((c_.bools[w] & ~c_.valid[w]) != 0) return Bad("a null row holds true");
        }
        break;
      case FilterType::kString:
        RETURN_IF_ERROR(ReadDictionary());
        if (!in_.Read(rows, &c_.codes)) return Bad("its codes are cut short");
        for (int64_t r = 0; r < c_.rows; ++r) RETURN_IF_ERROR(CheckCode(r, c_.codes[static_cast<size_t>(r)], r));
        break;
      case FilterType::kStringList: {
        RETURN_IF_ERROR(ReadDictionary());
        if (!in_.Read(rows + 1, &c_.offsets)) return Bad("its list offsets are cut short");
        if (c_.offsets[0] != 0) return Bad("its list offsets do not start at 0");
        for (int64_t r = 0; r < c_.rows; ++r) {
          const uint64_t lo = c_.offsets[static_cast<size_t>(r)], hi = c_.offsets[static_cast<size_t>(r) + 1];
          if (hi < lo) return Bad(fmt::format("row {}'s list ends before it starts", r));
          if (!c_.IsValid(r) && hi != lo) return Bad(fmt::format("null row {} holds a list", r));
        }
        if (!in_.Read(c_.offsets.back(), &c_.codes)) return Bad("its list elements are cut short");
        for (int64_t r = 0; r < c_.rows; ++r) {
          for (uint64_t e = c_.offsets[static_cast<size_t>(r)]; e < c_.offsets[static_cast<size_t>(r) + 1]; ++e) {
            RETURN_IF_ERROR(CheckCode(r, c_.codes[static_cast<size_t>(e)], -1));
          }
        }
        break;
      }
    }
    if (in_.left() != 0) return Bad(fmt::format("{} bytes follow its encoding", in_.left()));
    return Status::OK();
  }

 private:
  Status Bad(std::string_view what) const {
    return Status::Corruption(fmt::format("shard {}: table {}: column '{}' ({}): {}", shard_name_, kFilterColumnsTable,
                                          EscapeForDisplay(c_.name), FilterTypeName(c_.type), what));
  }

  Status ReadDictionary() {
    uint64_t count = 0;
    std::vector<uint64_t> ends;
    if (!in_.ReadU64(&count) || !in_.Read(count, &ends)) return Bad("its dictionary is cut short");
    if (count > uint64_t{UINT32_MAX}) return Bad("its dictionary has more strings than codes can name");
    uint64_t begin = 0;
    c_.dictionary.reserve(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view text;
      if (ends[i] < begin || !in_.ReadText(ends[i] - begin, &text)) return Bad("its dictionary is cut short");
      if (FirstInvalidUtf8(text)) return Bad(fmt::format("dictionary string {} is not UTF-8", i));
      if (i > 0 && !(c_.dictionary.back() < text)) return Bad("its dictionary is not strictly ascending");
      c_.dictionary.emplace_back(text);
      begin = ends[i];
    }
    return Status::OK();
  }

  // A code of row `row`; `null_row` is the row whose null slot it is (-1: an element, never null).
  Status CheckCode(int64_t row, uint32_t code, int64_t null_row) const {
    if (null_row >= 0 && !c_.IsValid(null_row)) {
      return code == 0 ? Status::OK() : Bad(fmt::format("null row {} holds a code", row));
    }
    if (code >= c_.dictionary.size()) {
      return Bad(fmt::format("row {} holds code {} of a {}-string dictionary", row, code, c_.dictionary.size()));
    }
    return Status::OK();
  }

  BlobReader in_;
  FilterColumn& c_;
  std::string_view shard_name_;
};

Status TableError(std::string_view shard_name, std::string_view what) {
  return Status::Corruption(fmt::format("shard {}: table {}: {}", shard_name, kFilterColumnsTable, what));
}

}  // namespace

std::string EncodeFilterColumn(const FilterColumn& c) {
  std::string out;
  Put(&out, c.valid);
  switch (c.type) {
    case FilterType::kInt:
      Put(&out, c.ints);
      break;
    case FilterType::kDouble:
      Put(&out, c.doubles);
      break;
    case FilterType::kBool:
      Put(&out, c.bools);
      break;
    case FilterType::kString:
      PutDictionary(&out, c.dictionary);
      Put(&out, c.codes);
      break;
    case FilterType::kStringList:
      PutDictionary(&out, c.dictionary);
      Put(&out, c.offsets);
      Put(&out, c.codes);
      break;
  }
  return out;
}

Result<FilterColumn> DecodeFilterColumn(std::string name, FilterType type, int64_t rows, std::string_view data,
                                        std::string_view shard_name) {
  FilterColumn column;
  column.name = std::move(name);
  column.type = type;
  column.rows = rows;
  RETURN_IF_ERROR(Decoder(data, &column, shard_name).Run());
  return column;
}

Status WriteFilterColumnsTable(sqlite3* db, const FilterColumns& columns, std::string_view shard_name) {
  auto failed = [&](std::string_view what) {
    return Status::IOError(fmt::format("shard '{}': {} {} failed: {}", shard_name, what, kFilterColumnsTable,
                                       sqlite3_errmsg(db)));
  };
  const std::string ddl = fmt::format(
      "CREATE TABLE {} (name TEXT PRIMARY KEY, type TEXT NOT NULL, format INTEGER NOT NULL, rows INTEGER NOT NULL, "
      "data BLOB NOT NULL)",
      kFilterColumnsTable);
  if (sqlite3_exec(db, ddl.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return failed("creating");
  SqliteStatement insert(db, fmt::format("INSERT INTO {} VALUES (?, ?, ?, ?, ?)", kFilterColumnsTable));
  if (!insert.ok()) return failed("writing");
  for (const FilterColumn& c : columns.columns) {
    const std::string data = EncodeFilterColumn(c);
    if (data.size() > static_cast<size_t>(sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1))) {
      return Status::InvalidArgument(fmt::format(
          "shard '{}': filter column '{}' encodes to {} bytes, above SQLite's limit of {} bytes per value; use fewer "
          "or shorter values, or more shards",
          shard_name, c.name, data.size(), sqlite3_limit(db, SQLITE_LIMIT_LENGTH, -1)));
    }
    const std::string_view type = FilterTypeName(c.type);
    sqlite3_bind_text(insert.get(), 1, c.name.data(), static_cast<int>(c.name.size()), SQLITE_STATIC);
    sqlite3_bind_text(insert.get(), 2, type.data(), static_cast<int>(type.size()), SQLITE_STATIC);
    sqlite3_bind_int64(insert.get(), 3, kFilterColumnsFormat);
    sqlite3_bind_int64(insert.get(), 4, c.rows);
    sqlite3_bind_blob64(insert.get(), 5, data.data(), data.size(), SQLITE_STATIC);
    if (insert.Run() != SQLITE_DONE) return failed("writing");
  }
  return Status::OK();
}

namespace {

// `column`'s rows `rowids` (each < column.rows), in that order, as a column of their own.
FilterColumn GatherRows(const FilterColumn& column, std::span<const int64_t> rowids) {
  FilterColumn out;
  out.name = column.name;
  out.type = column.type;
  out.rows = static_cast<int64_t>(rowids.size());
  out.valid.assign(BitmapWords(out.rows), 0);
  out.dictionary = column.dictionary;
  if (column.type == FilterType::kBool) out.bools.assign(BitmapWords(out.rows), 0);
  if (column.type == FilterType::kStringList) out.offsets.push_back(0);
  for (int64_t row = 0; row < out.rows; ++row) {
    const int64_t from = rowids[static_cast<size_t>(row)];
    const uint64_t bit = uint64_t{1} << (row & 63);
    const bool valid = column.IsValid(from);
    if (valid) out.valid[static_cast<size_t>(row >> 6)] |= bit;
    else ++out.null_count;
    switch (column.type) {
      case FilterType::kInt: out.ints.push_back(column.ints[static_cast<size_t>(from)]); break;
      case FilterType::kDouble: out.doubles.push_back(column.doubles[static_cast<size_t>(from)]); break;
      case FilterType::kBool:
        if (column.BoolAt(from)) out.bools[static_cast<size_t>(row >> 6)] |= bit;
        break;
      case FilterType::kString: out.codes.push_back(column.codes[static_cast<size_t>(from)]); break;
      case FilterType::kStringList:
        out.codes.insert(out.codes.end(), column.codes.begin() + static_cast<std::ptrdiff_t>(column.offsets[static_cast<size_t>(from)]),
                         column.codes.begin() + static_cast<std::ptrdiff_t>(column.offsets[static_cast<size_t>(from) + 1]));
        out.offsets.push_back(out.codes.size());
        break;
    }
  }
  return out;
}

}  // namespace

Result<std::optional<FilterColumns>> LoadFilterColumns(sqlite3* db, const ScanTable& table,
                                                       std::string_view shard_name) {
  {
    SqliteStatement exists(db, "SELECT type FROM sqlite_master WHERE name = ?");
    if (!exists.ok()) return TableError(shard_name, sqlite3_errmsg(db));
    sqlite3_bind_text(exists.get(), 1, kFilterColumnsTable.data(), static_cast<int>(kFilterColumnsTable.size()),
                      SQLITE_STATIC);
    const int rc = exists.Step();
    if (rc == SQLITE_DONE) return std::optional<FilterColumns>();
    if (rc != SQLITE_ROW || exists.Text(0) != "table") return TableError(shard_name, "is not a readable table");
  }
  const int64_t rows = table.vectors.rows();
  // Column row r is rowid r. As built, the shard's row i is rowid i; a shard edited in place has
  // holes and rows in another order, and its columns are gathered row by row.
  bool in_rowid_order = true;
  int64_t max_rowid = -1;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t rowid = table.rowids[static_cast<size_t>(i)];
    in_rowid_order = in_rowid_order && rowid == i;
    max_rowid = std::max(max_rowid, rowid);
  }
  SqliteStatement select(db, fmt::format("SELECT name, type, format, rows, data FROM {} ORDER BY name",
                                         kFilterColumnsTable));
  if (!select.ok()) return TableError(shard_name, sqlite3_errmsg(db));
  FilterColumns out;
  out.rows = rows;
  int rc;
  while ((rc = select.Step()) == SQLITE_ROW) {
    const int kinds[] = {SQLITE_TEXT, SQLITE_TEXT, SQLITE_INTEGER, SQLITE_INTEGER, SQLITE_BLOB};
    for (int i = 0; i < 5; ++i) {
      if (sqlite3_column_type(select.get(), i) != kinds[i]) {
        return TableError(shard_name, fmt::format("row {} has a column {} of the wrong type", out.columns.size(), i));
      }
    }
    const std::string name = select.Text(0), type_name = select.Text(1);
    Result<std::vector<FilterColumnSpec>> spec = ParseFilterColumnSpecs({{name, type_name}}, "filter column");
    if (!spec.ok()) return TableError(shard_name, spec.status().message());
    if (out.Find(name) != nullptr) return TableError(shard_name, fmt::format("column '{}' appears twice", name));
    if (select.Int(2) != kFilterColumnsFormat) {
      return TableError(shard_name, fmt::format("column '{}' has format {}, not {}", name, select.Int(2),
                                                kFilterColumnsFormat));
    }
    const int64_t stored_rows = select.Int(3);
    if (in_rowid_order ? stored_rows != rows : stored_rows <= max_rowid) {
      return TableError(shard_name, fmt::format("column '{}' has {} rows but the shard holds {} up to rowid {}", name,
                                                stored_rows, rows, max_rowid));
    }
    ASSIGN_OR_RETURN(FilterColumn column,
                     DecodeFilterColumn(name, (*spec)[0].type, stored_rows, select.Blob(4), shard_name));
    out.columns.push_back(in_rowid_order ? std::move(column) : GatherRows(column, table.rowids));
  }
  if (rc != SQLITE_DONE) return TableError(shard_name, sqlite3_errmsg(db));
  return std::optional<FilterColumns>(std::move(out));
}

}  // namespace shardvec
