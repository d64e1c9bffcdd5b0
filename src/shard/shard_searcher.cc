#include "shard/shard_searcher.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <regex>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "common/sqlite/sqlite_setup.h"
#include "common/sqlite/sqlite_statement.h"
#include "common/status_macros.h"
#include "common/vector_check.h"
#include "common/text_util.h"
#include "shard/pinned_file_vfs.h"
#include "shard/ranged_object_vfs.h"
#include "shard/filter_column_table.h"
#include "shard/filter_predicate.h"
#include "shard/sq8_table.h"
#include "shard/sqlite_vec.h"
#include "shard/vec0_storage.h"
#include "shard/vec0_top_k.h"

namespace shardvec {
namespace {

constexpr std::string_view kIdLookupSql =
    "SELECT internal_id, original_id FROM vec_id_map WHERE internal_id IN ";
constexpr std::string_view kPayloadLookupSql =
    "SELECT rowid, payload FROM vec_payloads WHERE rowid IN ";

// "file:/abs/path?mode=ro&immutable=1" with every byte that could end or confuse the path escaped.
std::string ImmutableUri(const std::filesystem::path& file) {
  std::string out = "file:";
  for (const unsigned char c : std::filesystem::absolute(file).string()) {
    if (std::isalnum(c) || std::strchr("/-._~", c) != nullptr) {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out + "?mode=ro&immutable=1";
}

// What Open and OpenPinned need before they look at the file.
Status CheckOpenArguments(int64_t dim, std::string_view shard_name) {
  RETURN_IF_ERROR(EnsureSqliteVecLoaded());
  if (dim <= 0) {
    return Status::InvalidArgument(
        fmt::format("shard {}: dim must be > 0 (got {})", shard_name, dim));
  }
  return Status::OK();
}

// Resets a statement (and drops its bindings) however the caller leaves the scope.
class ResetOnExit {
 public:
  explicit ResetOnExit(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~ResetOnExit() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

// Rowids per id/payload lookup statement; larger sets are looked up in parts.
constexpr size_t kMaxLookupRows = 512;

// The int8 pre-scan runs when the shard holds at least this many rows per candidate it keeps.
constexpr int64_t kPrescanRowsPerCandidate = 4;

// A filtered scan that searches every allowed row scores them one by one (the index path) when they
// are at most max(kFilterIndexMinRows, rows / kFilterIndexRowsPerShardRows) of the shard's rows.
// Measured on 384-d shards of 3,125 and 20,000 rows (k = 10): the index path is 1.3-4x faster than
// the runs below about 2-2.5 % of the rows (64 and 512 rows), and slower above.
constexpr int64_t kFilterIndexMinRows = 64;
constexpr int64_t kFilterIndexRowsPerShardRows = 40;

// IN lists are padded to a few fixed lengths so each connection keeps at most ~10 lookup
// statements prepared instead of one per distinct k.
int64_t InListBucket(int64_t n) {
  int64_t bucket = 8;
  while (bucket < n) bucket *= 2;
  return bucket;
}

std::string InListSql(std::string_view prefix, int64_t n) {
  std::string sql(prefix);
  sql += '(';
  for (int64_t i = 0; i < n; ++i) sql += (i == 0) ? "?" : ",?";
  sql += ')';
  return sql;
}

// Store text quoted in a message: cut short, control characters and bytes that are not UTF-8 escaped.
std::string Abbreviate(std::string_view text, size_t limit = 200) {
  if (text.size() <= limit) return EscapeForDisplay(text);
  return EscapeForDisplay(text.substr(0, limit)) + "…";
}

struct DeclaredIndex {
  int64_t dim = 0;
  std::string metric;  // as written in the DDL, lower-cased; vec0 defaults to l2
};

// Reads "vec0(embedding float[D] distance_metric=M)" from vec_index's CREATE statement.
std::optional<DeclaredIndex> ParseVecIndexSql(const std::string& sql) {
  static const std::regex kModule(R"(using\s+vec0\s*\()", std::regex::icase);
  // "embedding" must start a word; written as a preceding non-word character rather than \b, whose
  // match-time lookup fills libstdc++'s shared ctype cache lazily (a race TSan reports, PR 77704).
  static const std::regex kColumn(R"((?:^|[^A-Za-z0-9_])embedding\s+float\s*\[\s*(\d{1,9})\s*\])",
                                  std::regex::icase);
  static const std::regex kMetric(R"(distance_metric\s*=\s*['"]?([A-Za-z0-9_]+))",
                                  std::regex::icase);
  std::smatch match;
  if (!std::regex_search(sql, kModule) || !std::regex_search(sql, match, kColumn)) {
    return std::nullopt;
  }
  DeclaredIndex declared;
  declared.dim = std::stoll(match[1].str());
  declared.metric = "l2";
  if (std::regex_search(sql, match, kMetric)) {
    declared.metric = AsciiLower(match[1].str());
  }
  return declared;
}

}  // namespace

struct ShardSearcher::Connection {
  sqlite3* db = nullptr;
  std::optional<SqliteStatement> knn;
  std::map<int64_t, SqliteStatement> id_lookups;       // keyed by padded IN-list length
  std::map<int64_t, SqliteStatement> payload_lookups;  // keyed by padded IN-list length

  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    // The statements go before the connection closes.
    knn.reset();
    id_lookups.clear();
    payload_lookups.clear();
    if (db != nullptr) sqlite3_close(db);
  }
};

// Hands a pooled connection back when the search leaves scope, whatever the outcome.
class ShardSearcher::ConnectionLease {
 public:
  ConnectionLease(ShardSearcher* owner, std::unique_ptr<Connection> conn)
      : owner_(owner), conn_(std::move(conn)) {}
  ~ConnectionLease() { owner_->ReturnConnection(std::move(conn_)); }
  ConnectionLease(const ConnectionLease&) = delete;
  ConnectionLease& operator=(const ConnectionLease&) = delete;
  Connection& get() { return *conn_; }

