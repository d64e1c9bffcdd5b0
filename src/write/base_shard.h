// A published shard read back by an update: downloaded and checked as the reader checks it, then
// its rows (id, vector, payload) read through plain SQLite + vec0, in rowid order.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "read/shard_cache.h"
#include "shardvec/object_store.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// Downloads `loc` to `dest` (a new scratch file: not fsynced, which whoever uploads it does),
// refusing (Corruption naming the object) a size or digest other than the manifest's.
Status FetchShardFile(ObjectStore& store, const ShardLocation& loc, const std::filesystem::path& dest);

struct BaseRow {
  RecordId id;
  std::span<const float> vector;        // empty when the rows are read without vectors
  std::optional<std::string> payload;   // the stored text, already canonical
};

// The rows of a shard file one by one (rowid order), as ReadShardRows reads them; `row.vector` is
// valid until the next call.
class ShardRowCursor {
 public:
  static Result<ShardRowCursor> Open(const std::filesystem::path& file, std::string_view name, int64_t dim,
                                     bool with_vectors);
  ShardRowCursor(ShardRowCursor&&) noexcept;
  ShardRowCursor& operator=(ShardRowCursor&&) noexcept;
  ~ShardRowCursor();
  // Fills `row` and returns true, or returns false after the last row.
  Result<bool> Next(BaseRow* row);

 private:
  struct Impl;
  explicit ShardRowCursor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Calls `visit` for every row of the shard file (rowid order); `with_vectors` false reads only the
// id map (fast), true the vectors (dim values each) and payloads too. Corruption naming `name` for
// an id or vector that does not decode.
Status ReadShardRows(const std::filesystem::path& file, std::string_view name, int64_t dim, bool with_vectors,
                     const std::function<Status(const BaseRow&)>& visit);

// The sub-lists the shard file was split into (0: none).
Result<int64_t> ShardFileSublists(const std::filesystem::path& file, std::string_view name);

}  // namespace shardvec
