// The PostgreSQL manifest store (include/shardvec/manifest_store.h) over libpq, with the reference's
// tables (store/postgres/pg_manifest_sql.h).
//
// How the pointer moves: the pointer table is append-only and its newest row (by updated_at) is
// current. Publish and SetCurrent each run as ONE transaction that first locks the pointer table in
// SHARE ROW EXCLUSIVE mode (it conflicts with itself and with plain INSERTs, not with readers), so
// pointer movers go one at a time; under the lock it reads the current manifest, decides (the
// publish guard, SetCurrent's expected ref), and appends a row whose updated_at is strictly after
// every existing row's. Publish writes the build and shard rows in the same transaction: a
// rejected publish (kRejectIfNewer) commits them without the pointer row, so the manifest stays
// listed for a rollback; any error rolls everything back.
#include <fmt/format.h>

#include <climits>
#include <mutex>

#include "common/json_text.h"
#include "common/log.h"
#include "common/time_util.h"
#include "format/manifest.h"
#include "shardvec/manifest_store.h"
#include "shardvec/status_macros.h"
#include "shardvec/text.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_manifest_sql.h"

namespace shardvec {
namespace {

// Text travels to PostgreSQL as C strings in UTF-8: a NUL would cut it short and other bytes are
// refused by the server. Both are bad input, named here.
Status CheckText(std::string_view text, std::string_view what) {
  if (text.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(fmt::format("{} '{}' contains a NUL byte, which PostgreSQL text cannot hold",
                                               what, EscapeForDisplay(text)));
  }
  return CheckUtf8(text, what);
}

Status CheckInteger(int64_t value, std::string_view what) {
  if (value < 0 || value > INT32_MAX) {
    return Status::InvalidArgument(
        fmt::format("{} {} does not fit the manifest table's INTEGER column (0..{})", what, value, INT32_MAX));
  }
  return Status::OK();
}

Status CheckManifest(const Manifest& m) {
  RETURN_IF_ERROR(CheckText(m.run_id, "run_id"));
  if (m.run_id.empty()) return Status::InvalidArgument("run_id is empty");
  if (m.format_version != kManifestFormatVersion) {
    return Status::InvalidArgument(fmt::format(
        "format_version {} cannot be stored: the PostgreSQL manifest tables hold format {} only",
        m.format_version, kManifestFormatVersion));
  }
  if (!ParseTimestamp(m.created_at)) {
    return Status::InvalidArgument(fmt::format("created_at '{}' is not an ISO-8601 UTC time",
                                               EscapeForDisplay(m.created_at)));
  }
  RETURN_IF_ERROR(CheckInteger(m.num_dbs, "num_dbs"));
  const std::pair<const std::string*, const char*> fields[] = {
      {&m.s3_prefix, "s3_prefix"}, {&m.key_col, "key_col"}, {&m.db_path_template, "db_path_template"},
      {&m.shard_prefix, "shard_prefix"}, {&m.key_encoding, "key_encoding"}};
  for (const auto& [value, what] : fields) {
    RETURN_IF_ERROR(CheckText(*value, what));
  }
  for (const ManifestShard& s : m.shards) {
    const std::string where = fmt::format("shard db_id {}", s.db_id);
    RETURN_IF_ERROR(CheckInteger(s.db_id, "shard db_id"));
    RETURN_IF_ERROR(CheckInteger(s.attempt, where + " attempt"));
    RETURN_IF_ERROR(CheckInteger(s.row_count, where + " row_count"));
    if (s.db_url) RETURN_IF_ERROR(CheckText(*s.db_url, where + " db_url"));
    if (s.checkpoint_id) RETURN_IF_ERROR(CheckText(*s.checkpoint_id, where + " checkpoint_id"));
  }
  return Status::OK();
}

std::string Text(const PgValue& v) { return v.value_or(""); }

int64_t Integer(const PgValue& v) { return v ? std::stoll(*v) : 0; }

class PostgresManifestStore final : public ManifestStore {
 public:
  PostgresManifestStore(std::unique_ptr<PgConnection> conn, PgManifestSql sql, std::string description)
      : conn_(std::move(conn)), sql_(std::move(sql)), description_(std::move(description)) {}

  Status EnsureTables() {
    PgTransaction tx(*conn_, sql_.read_committed);
    RETURN_IF_ERROR(tx.begun());
    RETURN_IF_ERROR(conn_->Run(sql_.ensure_lock, {sql_.builds_table}, "lock for CREATE TABLE"));
    for (const std::string* ddl : {&sql_.create_builds, &sql_.create_shards, &sql_.create_pointer,
                                   &sql_.create_pointer_index}) {
      RETURN_IF_ERROR(conn_->Run(*ddl, {}, "create the manifest tables"));
    }
    return tx.Commit();
  }