 private:
  ShardSearcher* owner_;
  std::unique_ptr<Connection> conn_;
};

Result<RecordId> DecodeOriginalId(std::string_view text) {
  // The canonical int form EncodeOriginalId writes, read without a JSON parser (a reader decodes
  // every row of a shard's id map when it opens it).
  constexpr std::string_view kIntPrefix = "{\"v\": ", kIntSuffix = ", \"t\": \"int\"}";
  if (text.size() > kIntPrefix.size() + kIntSuffix.size() && text.starts_with(kIntPrefix) &&
      text.ends_with(kIntSuffix)) {
    const std::string_view digits = text.substr(kIntPrefix.size(), text.size() - kIntPrefix.size() - kIntSuffix.size());
    const std::string_view magnitude = digits.starts_with('-') ? digits.substr(1) : digits;
    int64_t value = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    // JSON has no leading zeros; anything unusual goes to the full parser below.
    if (ec == std::errc() && end == digits.data() + digits.size() && !(magnitude.size() > 1 && magnitude[0] == '0')) {
      return RecordId(value);
    }
  }
  auto invalid = [&text] {
    return Status::Corruption(fmt::format("invalid id_map value '{}'", Abbreviate(text)));
  };
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return invalid();
  const auto type = doc.find("t");
  const auto value = doc.find("v");
  if (type == doc.end() || value == doc.end() || !type->is_string()) return invalid();
  if (*type == "int" && value->is_number_integer()) {
    if (value->is_number_unsigned() &&
        value->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return invalid();
    }
    return RecordId(value->get<int64_t>());
  }
  if (*type == "str" && value->is_string()) return RecordId(value->get<std::string>());
  return invalid();
}

ShardSearcher::ShardSearcher(std::filesystem::path file, std::string uri, int pinned_fd, int64_t dim,
                             Metric metric, std::string shard_name, int max_connections, int64_t file_bytes)
    : file_(std::move(file)),
      uri_(std::move(uri)),
      pinned_fd_(pinned_fd),
      dim_(dim),
      metric_(metric),
      shard_name_(std::move(shard_name)),
      max_connections_(std::max(1, max_connections)),
      file_bytes_(file_bytes) {}

ShardSearcher::~ShardSearcher() {
  if (pinned_fd_ >= 0) ::close(pinned_fd_);  // open connections hold the file on their own
}

Result<std::unique_ptr<ShardSearcher>> ShardSearcher::Open(const std::filesystem::path& file,
                                                           int64_t dim, Metric metric,
                                                           std::string_view shard_name,
                                                           int max_connections, ScanPath scan_path) {
  RETURN_IF_ERROR(CheckOpenArguments(dim, shard_name));
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) {
    std::string msg =
        fmt::format("shard {}: cannot stat '{}': {}", shard_name, file.string(), ec.message());
    if (ec == std::errc::no_such_file_or_directory) return Status::NotFound(std::move(msg));
    return Status::IOError(std::move(msg));
  }
  return OpenUri(file, ImmutableUri(file), -1, static_cast<int64_t>(size), dim, metric, shard_name,
                 max_connections, scan_path);
}

Result<std::unique_ptr<ShardSearcher>> ShardSearcher::OpenDeclared(const std::filesystem::path& file,
                                                                   std::string_view shard_name, int max_connections) {
  RETURN_IF_ERROR(CheckOpenArguments(1, shard_name));
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {
    return Status::NotFound(fmt::format("shard {}: '{}' is not a file", shard_name, file.string()));
  }
  std::string sql;
  {
    // A connection of its own, only to read the declaration; Open then validates the whole file.
    ShardSearcher probe(file, ImmutableUri(file), -1, 1, Metric::kL2, std::string(shard_name), 1, 0);
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, probe.OpenRawConnection());
    SqliteStatement stmt(conn->db, "SELECT sql FROM sqlite_master WHERE name = 'vec_index' AND type = 'table'");
    if (!stmt.ok()) return probe.SqliteError(*conn, stmt.prepare_rc(), "reading the schema");
    const int rc = stmt.Step();
    if (rc == SQLITE_ROW) sql = stmt.Text(0);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return probe.SqliteError(*conn, rc, "reading the schema");
  }
  const std::optional<DeclaredIndex> declared = ParseVecIndexSql(sql);
  if (!declared) {
    return Status::Corruption(fmt::format(
        "shard {}: '{}' has no vec_index vec0 table with an 'embedding float[D]' column", shard_name, file.string()));
  }
  auto metric = ParseMetric(declared->metric, "vec_index distance_metric");
  if (!metric.ok()) return Status::Corruption(fmt::format("shard {}: {}", shard_name, metric.status().message()));
  return Open(file, declared->dim, *metric, shard_name, max_connections);
}

