#include "write/delta_shard.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "common/file_util.h"
#include "common/sqlite/sqlite_blob.h"
#include "common/sqlite/sqlite_statement.h"
#include "common/status_macros.h"
#include "routing/distance.h"
#include "shard/filter_column_builder.h"
#include "shard/filter_column_table.h"
#include "shard/scan_kernel.h"
#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shard/sq8_table.h"
#include "shard/sqlite_vec.h"
#include "shard/sublists.h"
#include "shard/vec0_storage.h"

namespace shardvec {
namespace {

struct DbHandle {
  sqlite3* db = nullptr;
  ~DbHandle() {
    if (db != nullptr) sqlite3_close(db);
  }
};

class Editor {
 public:
  Editor(sqlite3* db, std::string_view name) : db_(db), name_(name) {}

  Status Error(std::string_view what) const {
    return Status::IOError(fmt::format("shard {}: {}: {}", name_, what, sqlite3_errmsg(db_)));
  }
  Status Exec(const std::string& sql) const {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      Status st = Status::IOError(fmt::format("shard {}: {}: {}", name_, sql, err != nullptr ? err : "?"));
      sqlite3_free(err);
      return st;
    }
    return Status::OK();
  }
  bool HasTable(std::string_view table) const {
    SqliteStatement stmt(db_, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
    if (!stmt.ok()) return false;
    sqlite3_bind_text(stmt.get(), 1, table.data(), static_cast<int>(table.size()), SQLITE_STATIC);
    return stmt.Step() == SQLITE_ROW;
  }
  // Runs `stmt` (bound by the caller) and resets it.
  Status Run(SqliteStatement& stmt, std::string_view what) const {
    if (!stmt.ok()) return Error(what);
    if (stmt.Run() != SQLITE_DONE) return Error(what);
    return Status::OK();
  }

 private:
  sqlite3* db_;
  std::string_view name_;
};

// One base row the id map names.
struct LiveRow {
  int64_t rowid = 0;
  std::string text;  // its id-map text
};

// "int" or "str" for an id-map text as EncodeOriginalId writes it, else "".
std::string_view IdTypeOfText(std::string_view text) {
  if (text.ends_with("\"t\": \"int\"}")) return "int";
  if (text.ends_with("\"t\": \"str\"}")) return "str";
  return "";
}

// The base rows' routing distance to `centroid` over the first vec0 chunk's valid slots.
Status SampleBaseDistance(sqlite3* db, std::string_view name, const ShardEdit& edit, ShardEditOutcome* out) {
  SqliteStatement chunk(db, "SELECT c.size, c.validity, v.vectors FROM vec_index_chunks AS c "
                            "JOIN vec_index_vector_chunks00 AS v ON v.rowid = c.chunk_id ORDER BY c.chunk_id LIMIT 1");
  if (!chunk.ok()) return Status::IOError(fmt::format("shard {}: reading a vec0 chunk: {}", name, sqlite3_errmsg(db)));
  if (chunk.Step() != SQLITE_ROW) return Status::OK();
  const int64_t slots = chunk.Int(0);
  const std::string_view validity = chunk.Blob(1), vectors = chunk.Blob(2);
  const size_t row_bytes = static_cast<size_t>(edit.dim) * sizeof(float);
  if (validity.size() * 8 < static_cast<size_t>(slots) || vectors.size() < static_cast<size_t>(slots) * row_bytes) {
    return Status::Corruption(fmt::format("shard {}: its first vec0 chunk is cut short", name));
  }
  std::vector<float> row(static_cast<size_t>(edit.dim));
  for (int64_t slot = 0; slot < slots; ++slot) {
    if (!Vec0SlotValid(validity, slot)) continue;
    std::memcpy(row.data(), vectors.data() + static_cast<size_t>(slot) * row_bytes, row_bytes);
    out->base_distance_sum += RoutingDistance(edit.metric, row.data(), edit.routing_centroid, edit.dim);
    ++out->base_distance_rows;
  }
  return Status::OK();
}

// A vec0 slot no row holds.
struct FreeSlot {
  int64_t chunk_id = 0;
  int64_t slot = 0;
};

Result<std::vector<FreeSlot>> FreeSlots(sqlite3* db, std::string_view name) {
  SqliteStatement chunks(db, "SELECT chunk_id, size, validity FROM vec_index_chunks ORDER BY chunk_id");
  if (!chunks.ok()) return Status::IOError(fmt::format("shard {}: reading vec_index_chunks: {}", name, sqlite3_errmsg(db)));
  std::vector<FreeSlot> out;
  int rc;
  while ((rc = chunks.Step()) == SQLITE_ROW) {
    const int64_t id = chunks.Int(0), size = chunks.Int(1);
    const std::string_view validity = chunks.Blob(2);
    if (size < 0 || validity.size() * 8 < static_cast<size_t>(size)) {
      return Status::Corruption(fmt::format("shard {}: vec0 chunk {} of size {} has a {}-byte validity bitmap", name,
                                            id, size, validity.size()));
    }
    for (int64_t slot = 0; slot < size; ++slot) {
      if (!Vec0SlotValid(validity, slot)) out.push_back(FreeSlot{id, slot});
    }
  }
  if (rc != SQLITE_DONE) return Status::IOError(fmt::format("shard {}: reading vec_index_chunks: {}", name, sqlite3_errmsg(db)));
  return out;
}

// Puts rows into free slots as vec0 itself places a row (sqlite-vec v0.1.9's layout, which
// IsKnownVec0Layout checked): the vector into the chunk's vectors blob, the validity bit and the rowid
// into the chunk's bitmaps, and the row's place into vec_index_rowids. Its blob handles move from
// chunk to chunk and its statement is prepared once: opening a blob compiles a statement, which had
// been most of the cost of an added row. Nothing else writes these rows while the handles are open
// (vec0's own inserts come after the free slots are filled), so a handle does not expire.
class SlotWriter {
 public:
  SlotWriter(sqlite3* db, std::string_view name, int64_t dim)
      : db_(db), name_(name), row_bytes_(dim * static_cast<int64_t>(sizeof(float))),
        place_(db, "INSERT INTO vec_index_rowids(rowid, id, chunk_id, chunk_offset) VALUES (?, NULL, ?, ?)") {}