  Status CheckTablesExist() {
    ASSIGN_OR_RETURN(auto rows, conn_->Exec(sql_.tables_exist,
                                            {sql_.builds_table, sql_.shards_table, sql_.pointer_table},
                                            "look up the manifest tables"));
    std::vector<std::string> missing;
    const std::string* names[] = {&sql_.builds_table, &sql_.shards_table, &sql_.pointer_table};
    for (size_t i = 0; i < 3; ++i) {
      if (!rows.at(0).at(i)) missing.push_back(*names[i]);
    }
    if (missing.empty()) return Status::OK();
    return Status::NotFound(fmt::format(
        "PostgreSQL at {} has no table {} and ensure_table is false: create the tables (open the store "
        "once with ensure_table true, or run its CREATE TABLE statements)",
        description_, fmt::join(missing, ", ")));
  }

  Result<ManifestRef> Publish(const Manifest& manifest, const PublishGuard& guard) override {
    RETURN_IF_ERROR(CheckManifest(manifest));
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(conn_->EnsureOpen());
    PgTransaction tx(*conn_, sql_.read_committed);
    RETURN_IF_ERROR(tx.begun());
    RETURN_IF_ERROR(conn_->Run(sql_.lock_pointer, {}, "lock the pointer table"));
    ASSIGN_OR_RETURN(auto current, conn_->Exec(sql_.current, {}, "read the current manifest"));
    Status inserted = conn_->Run(sql_.insert_build,
        {manifest.run_id, manifest.created_at, std::to_string(manifest.num_dbs), manifest.s3_prefix,
         manifest.key_col, manifest.db_path_template, manifest.shard_prefix, manifest.key_encoding,
         PythonJsonDumps(manifest.sharding), PythonJsonDumps(manifest.custom)},
        fmt::format("insert the manifest of run_id '{}'", EscapeForDisplay(manifest.run_id)));
    if (inserted.code() == StatusCode::kAlreadyExists) {
      return Status::AlreadyExists(fmt::format("a manifest with run_id '{}' is already in {} ({}); manifests "
                                               "are never overwritten", EscapeForDisplay(manifest.run_id),
                                               sql_.builds_table, description_))
          .WithKind(ErrorKind::kManifestExists);
    }
    RETURN_IF_ERROR(inserted);
    for (const ManifestShard& s : manifest.shards) {
      RETURN_IF_ERROR(conn_->Run(sql_.insert_shard,
          {manifest.run_id, std::to_string(s.db_id), s.db_url, std::to_string(s.attempt),
           std::to_string(s.row_count), std::to_string(s.db_bytes), s.checkpoint_id, std::nullopt, std::nullopt,
           PythonJsonDumps(s.writer_info)},
          fmt::format("insert shard db_id {}", s.db_id)));
    }
    if (guard.policy == PublishPolicy::kRejectIfNewer && !current.empty()) {
      const std::string started = FormatTimestamp(guard.run_started);
      const std::string current_ref = Text(current[0][0]);
      const std::string current_published = Text(current[0][2]);
      if (current_published > started) {
        RETURN_IF_ERROR(tx.Commit());  // the manifest stays listed; the pointer does not move
        LogEvent(LogLevel::kWarning, "publish_conflict",
                 {{"run_id", manifest.run_id}, {"manifest_ref", manifest.run_id},
                  {"current_manifest_ref", current_ref}});
        return Status::Conflict(fmt::format(
                   "PublishConflictError: the current manifest of {} is now run_id '{}', published at {}, after "
                   "this run started at {}; this run's manifest '{}' stays in history (use rollback to make "
                   "it current, or the last-writer-wins publish policy)",
                   description_, EscapeForDisplay(current_ref), current_published, started,
                   EscapeForDisplay(manifest.run_id)))
            .WithKind(ErrorKind::kPublishConflict)
            .WithSubject(manifest.run_id);
      }
    }
    ASSIGN_OR_RETURN(auto pointer, conn_->Exec(sql_.insert_pointer, {manifest.run_id}, "append the pointer row"));
    RETURN_IF_ERROR(tx.Commit());
    LogEvent(LogLevel::kInfo, "vector_manifest_published",
             {{"run_id", manifest.run_id}, {"manifest_ref", manifest.run_id}, {"store", description_}});
    return ManifestRef{manifest.run_id, manifest.run_id, Text(pointer.at(0).at(0))};
  }

  Result<std::optional<ManifestRef>> LoadCurrent() override {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(conn_->EnsureOpen());
    ASSIGN_OR_RETURN(auto rows, conn_->Exec(sql_.current, {}, "read the current manifest"));
    if (rows.empty()) return std::optional<ManifestRef>();
    const std::string ref = Text(rows[0][0]);
    return std::optional<ManifestRef>(ManifestRef{ref, ref, Text(rows[0][1])});
  }