Result<std::unique_ptr<ShardSearcher>> ShardSearcher::OpenPinned(int fd, const std::filesystem::path& file,
                                                                 int64_t dim, Metric metric,
                                                                 std::string_view shard_name,
                                                                 int max_connections, ScanPath scan_path,
                                                                 std::optional<int64_t> mmap_size) {
  struct ::stat st {};
  Result<std::string> vfs = PinnedFileVfsName();
  if (!vfs.ok() || ::fstat(fd, &st) != 0) {
    const std::string why = vfs.ok() ? std::strerror(errno) : vfs.status().message();
    ::close(fd);
    return Status::IOError(fmt::format("shard {}: cannot open '{}': {}", shard_name, file.string(), why));
  }
  return OpenUri(file, ImmutableUri(PinnedFileName(fd)) + "&vfs=" + *vfs, fd, static_cast<int64_t>(st.st_size),
                 dim, metric, shard_name, max_connections, scan_path, mmap_size);
}

Result<std::unique_ptr<ShardSearcher>> ShardSearcher::OpenRanged(std::shared_ptr<RangedObject> object, int64_t dim,
                                                                 Metric metric, std::string_view shard_name,
                                                                 int max_connections, ScanPath scan_path) {
  ASSIGN_OR_RETURN(const std::string vfs, RangedObjectVfsName());
  const std::string url = object->Url();
  const int64_t size = object->size();
  const std::string name = RegisterRangedObject(std::move(object));
  // Dropped with the searcher, or at once when the open fails (open connections keep the object).
  std::shared_ptr<void> registration(nullptr, [name](void*) { UnregisterRangedObject(name); });
  Result<std::unique_ptr<ShardSearcher>> searcher =
      OpenUri(url, ImmutableUri(name) + "&vfs=" + vfs, -1, size, dim, metric, shard_name, max_connections,
              scan_path, std::nullopt, name);
  if (searcher.ok()) {
    (*searcher)->ranged_registration_ = std::move(registration);
    return searcher;
  }
  // A failed read is reported as the store's error, not as the damaged file SQLite takes it for.
  Status read_error = TakeRangedReadError(name);
  if (!read_error.ok()) return read_error.WithContext(fmt::format("shard {}", shard_name));
  return searcher.status();
}

Result<std::unique_ptr<ShardSearcher>> ShardSearcher::OpenUri(const std::filesystem::path& file, std::string uri,
                                                              int pinned_fd, int64_t file_bytes, int64_t dim,
                                                              Metric metric, std::string_view shard_name,
                                                              int max_connections, ScanPath scan_path,
                                                              std::optional<int64_t> mmap_size,
                                                              std::string ranged_name) {
  // Owned from here on, so every return below closes a pinned file.
  std::unique_ptr<ShardSearcher> searcher(new ShardSearcher(file, std::move(uri), pinned_fd, dim, metric,
                                                            std::string(shard_name), max_connections, file_bytes));
  searcher->mmap_size_ = mmap_size;
  searcher->ranged_name_ = std::move(ranged_name);
  RETURN_IF_ERROR(CheckOpenArguments(dim, shard_name));
  // The first connection validates the file now, so a bad shard never reaches a search.
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> first, searcher->OpenConnection());
  if (scan_path == ScanPath::kAuto) {
    ASSIGN_OR_RETURN(std::optional<StoredSublists> stored, ReadSublistsTable(first->db, dim, shard_name));
    // The rows arranged by rowid and list by list (as built: in slot order already).
    std::optional<SubLists> lists;
    const RowArranger arrange = [&](std::span<const int64_t> slot_rowids) -> Result<std::vector<int64_t>> {
      ASSIGN_OR_RETURN(RowArrangement arranged, ArrangeRows(slot_rowids, stored, dim, metric, shard_name));
      lists = std::move(arranged.lists);
      return std::move(arranged.slots);
    };
    ASSIGN_OR_RETURN(std::optional<ScanTable> table, LoadVec0Table(first->db, dim, metric, shard_name, arrange));
    if (table) {
      searcher->table_ = std::make_unique<const ScanTable>(std::move(*table));
      ASSIGN_OR_RETURN(std::optional<Sq8Codes> codes, LoadSq8Codes(first->db, *searcher->table_, shard_name));
      if (codes) searcher->sq8_ = std::make_unique<const Sq8Codes>(std::move(*codes));
      RETURN_IF_ERROR(searcher->LoadIdsAndPayloadPresence(*first));
      searcher->sublists_ = std::move(lists);
      ASSIGN_OR_RETURN(searcher->filter_columns_, LoadFilterColumns(first->db, *searcher->table_, shard_name));
    }
  }
  searcher->opened_ = 1;
  searcher->idle_.push_back(std::move(first));
  return searcher;
}