  Status Write(const FreeSlot& at, int64_t rowid, const float* vector) {
    const auto fail = [&](std::string_view what) {
      return Status::IOError(fmt::format("shard {}: writing rowid {} into vec0 chunk {} slot {}: {}: {}", name_, rowid,
                                         at.chunk_id, at.slot, what, sqlite3_errmsg(db_)));
    };
    if (vectors_.Write(at.chunk_id, vector, static_cast<int>(row_bytes_), at.slot * row_bytes_) != SQLITE_OK) {
      return fail("vectors");
    }
    if (rowids_.Write(at.chunk_id, &rowid, sizeof(rowid), at.slot * 8) != SQLITE_OK) return fail("rowids");
    unsigned char bits = 0;
    if (validity_.Read(at.chunk_id, &bits, 1, at.slot / 8) != SQLITE_OK) return fail("validity");
    bits = static_cast<unsigned char>(bits | (1u << (at.slot % 8)));
    if (validity_.Write(at.chunk_id, &bits, 1, at.slot / 8) != SQLITE_OK) return fail("validity");
    sqlite3_bind_int64(place_.get(), 1, rowid);
    sqlite3_bind_int64(place_.get(), 2, at.chunk_id);
    sqlite3_bind_int64(place_.get(), 3, at.slot);
    if (!place_.ok() || place_.Run() != SQLITE_DONE) return fail("vec_index_rowids");
    return Status::OK();
  }