  Result<Manifest> LoadManifest(const std::string& ref) override {
    RETURN_IF_ERROR(CheckText(ref, "manifest ref"));
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(conn_->EnsureOpen());
    // One snapshot for both reads, so a concurrent writer cannot be seen half-way.
    PgTransaction tx(*conn_, sql_.snapshot_read);
    RETURN_IF_ERROR(tx.begun());
    const std::string what = fmt::format("read manifest '{}'", EscapeForDisplay(ref));
    ASSIGN_OR_RETURN(auto build, conn_->Exec(sql_.select_build, {ref}, what));
    if (build.empty()) {
      return Status::NotFound(fmt::format("manifest '{}' does not exist in {} ({})", EscapeForDisplay(ref),
                                          sql_.builds_table, description_));
    }
    ASSIGN_OR_RETURN(auto shards, conn_->Exec(sql_.select_shards, {ref}, what));
    RETURN_IF_ERROR(tx.Commit());
    const PgRow& b = build[0];
    Manifest m;
    m.run_id = Text(b[0]);
    m.created_at = Text(b[1]);
    m.num_dbs = Integer(b[2]);
    m.s3_prefix = Text(b[3]);
    m.key_col = Text(b[4]);
    m.db_path_template = Text(b[5]);
    m.shard_prefix = Text(b[6]);
    m.key_encoding = Text(b[7]);
    m.sharding = ParseManifestJson(Text(b[8]));
    m.custom = ParseManifestJson(Text(b[9]));
    m.format_version = kManifestFormatVersion;  // the tables keep no version: format 4 is the only one
    for (const PgRow& r : shards) {
      ManifestShard s;
      s.db_id = Integer(r[0]);
      s.db_url = r[1];
      s.attempt = Integer(r[2]);
      s.row_count = Integer(r[3]);
      s.db_bytes = Integer(r[4]);
      s.checkpoint_id = r[5];
      // The reference writes NULL writer_info as its default; min_key/max_key are not vector fields.
      if (r[8] && *r[8] != "null") s.writer_info = ParseManifestJson(*r[8]);
      m.shards.push_back(std::move(s));
    }
    RETURN_IF_ERROR(ValidateManifest(m).WithContext(fmt::format("manifest '{}' in {}", EscapeForDisplay(ref),
                                                                description_)));
    return m;
  }

  Result<std::vector<ManifestRef>> ListManifests(int64_t limit) override {
    if (limit < 0) return Status::InvalidArgument(fmt::format("limit must be >= 0 (got {})", limit));
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(conn_->EnsureOpen());
    const PgValue bound = limit == 0 ? PgValue() : PgValue(std::to_string(limit));
    ASSIGN_OR_RETURN(auto rows, conn_->Exec(sql_.list_builds, {bound}, "list manifests"));
    std::vector<ManifestRef> out;
    out.reserve(rows.size());
    for (const PgRow& r : rows) out.push_back(ManifestRef{Text(r[0]), Text(r[0]), Text(r[1])});
    return out;
  }

  Status SetCurrent(const std::string& ref, const std::optional<ManifestRef>& expected) override {
    RETURN_IF_ERROR(CheckText(ref, "manifest ref"));
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(conn_->EnsureOpen());
    PgTransaction tx(*conn_, sql_.read_committed);
    RETURN_IF_ERROR(tx.begun());
    RETURN_IF_ERROR(conn_->Run(sql_.lock_pointer, {}, "lock the pointer table"));
    ASSIGN_OR_RETURN(auto exists, conn_->Exec(sql_.build_exists, {ref}, "look up the manifest"));
    if (exists.empty()) {
      return Status::NotFound(fmt::format("manifest '{}' does not exist in {} ({})", EscapeForDisplay(ref),
                                          sql_.builds_table, description_));
    }
    if (expected) {
      ASSIGN_OR_RETURN(auto current, conn_->Exec(sql_.current, {}, "read the current manifest"));
      const std::string now = current.empty() ? "" : Text(current[0][0]);
      if (now != expected->ref) {
        return Status::Conflict(fmt::format(
            "the current manifest of {} is {} now, not '{}' as expected: another writer moved it",
            description_, now.empty() ? "unset" : "'" + EscapeForDisplay(now) + "'",
            EscapeForDisplay(expected->ref)));
      }
    }
    RETURN_IF_ERROR(conn_->Run(sql_.insert_pointer, {ref}, "append the pointer row"));
    return tx.Commit();
  }

  std::string Describe() const override {
    return fmt::format("{} (tables {}, {}, {})", description_, sql_.builds_table, sql_.shards_table,
                       sql_.pointer_table);
  }

 private:
  std::mutex mu_;  // one statement sequence on the connection at a time
  std::unique_ptr<PgConnection> conn_;
  const PgManifestSql sql_;
  const std::string description_;
};

}  // namespace

Result<std::unique_ptr<ManifestStore>> OpenPostgresManifestStore(std::string_view dsn,
                                                                 const PostgresManifestStoreOptions& options) {
  ASSIGN_OR_RETURN(PgManifestSql sql,
                   MakePgManifestSql(options.table_name, options.pointer_table_name, SqlPlaceholders::kDollar));
  ASSIGN_OR_RETURN(std::string description, DescribePgDsn(dsn));
  const std::string dsn_text(dsn);
  if (dsn_text.find('\0') != std::string::npos) return Status::InvalidArgument("dsn contains a NUL byte");
  ASSIGN_OR_RETURN(auto conn, PgConnection::Connect(dsn_text, description));
  auto store = std::make_unique<PostgresManifestStore>(std::move(conn), std::move(sql), description);
  RETURN_IF_ERROR(options.ensure_table ? store->EnsureTables() : store->CheckTablesExist());
  return std::unique_ptr<ManifestStore>(std::move(store));
}

}  // namespace shardvec