int64_t DefaultFilterIndexRows(int64_t rows) {
  return std::max(kFilterIndexMinRows, rows / kFilterIndexRowsPerShardRows);
}

int64_t ShardSearcher::filter_index_rows() const {
  return filter_index_rows_.value_or(DefaultFilterIndexRows(table_ ? table_->vectors.rows() : 0));
}

int ShardSearcher::open_connections() const {
  std::lock_guard<std::mutex> lock(pool_mu_);
  return opened_;
}

Result<int64_t> ShardSearcher::MmapSize() {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, BorrowConnection());
  ConnectionLease lease(this, std::move(conn));
  SqliteStatement stmt(lease.get().db, "PRAGMA mmap_size");
  if (!stmt.ok() || stmt.Step() != SQLITE_ROW) return SqliteError(lease.get(), SQLITE_ERROR, "PRAGMA mmap_size");
  return stmt.Int(0);
}

Status ShardSearcher::SqliteError(Connection& conn, int rc, std::string_view what) const {
  if (!ranged_name_.empty()) {
    Status read_error = TakeRangedReadError(ranged_name_);
    if (!read_error.ok()) return read_error.WithContext(fmt::format("shard {}: {}", shard_name_, what));
  }
  std::string msg =
      fmt::format("shard {}: {} failed on '{}': {}", shard_name_, what, file_.string(),
                  conn.db != nullptr ? sqlite3_errmsg(conn.db) : sqlite3_errstr(rc));
  const int primary = rc & 0xff;
  // SQLITE_ERROR on a read-only, immutable file we only query by fixed SQL means its schema is not
  // what we wrote (a missing column, a view where a table belongs): bad bytes, not a failed read.
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_FORMAT || primary == SQLITE_ERROR) {
    return Status::Corruption(std::move(msg));
  }
  return Status::IOError(std::move(msg));
}

Result<std::unique_ptr<ShardSearcher::Connection>> ShardSearcher::OpenRawConnection() const {
  auto conn = std::make_unique<Connection>();
  const int rc = sqlite3_open_v2(uri_.c_str(), &conn->db,
                                 SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) return SqliteError(*conn, rc, "open");
  RETURN_IF_ERROR(HardenUntrustedConnection(conn->db).WithContext(fmt::format("shard {}", shard_name_)));
  return conn;
}

Result<std::unique_ptr<ShardSearcher::Connection>> ShardSearcher::OpenConnection() const {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, OpenRawConnection());
  int rc = SQLITE_OK;
  // Map the whole file unless told otherwise: scans then read pages straight from the OS page cache.
  const std::string mmap_pragma =
      fmt::format("PRAGMA mmap_size={}", mmap_size_.value_or(std::max<int64_t>(file_bytes_, 1)));
  rc = sqlite3_exec(conn->db, mmap_pragma.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteError(*conn, rc, "PRAGMA mmap_size");
  RETURN_IF_ERROR(ValidateSchema(*conn));
  conn->knn.emplace(conn->db, "SELECT rowid, distance FROM vec_index WHERE embedding MATCH ? AND k = ?",
                    SQLITE_PREPARE_PERSISTENT);
  if (!conn->knn->ok()) return SqliteError(*conn, conn->knn->prepare_rc(), "preparing the KNN query");
  return conn;
}

Status ShardSearcher::ValidateSchema(Connection& conn) const {
  SqliteStatement stmt(conn.db,
                       "SELECT name, type, sql FROM sqlite_master WHERE name IN "
                       "('vec_index', 'vec_id_map', 'vec_payloads')");
  if (!stmt.ok()) return SqliteError(conn, stmt.prepare_rc(), "reading the schema");
  std::map<std::string, std::string> tables;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    const auto* name = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
    const auto* type = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1));
    const auto* sql = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 2));
    if (type == nullptr || std::string_view(type) != "table") {
      // A view or trigger under one of our names would run the file's own SQL on every read.
      const std::string what = name ? name : "";
      const std::string kind = type ? type : "(null)";
      return Status::Corruption(fmt::format("shard {}: '{}' is a {}, not a table, in '{}'", shard_name_,
                                            what, kind, file_.string()));
    }
    tables[name ? name : ""] = sql ? sql : "";
  }
  if (rc != SQLITE_DONE) return SqliteError(conn, rc, "reading the schema");
  for (const char* required : {"vec_index", "vec_id_map", "vec_payloads"}) {
    if (tables.count(required) == 0) {
      return Status::Corruption(fmt::format("shard {}: table '{}' is missing from '{}'",
                                            shard_name_, required, file_.string()));
    }
  }
  const std::string& sql = tables["vec_index"];
  const std::optional<DeclaredIndex> declared = ParseVecIndexSql(sql);
  if (!declared) {
    return Status::Corruption(fmt::format(
        "shard {}: vec_index is not a vec0 table with an 'embedding float[D]' column: {}",
        shard_name_, Abbreviate(sql)));
  }
  if (declared->dim != dim_) {
    return Status::Corruption(fmt::format(
        "shard {}: vec_index declares dimension {} but the snapshot's dim is {}", shard_name_,
        declared->dim, dim_));
  }
  if (declared->metric != MetricName(metric_)) {
    return Status::Corruption(fmt::format(
        "shard {}: vec_index declares distance_metric={} but the snapshot's metric is {}",
        shard_name_, declared->metric, MetricName(metric_)));
  }
  return Status::OK();
}