 private:
  sqlite3* db_;
  std::string_view name_;
  int64_t row_bytes_;
  SqliteBlobCursor vectors_{db_, "vec_index_vector_chunks00", "vectors"};
  SqliteBlobCursor rowids_{db_, "vec_index_chunks", "rowids"};
  SqliteBlobCursor validity_{db_, "vec_index_chunks", "validity"};
  SqliteStatement place_;
};

const RowRange& RangeOf(const StoredSublists& stored, int64_t list) { return stored.ranges[static_cast<size_t>(list)]; }

// The live rowids in [range) of `sorted` (ascending).
int64_t RowsIn(const std::vector<int64_t>& sorted, const RowRange& range) {
  return std::lower_bound(sorted.begin(), sorted.end(), range.end) -
         std::lower_bound(sorted.begin(), sorted.end(), range.begin);
}

// Rewrites the filter columns by rowid over [0, end) (rowids no row holds are null) and returns their
// statistics over the live rows.
Result<std::string> RewriteFilterColumns(sqlite3* db, const Editor& ed, std::string_view name,
                                         const std::vector<FilterColumnSpec>& specs,
                                         const std::unordered_map<int64_t, const RecordId*>& added_ids, int64_t end,
                                         int64_t live) {
  FilterColumnsBuilder builder(specs);
  SqliteStatement ids(db, "SELECT internal_id FROM vec_id_map ORDER BY internal_id");
  SqliteStatement payloads(db, "SELECT rowid, payload FROM vec_payloads ORDER BY rowid");
  if (!ids.ok() || !payloads.ok()) return ed.Error("reading the rows for the filter columns");
  int ids_rc = ids.Step(), payloads_rc = payloads.Step();
  for (int64_t rowid = 0; rowid < end; ++rowid) {
    const bool present = ids_rc == SQLITE_ROW && ids.Int(0) == rowid;
    std::optional<std::string> payload;
    if (payloads_rc == SQLITE_ROW && payloads.Int(0) == rowid) {
      payload = payloads.Text(1);
      payloads_rc = payloads.Step();
    }
    // An added row is named by its id; a base row's values passed when it was built.
    const auto added = added_ids.find(rowid);
    const RecordId id = added != added_ids.end() ? *added->second : RecordId(rowid);
    RETURN_IF_ERROR(builder.AddRow(id, present ? payload : std::nullopt));
    if (present) ids_rc = ids.Step();
  }
  const FilterColumns columns = builder.Finish({});
  nlohmann::json stats = FilterColumnStats(columns);
  const int64_t holes = end - live;
  for (auto& [column, s] : stats.items()) {
    if (s.is_object() && s.contains("nulls")) s["nulls"] = s["nulls"].get<int64_t>() - holes;
  }
  RETURN_IF_ERROR(ed.Exec(fmt::format("DROP TABLE {}", kFilterColumnsTable)));
  RETURN_IF_ERROR(WriteFilterColumnsTable(db, columns, name));
  return stats.dump();
}

}  // namespace

Result<std::optional<ShardEditOutcome>> EditShardInPlace(const std::filesystem::path& file, std::string_view name,
                                                         const ShardEdit& edit, std::string* why) {
  const auto refuse = [&](std::string reason) {
    *why = std::move(reason);
    return std::optional<ShardEditOutcome>();
  };
  RETURN_IF_ERROR(EnsureSqliteVecLoaded());
  DbHandle handle;
  if (sqlite3_open_v2(file.c_str(), &handle.db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    return Status::IOError(fmt::format("shard {}: cannot open '{}': {}", name, file.string(),
                                       handle.db != nullptr ? sqlite3_errmsg(handle.db) : "out of memory"));
  }
  sqlite3* db = handle.db;
  const Editor ed(db, name);
  // A private copy, uploaded whole or thrown away: no journal.
  // Mapped reads: vec0 reaches a slot of a chunk's vectors by walking the blob's overflow pages, which
  // through pread copies every page it passes.
  for (const char* pragma : {"PRAGMA journal_mode=OFF", "PRAGMA synchronous=OFF", "PRAGMA locking_mode=EXCLUSIVE",
                             "PRAGMA temp_store=MEMORY", "PRAGMA mmap_size=2147418112"}) {
    RETURN_IF_ERROR(ed.Exec(pragma));
  }
  if (!IsKnownVec0Layout(db)) return refuse("its vec0 tables are not in a layout shardvec writes");
  ASSIGN_OR_RETURN(const std::optional<Sq8TableInfo> sq8, ReadSq8TableInfo(db, edit.dim, name));

  // The live rows, and those the update removes.
  std::vector<LiveRow> rows;
  {
    SqliteStatement select(db, "SELECT internal_id, original_id FROM vec_id_map ORDER BY internal_id");
    if (!select.ok()) return ed.Error("reading the id map");
    int rc;
    while ((rc = select.Step()) == SQLITE_ROW) rows.push_back(LiveRow{select.Int(0), select.Text(1)});
    if (rc != SQLITE_DONE) return ed.Error("reading the id map");
  }
  ShardEditOutcome out;
  out.base_rows = static_cast<int64_t>(rows.size());
  std::vector<size_t> removed;  // indexes into rows
  const auto find_removed = [&](bool decode) -> Status {
    removed.clear();
    for (size_t i = 0; i < rows.size(); ++i) {
      if (decode) {
        ASSIGN_OR_RETURN(RecordId id, DecodeOriginalId(rows[i].text));
        rows[i].text = EncodeOriginalId(id);
      }
      if (edit.changed->count(rows[i].text)) removed.push_back(i);
    }
    return Status::OK();
  };
  RETURN_IF_ERROR(find_removed(false));
  {
    // An id the index places here but no id-map text matched: texts another writer formatted otherwise.
    std::unordered_set<std::string_view> found;
    for (size_t i : removed) found.insert(rows[i].text);
    if (std::any_of(edit.expected_here.begin(), edit.expected_here.end(),
                    [&](const std::string& t) { return !found.count(t); })) {
      RETURN_IF_ERROR(find_removed(true).WithContext(fmt::format("shard {}: its id map", name)));
    }
  }
  const auto adds = static_cast<int64_t>(edit.adds.size());
  const int64_t live = out.base_rows - static_cast<int64_t>(removed.size()) + adds;
  if (live == 0) return refuse("no row is left");

  ASSIGN_OR_RETURN(std::optional<StoredSublists> stored, ReadSublistsTable(db, edit.dim, name));
  if (stored && stored->ranges.empty()) stored.reset();
  if (!stored && SublistCount(live, edit.sublists) > 1) return refuse("a rebuild would give it sub-lists");

  // The live rowids after the removals, ascending.
  std::vector<int64_t> kept;
  kept.reserve(rows.size());
  {
    size_t r = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (r < removed.size() && removed[r] == i) {
        ++r;
        continue;
      }
      kept.push_back(rows[i].rowid);
    }
  }
  const int64_t max_rowid = rows.empty() ? -1 : rows.back().rowid;
  const int64_t covered = stored ? stored->ranges.back().end : 0;
  const int64_t first_appended = std::max(max_rowid + 1, covered);

  // The lists: one per distinct centroid (as a reader takes them), the stored ranges of each.
  std::vector<std::vector<int64_t>> groups;
  std::vector<float> group_centroids;
  int64_t appended = 0;  // live rows in ranges after a centroid's first
  if (stored) {
    groups = ListsByCentroid(*stored, edit.dim);
    for (const std::vector<int64_t>& group : groups) {
      const float* centroid = stored->centroids.data() + group.front() * edit.dim;
      group_centroids.insert(group_centroids.end(), centroid, centroid + edit.dim);
      for (size_t i = 1; i < group.size(); ++i) appended += RowsIn(kept, RangeOf(*stored, group[i]));
    }
  }

  // Each added row's list: its nearest centroid.
  std::vector<int64_t> group_of_add(static_cast<size_t>(adds), 0);
  if (!groups.empty() && adds > 0) {
    const ScanTable table = CentroidTable(group_centroids.data(), static_cast<int64_t>(groups.size()), edit.dim, edit.metric);
    std::vector<const float*> queries;
    for (const ShardEdit::Row& row : edit.adds) queries.push_back(row.vector);
    std::vector<std::vector<ScanHit>> nearest;
    ScanTopK(table, queries, 1, &nearest);
    for (size_t i = 0; i < nearest.size(); ++i) {
      if (!nearest[i].empty()) group_of_add[i] = nearest[i].front().rowid;
    }
  }
  // Each added row's rowid: a free rowid of its list's ranges (one a removed row left, say) while
  // there is one, else a rowid past the others, in a further range of its list (list by list).
  std::vector<int64_t> rowid_of_add(static_cast<size_t>(adds), -1);
  {
    std::vector<int64_t> free_rowids;
    std::vector<size_t> free_at(groups.size() + 1, 0);  // group g's free rowids: [free_at[g], free_at[g + 1])
    for (size_t g = 0; g < groups.size(); ++g) {
      free_at[g] = free_rowids.size();
      for (const int64_t list : groups[g]) {
        const RowRange& range = RangeOf(*stored, list);
        auto live_it = std::lower_bound(kept.begin(), kept.end(), range.begin);
        for (int64_t rowid = range.begin; rowid < std::min(range.end, first_appended); ++rowid) {
          if (live_it != kept.end() && *live_it == rowid) {
            ++live_it;
          } else {
            free_rowids.push_back(rowid);
          }
        }
      }
    }
    free_at[groups.size()] = free_rowids.size();
    std::vector<size_t> next_free(free_at.begin(), free_at.end() - 1);
    for (int64_t i = 0; i < adds; ++i) {
      if (groups.empty()) break;
      const auto g = static_cast<size_t>(group_of_add[static_cast<size_t>(i)]);
      if (next_free[g] < free_at[g + 1]) rowid_of_add[static_cast<size_t>(i)] = free_rowids[next_free[g]++];
    }
    if (groups.empty()) {
      // Without lists, the holes below the last rowid take the rows.
      auto live_it = kept.begin();
      int64_t i = 0;
      for (int64_t rowid = 0; rowid < first_appended && i < adds; ++rowid) {
        if (live_it != kept.end() && *live_it == rowid) {
          ++live_it;
        } else {
          rowid_of_add[static_cast<size_t>(i++)] = rowid;
        }
      }
    }
  }
  // The rows past the others, list by list.
  std::vector<size_t> appended_adds;
  for (size_t i = 0; i < rowid_of_add.size(); ++i) {
    if (rowid_of_add[i] < 0) appended_adds.push_back(i);
  }
  std::stable_sort(appended_adds.begin(), appended_adds.end(),
                   [&](size_t a, size_t b) { return group_of_add[a] < group_of_add[b]; });
  for (size_t k = 0; k < appended_adds.size(); ++k) rowid_of_add[appended_adds[k]] = first_appended + static_cast<int64_t>(k);
  const int64_t end = first_appended + static_cast<int64_t>(appended_adds.size());
  if (!groups.empty()) appended += static_cast<int64_t>(appended_adds.size());

  const int64_t holes = end - live;
  const auto limit = static_cast<int64_t>(kMaxEditedFraction * static_cast<double>(live));
  if (holes > limit || appended > limit) {
    return refuse(fmt::format("{} of its {} rows would be holes left by deletes and {} appended to its lists since "
                              "it was built (over {:.0f}% each calls for a rebuild)",
                              holes, live, appended, kMaxEditedFraction * 100));
  }

  // With int8 codes: the added rows outside the ranges the shard was built with. When too many are,
  // the ranges are trained anew on the final rows and every code rewritten (below).
  if (sq8) {
    for (const ShardEdit::Row& row : edit.adds) out.int8_rows_outside_ranges += Sq8WithinRanges(sq8->params, row.vector) ? 0 : 1;
    out.int8_ranges_retrained =
        out.int8_rows_outside_ranges > static_cast<int64_t>(kMaxOutOfRangeFraction * static_cast<double>(live));
  }

  if (edit.routing_centroid != nullptr) RETURN_IF_ERROR(SampleBaseDistance(db, name, edit, &out));

  RETURN_IF_ERROR(ed.Exec("BEGIN"));
  {
    SqliteStatement delete_vector(db, "DELETE FROM vec_index WHERE rowid = ?");
    SqliteStatement delete_id(db, "DELETE FROM vec_id_map WHERE internal_id = ?");
    SqliteStatement delete_payload(db, "DELETE FROM vec_payloads WHERE rowid = ?");
    for (size_t i : removed) {
      for (SqliteStatement* stmt : {&delete_vector, &delete_id, &delete_payload}) {
        sqlite3_bind_int64(stmt->get(), 1, rows[i].rowid);
        RETURN_IF_ERROR(ed.Run(*stmt, "deleting a row"));
      }
      const bool upserted = edit.changed->at(rows[i].text);
      (upserted ? out.replaced : out.deleted) += 1;
      if (!upserted) out.deleted_ids.push_back(rows[i].text);
      out.removed_ids.push_back(rows[i].text);
    }
  }
  {
    // The slots the removed rows freed (and any other free slot), chunk by chunk: added rows fill them
    // before vec0 makes a new chunk, so a shard whose rows are replaced does not grow.
    ASSIGN_OR_RETURN(std::vector<FreeSlot> free_slots, FreeSlots(db, name));
    size_t next_free = 0;
    SlotWriter slots(db, name, edit.dim);
    SqliteStatement insert_vector(db, "INSERT INTO vec_index(rowid, embedding) VALUES (?, ?)");
    SqliteStatement insert_id(db, "INSERT INTO vec_id_map(internal_id, original_id) VALUES (?, ?)");
    SqliteStatement insert_payload(db, "INSERT INTO vec_payloads(rowid, payload) VALUES (?, ?)");
    std::string text;
    for (int64_t i = 0; i < adds; ++i) {
      const ShardEdit::Row& row = edit.adds[static_cast<size_t>(i)];
      if (edit.before_row) RETURN_IF_ERROR(edit.before_row());
      const int64_t rowid = rowid_of_add[static_cast<size_t>(i)];
      text = EncodeOriginalId(row.id);
      sqlite3_bind_int64(insert_id.get(), 1, rowid);
      sqlite3_bind_text(insert_id.get(), 2, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
      RETURN_IF_ERROR(ed.Run(insert_id, "inserting into vec_id_map"));
      if (next_free < free_slots.size()) {
        RETURN_IF_ERROR(slots.Write(free_slots[next_free++], rowid, row.vector));
      } else {
        sqlite3_bind_int64(insert_vector.get(), 1, rowid);
        sqlite3_bind_blob(insert_vector.get(), 2, row.vector, static_cast<int>(edit.dim * sizeof(float)), SQLITE_STATIC);
        RETURN_IF_ERROR(ed.Run(insert_vector, "inserting into vec_index"));
      }
      if (row.payload != nullptr && row.payload->has_value()) {
        sqlite3_bind_int64(insert_payload.get(), 1, rowid);
        sqlite3_bind_text(insert_payload.get(), 2, (*row.payload)->data(), static_cast<int>((*row.payload)->size()),
                          SQLITE_STATIC);
        RETURN_IF_ERROR(ed.Run(insert_payload, "inserting into vec_payloads"));
      }
    }
    // The appended rows' ranges, one per list that got some, with that list's centroid.
    if (!groups.empty() && !appended_adds.empty()) {
      SqliteStatement insert_list(db, fmt::format("INSERT INTO {} VALUES (?, ?, ?, ?)", kSublistsTable));
      auto list_id = static_cast<int64_t>(stored->ranges.size());
      for (size_t i = 0; i < appended_adds.size();) {
        const int64_t group = group_of_add[appended_adds[i]];
        size_t j = i;
        while (j < appended_adds.size() && group_of_add[appended_adds[j]] == group) ++j;
        sqlite3_bind_int64(insert_list.get(), 1, list_id++);
        sqlite3_bind_int64(insert_list.get(), 2, first_appended + static_cast<int64_t>(i));
        sqlite3_bind_int64(insert_list.get(), 3, first_appended + static_cast<int64_t>(j));
        // The centroid as the number of the group's first list, whose centroid it is.
        sqlite3_bind_int64(insert_list.get(), 4, groups[static_cast<size_t>(group)].front());
        RETURN_IF_ERROR(ed.Run(insert_list, fmt::format("inserting into {}", kSublistsTable)));
        i = j;
      }
    }
  }
  if (sq8 && out.int8_ranges_retrained) {
    RETURN_IF_ERROR(RetrainSq8Tables(db, edit.dim, edit.metric, name));
  } else if (sq8) {
    std::vector<int64_t> removed_rowids;
    removed_rowids.reserve(removed.size());
    for (size_t i : removed) removed_rowids.push_back(rows[i].rowid);
    // The added rows' codes in the ranges the shard was built with.
    std::vector<uint8_t> add_codes(static_cast<size_t>(adds * edit.dim));
    for (int64_t i = 0; i < adds; ++i) {
      EncodeSq8(sq8->params, edit.adds[static_cast<size_t>(i)].vector, add_codes.data() + i * edit.dim);
    }
    RETURN_IF_ERROR(EditSq8Codes(db, *sq8, edit.dim, removed_rowids, rowid_of_add, add_codes, name));
  }
  if (!edit.filter_columns.empty()) {
    std::unordered_map<int64_t, const RecordId*> added_ids;
    for (int64_t i = 0; i < adds; ++i) added_ids.emplace(rowid_of_add[static_cast<size_t>(i)], &edit.adds[static_cast<size_t>(i)].id);
    ASSIGN_OR_RETURN(out.filter_stats_json, RewriteFilterColumns(db, ed, name, edit.filter_columns, added_ids, end, live));
  }
  RETURN_IF_ERROR(ed.Exec("COMMIT"));
  // The copy was private to this user; the shard takes the mode a shard file a build writes gets.
  if (::chmod(file.c_str(), static_cast<mode_t>(NewFileMode(0644))) != 0) {
    return Status::IOError(fmt::format("shard {}: chmod '{}': {}", name, file.string(), std::strerror(errno)));
  }

  out.rows = live;
  // Lists holding rows before the edit, and after it.
  if (stored) {
    std::vector<int64_t> before;
    before.reserve(rows.size());
    for (const LiveRow& row : rows) before.push_back(row.rowid);
    for (const std::vector<int64_t>& group : groups) {
      out.base_sublists += std::any_of(group.begin(), group.end(), [&](int64_t list) {
        return RowsIn(before, RangeOf(*stored, list)) > 0;
      }) ? 1 : 0;
    }
    std::vector<bool> has_add(groups.size(), false);
    for (const int64_t g : group_of_add) has_add[static_cast<size_t>(g)] = true;
    for (size_t g = 0; g < groups.size(); ++g) {
      bool any = has_add[g];
      for (const int64_t list : groups[g]) any = any || RowsIn(kept, RangeOf(*stored, list)) > 0;
      out.sublists += any ? 1 : 0;
    }
  }
  bool saw_int = false, saw_str = false;
  const auto saw = [&](std::string_view type) {
    saw_int = saw_int || type == "int";
    saw_str = saw_str || type == "str";
  };
  {
    size_t r = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (r < removed.size() && removed[r] == i) {
        ++r;
        continue;
      }
      saw(IdTypeOfText(rows[i].text));
    }
  }
  for (const ShardEdit::Row& row : edit.adds) saw(std::holds_alternative<int64_t>(row.id) ? "int" : "str");
  out.id_type = saw_int && saw_str ? "mixed" : saw_int ? "int" : "str";
  return std::optional<ShardEditOutcome>(std::move(out));
}

}  // namespace shardvec