Result<std::unique_ptr<ShardSearcher::Connection>> ShardSearcher::BorrowConnection() {
  std::unique_lock<std::mutex> lock(pool_mu_);
  for (;;) {
    if (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      return conn;
    }
    if (opened_ < max_connections_) {
      ++opened_;
      lock.unlock();  // opening reads the schema; other threads need not wait for it
      Result<std::unique_ptr<Connection>> conn = OpenConnection();
      if (!conn.ok()) {
        lock.lock();
        --opened_;
        pool_cv_.notify_one();
      }
      return conn;
    }
    pool_cv_.wait(lock);
  }
}

void ShardSearcher::ReturnConnection(std::unique_ptr<Connection> conn) {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    idle_.push_back(std::move(conn));
  }
  pool_cv_.notify_one();
}

Result<std::vector<ShardHit>> ShardSearcher::Search(const float* query, int64_t k) {
  ASSIGN_OR_RETURN(std::vector<std::vector<ScanHit>> scanned, Scan(std::span<const float* const>(&query, 1), k));
  return Resolve(scanned.front());
}

Result<std::optional<std::string>> ShardSearcher::GetKv(std::string_view key) {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> borrowed, BorrowConnection());
  ConnectionLease lease(this, std::move(borrowed));
  SqliteStatement stmt(lease.get().db, "SELECT v FROM kv WHERE k = ?");
  if (!stmt.ok()) return SqliteError(lease.get(), stmt.prepare_rc(), "kv lookup");
  sqlite3_bind_blob(stmt.get(), 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
  const int rc = stmt.Step();
  if (rc == SQLITE_DONE) return std::optional<std::string>();
  if (rc != SQLITE_ROW) return SqliteError(lease.get(), rc, "kv lookup");
  return std::optional<std::string>(std::string(stmt.Blob(0)));
}

Result<ShardRowCounts> ShardSearcher::CountRows() {
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> borrowed, BorrowConnection());
  ConnectionLease lease(this, std::move(borrowed));
  // vec0 keeps one row per vector in its vec_index_rowids shadow table.
  SqliteStatement stmt(lease.get().db,
                       "SELECT (SELECT count(*) FROM vec_index_rowids), (SELECT count(*) FROM vec_id_map)");
  if (!stmt.ok()) return SqliteError(lease.get(), stmt.prepare_rc(), "counting rows");
  const int rc = stmt.Step();
  if (rc != SQLITE_ROW) return SqliteError(lease.get(), rc, "counting rows");
  return ShardRowCounts{stmt.Int(0), stmt.Int(1)};
}

void ShardSearcher::ScanRanges(std::span<const float* const> queries, int64_t k, double max_distance,
                               std::span<const RowRange> ranges, std::span<const std::vector<int32_t>> range_queries,
                               std::vector<std::vector<ScanHit>>* out) const {
  // The rows an average query searches (all of them without ranges).
  int64_t rows = table_->vectors.rows();
  if (!ranges.empty()) {
    int64_t row_queries = 0;
    for (size_t r = 0; r < ranges.size(); ++r) {
      const int64_t n = range_queries.empty() ? static_cast<int64_t>(queries.size())
                                              : static_cast<int64_t>(range_queries[r].size());
      row_queries += (ranges[r].end - ranges[r].begin) * n;
    }
    rows = row_queries / std::max<int64_t>(static_cast<int64_t>(queries.size()), 1);
  }
  // The pre-scan pays where its candidates are a small part of the rows searched; otherwise the
  // float scan's own candidates are as cheap.
  if (sq8_ && k * kPrescanRowsPerCandidate <= rows / rescore_oversample_) {
    Sq8TopK(*table_, *sq8_, queries, k, out,
            {.oversample = rescore_oversample_, .max_distance = max_distance, .row_ranges = ranges,
             .range_queries = range_queries});
  } else {
    Vec0TopK(*table_, queries, k, out,
             {.max_distance = max_distance, .row_ranges = ranges, .range_queries = range_queries});
  }
}

Result<std::vector<std::vector<ScanHit>>> ShardSearcher::Scan(std::span<const float* const> queries,
                                                              int64_t k, double max_distance,
                                                              std::span<const std::vector<int32_t>> lists_of_query,
                                                              std::span<const uint64_t> allowed) {
  if (k < 0 || k > kMaxKnnK) {
    return Status::InvalidArgument(
        fmt::format("shard {}: k must be in 0..{} (got {})", shard_name_, kMaxKnnK, k));
  }
  std::vector<std::vector<ScanHit>> out(queries.size());
  if (k == 0 || queries.empty()) return out;
  if (!allowed.empty() && !table_) {
    return Status::FailedPrecondition(fmt::format(
        "shard {} is searched through vec0's KNN (it has columns the in-memory scan does not read), which cannot "
        "apply a filter", shard_name_));
  }
  if (table_) {
    // vec0 would answer a zero or non-finite query with NULL distances; the kernel refuses it.
    for (const float* query : queries) {
      RETURN_IF_ERROR(CheckVectorValues(std::span(query, static_cast<size_t>(dim_)), metric_, "query")
                          .WithContext(fmt::format("shard {}", shard_name_)));
    }
    const int64_t rows = table_->vectors.rows();
    if (!allowed.empty() && allowed.size() != BitmapWords(rows)) {
      return Status::InvalidArgument(fmt::format("shard {}: the allowed-rows bitmap has {} words for {} rows",
                                                 shard_name_, allowed.size(), rows));
    }
    // The index path: a query that searches every passing row of the shard scores exactly those,
    // with vec0's arithmetic, when they are few, rather than the candidate scan reading their runs.
    const bool index_path = !allowed.empty() && shardvec::CountRows(allowed) <= filter_index_rows();
    std::vector<int32_t> by_index;  // the queries that take it
    // Filtered queries whose lists hold few passing rows (at most filter_index_rows()): each scores
    // exactly those rows with vec0's arithmetic, as the index path.
    std::vector<std::pair<int32_t, std::vector<int64_t>>> by_list_rows;
    std::vector<RowRange> ranges;
    std::vector<std::vector<int32_t>> range_queries;
    if (!sublists_ || lists_of_query.empty()) {
      if (allowed.empty()) {
        ScanRanges(queries, k, max_distance, {}, {}, &out);
        return out;
      }
      if (index_path) {
        Vec0TopKOfRows(*table_, queries, SetRows(allowed), k, max_distance, &out);
        return out;
      }
      ranges.push_back(RowRange{0, rows});  // every query, every range (range_queries stays empty)
    } else {
      // Each probed list once, with the queries that probe it.
      const auto lists = static_cast<int32_t>(sublists_->ranges.size());
      std::vector<std::vector<int32_t>> queries_of(static_cast<size_t>(lists));
      for (size_t q = 0; q < lists_of_query.size() && q < queries.size(); ++q) {
        for (const int32_t list : lists_of_query[q]) {
          if (list < 0 || list >= lists) {
            return Status::InvalidArgument(
                fmt::format("shard {}: sub-list {} is outside [0, {})", shard_name_, list, lists));
          }
        }
        if (!allowed.empty() && lists_of_query[q].empty()) {
          // No lists named: a filtered query searches every allowed row.
          if (index_path) {
            by_index.push_back(static_cast<int32_t>(q));
            continue;
          }
          for (int32_t list = 0; list < lists; ++list) queries_of[static_cast<size_t>(list)].push_back(static_cast<int32_t>(q));
          continue;
        }
        if (!allowed.empty()) {
          int64_t passing = 0;
          for (const int32_t list : lists_of_query[q]) passing += CountSet(allowed, sublists_->ranges[static_cast<size_t>(list)]);
          if (passing <= filter_index_rows()) {
            std::vector<int64_t> rows_of_q;
            rows_of_q.reserve(static_cast<size_t>(passing));
            for (const int32_t list : lists_of_query[q]) {
              AppendSetRows(allowed, sublists_->ranges[static_cast<size_t>(list)], &rows_of_q);
            }
            by_list_rows.emplace_back(static_cast<int32_t>(q), std::move(rows_of_q));
            continue;
          }
        }
        for (const int32_t list : lists_of_query[q]) queries_of[static_cast<size_t>(list)].push_back(static_cast<int32_t>(q));
      }
      for (int32_t list = 0; list < lists; ++list) {
        if (queries_of[static_cast<size_t>(list)].empty()) continue;
        ranges.push_back(sublists_->ranges[static_cast<size_t>(list)]);
        range_queries.push_back(std::move(queries_of[static_cast<size_t>(list)]));
      }
    }
    if (!allowed.empty()) {
      // Each range split into its runs of allowed rows, each run scanned by the range's queries.
      std::vector<RowRange> runs;
      std::vector<std::vector<int32_t>> run_queries;
      for (size_t r = 0; r < ranges.size(); ++r) {
        for (const RowRange& run : SetRuns(allowed, ranges[r])) {
          runs.push_back(run);
          if (!range_queries.empty()) run_queries.push_back(range_queries[r]);
        }
      }
      ranges = std::move(runs);
      range_queries = std::move(run_queries);
    }
    // (Empty ranges: nothing to search; to ScanRanges they would mean every row.)
    if (!ranges.empty()) ScanRanges(queries, k, max_distance, ranges, range_queries, &out);
    if (!by_index.empty()) {
      std::vector<const float*> indexed;
      for (const int32_t q : by_index) indexed.push_back(queries[static_cast<size_t>(q)]);
      std::vector<std::vector<ScanHit>> hits;
      Vec0TopKOfRows(*table_, indexed, SetRows(allowed), k, max_distance, &hits);
      for (size_t i = 0; i < by_index.size(); ++i) out[static_cast<size_t>(by_index[i])] = std::move(hits[i]);
    }
    for (auto& [q, rows_of_q] : by_list_rows) {
      std::vector<std::vector<ScanHit>> hits;
      const float* query = queries[static_cast<size_t>(q)];
      Vec0TopKOfRows(*table_, std::span(&query, 1), rows_of_q, k, max_distance, &hits);
      out[static_cast<size_t>(q)] = std::move(hits[0]);
    }
    return out;
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> borrowed, BorrowConnection());
  ConnectionLease lease(this, std::move(borrowed));
  for (size_t q = 0; q < queries.size(); ++q) {
    RETURN_IF_ERROR(RunKnn(lease.get(), queries[q], k, &out[q]));
    std::erase_if(out[q], [max_distance](const ScanHit& hit) { return hit.score > max_distance; });
  }
  return out;
}

Result<std::vector<ShardHit>> ShardSearcher::Resolve(std::span<const ScanHit> hits) {
  std::vector<ShardHit> out;
  if (hits.empty()) return out;
  // Look each distinct rowid up once, a bounded IN list at a time.
  std::vector<int64_t> rowids;
  rowids.reserve(hits.size());
  for (const ScanHit& hit : hits) rowids.push_back(hit.rowid);
  std::sort(rowids.begin(), rowids.end());
  rowids.erase(std::unique(rowids.begin(), rowids.end()), rowids.end());
  std::vector<std::optional<RecordId>> ids;
  std::vector<std::optional<std::string>> payloads(rowids.size());
  if (ids_in_memory_) {
    ids.reserve(rowids.size());
    for (const int64_t rowid : rowids) {
      const auto it = ids_.find(rowid);
      ids.push_back(it == ids_.end() ? std::nullopt : std::optional<RecordId>(it->second));
    }
  }
  if (!ids_in_memory_ || has_payloads_) {
    ASSIGN_OR_RETURN(std::unique_ptr<Connection> borrowed, BorrowConnection());
    ConnectionLease lease(this, std::move(borrowed));
    for (size_t start = 0; start < rowids.size(); start += kMaxLookupRows) {
      const size_t end = std::min(rowids.size(), start + kMaxLookupRows);
      const std::vector<int64_t> part(rowids.begin() + static_cast<std::ptrdiff_t>(start),
                                      rowids.begin() + static_cast<std::ptrdiff_t>(end));
      if (!ids_in_memory_) {
        std::vector<std::optional<RecordId>> part_ids;
        RETURN_IF_ERROR(LookupIds(lease.get(), part, &part_ids));
        std::move(part_ids.begin(), part_ids.end(), std::back_inserter(ids));
      }
      if (has_payloads_) {
        std::vector<std::optional<std::string>> part_payloads;
        RETURN_IF_ERROR(LookupPayloads(lease.get(), part, &part_payloads));
        std::move(part_payloads.begin(), part_payloads.end(), payloads.begin() + static_cast<std::ptrdiff_t>(start));
      }
    }
  }
  out.reserve(hits.size());
  for (const ScanHit& hit : hits) {
    const size_t pos = static_cast<size_t>(std::lower_bound(rowids.begin(), rowids.end(), hit.rowid) - rowids.begin());
    // A row without an id-map entry falls back to its rowid, as the reference does.
    RecordId id = ids[pos] ? *ids[pos] : RecordId(hit.rowid);
    out.push_back(ShardHit{std::move(id), hit.score, payloads[pos], hit.rowid});
  }
  return out;
}

Status ShardSearcher::RunKnn(Connection& conn, const float* query, int64_t k,
                             std::vector<ScanHit>* rows) const {
  sqlite3_stmt* stmt = conn.knn->get();
  ResetOnExit reset(stmt);
  sqlite3_bind_blob(stmt, 1, query, static_cast<int>(dim_ * sizeof(float)), SQLITE_STATIC);
  sqlite3_bind_int64(stmt, 2, k);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const int64_t rowid = sqlite3_column_int64(stmt, 0);
    const bool is_null = sqlite3_column_type(stmt, 1) == SQLITE_NULL;
    const double distance = is_null ? 0.0 : sqlite3_column_double(stmt, 1);
    if (is_null || std::isnan(distance)) {
      return Status::Corruption(fmt::format(
          "shard {}: rowid {} has no distance (NULL; a NaN vector in the shard, or a zero query "
          "under cosine)",
          shard_name_, rowid));
    }
    rows->push_back(ScanHit{distance, rowid});
  }
  if (rc != SQLITE_DONE) return SqliteError(conn, rc, "the KNN query");
  return Status::OK();
}

namespace {

// Prepares (once per connection and padded length) "<prefix>(?,?,…)" and binds `rowids`, repeating
// the last one as padding: duplicates in an IN list match nothing extra.
Result<sqlite3_stmt*> BindInList(sqlite3* db, std::map<int64_t, SqliteStatement>& cache,
                                 std::string_view prefix, const std::vector<int64_t>& rowids) {
  const int64_t bucket = InListBucket(static_cast<int64_t>(rowids.size()));
  auto found = cache.find(bucket);
  if (found == cache.end()) {
    found = cache.try_emplace(bucket, db, InListSql(prefix, bucket), SQLITE_PREPARE_PERSISTENT).first;
    if (!found->second.ok()) {
      Status error(StatusCode::kIOError, sqlite3_errmsg(db));
      cache.erase(found);
      return error;
    }
  }
  sqlite3_stmt* stmt = found->second.get();
  for (int64_t i = 0; i < bucket; ++i) {
    const size_t source = std::min(static_cast<size_t>(i), rowids.size() - 1);
    sqlite3_bind_int64(stmt, static_cast<int>(i + 1), rowids[source]);
  }
  return stmt;
}

std::unordered_map<int64_t, size_t> PositionsOf(const std::vector<int64_t>& rowids) {
  std::unordered_map<int64_t, size_t> positions;
  positions.reserve(rowids.size());
  for (size_t i = 0; i < rowids.size(); ++i) positions.emplace(rowids[i], i);
  return positions;
}

std::string_view ColumnText(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return {};
  return {text, static_cast<size_t>(sqlite3_column_bytes(stmt, column))};
}

}  // namespace

Status ShardSearcher::LoadIdsAndPayloadPresence(Connection& conn) {
  int rc;
  {
    SqliteStatement id_map(conn.db, "SELECT internal_id, original_id FROM vec_id_map");
    if (!id_map.ok()) return SqliteError(conn, id_map.prepare_rc(), "reading the id map");
    Status st;
    while (st.ok() && (rc = id_map.Step()) == SQLITE_ROW) {
      const int64_t rowid = id_map.Int(0);
      Result<RecordId> id = DecodeOriginalId(ColumnText(id_map.get(), 1));
      if (id.ok()) {
        ids_.emplace(rowid, std::move(id).value());
      } else {
        st = id.status().WithContext(fmt::format("shard {}, rowid {}", shard_name_, rowid));
      }
    }
    RETURN_IF_ERROR(st);
    if (rc != SQLITE_DONE) return SqliteError(conn, rc, "reading the id map");
  }
  SqliteStatement any_payload(conn.db, "SELECT EXISTS (SELECT 1 FROM vec_payloads)");
  if (!any_payload.ok()) return SqliteError(conn, any_payload.prepare_rc(), "reading vec_payloads");
  rc = any_payload.Step();
  has_payloads_ = rc == SQLITE_ROW && any_payload.Int(0) != 0;
  if (rc != SQLITE_ROW) return SqliteError(conn, rc, "reading vec_payloads");
  ids_in_memory_ = true;
  return Status::OK();
}

Status ShardSearcher::LookupIds(Connection& conn, const std::vector<int64_t>& rowids,
                                std::vector<std::optional<RecordId>>* ids) const {
  ids->assign(rowids.size(), std::nullopt);
  Result<sqlite3_stmt*> bound = BindInList(conn.db, conn.id_lookups, kIdLookupSql, rowids);
  if (!bound.ok()) return SqliteError(conn, sqlite3_errcode(conn.db), "preparing the id lookup");
  sqlite3_stmt* stmt = *bound;
  ResetOnExit reset(stmt);
  const auto positions = PositionsOf(rowids);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const int64_t rowid = sqlite3_column_int64(stmt, 0);
    const auto pos = positions.find(rowid);
    if (pos == positions.end()) continue;
    Result<RecordId> id = DecodeOriginalId(ColumnText(stmt, 1));
    if (!id.ok()) {
      return id.status().WithContext(fmt::format("shard {}, rowid {}", shard_name_, rowid));
    }
    (*ids)[pos->second] = std::move(id).value();
  }
  if (rc != SQLITE_DONE) return SqliteError(conn, rc, "the id lookup");
  return Status::OK();
}

Status ShardSearcher::LookupPayloads(Connection& conn, const std::vector<int64_t>& rowids,
                                     std::vector<std::optional<std::string>>* payloads) const {
  payloads->assign(rowids.size(), std::nullopt);
  Result<sqlite3_stmt*> bound =
      BindInList(conn.db, conn.payload_lookups, kPayloadLookupSql, rowids);
  if (!bound.ok()) {
    return SqliteError(conn, sqlite3_errcode(conn.db), "preparing the payload lookup");
  }
  sqlite3_stmt* stmt = *bound;
  ResetOnExit reset(stmt);
  const auto positions = PositionsOf(rowids);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const auto pos = positions.find(sqlite3_column_int64(stmt, 0));
    if (pos == positions.end() || sqlite3_column_type(stmt, 1) == SQLITE_NULL) continue;
    (*payloads)[pos->second] = ReadablePayloadJson(ColumnText(stmt, 1));
  }
  if (rc != SQLITE_DONE) return SqliteError(conn, rc, "the payload lookup");
  return Status::OK();
}

}  // namespace shardvec
