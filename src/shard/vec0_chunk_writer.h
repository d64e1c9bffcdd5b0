// Fills a fresh vec0 table's storage a whole chunk at a time. For every row, vec0's own INSERT
// rewrites the chunk's validity, rowid and vector blobs in place; for a table in a layout we know
// (IsKnownVec0Layout) this writes the same rows into the same shadow tables (vec_index_chunks,
// vec_index_vector_chunks00, vec_index_rowids, and through AUTOINCREMENT sqlite_sequence) once per
// chunk instead. The tests compare every shadow row with what vec0's INSERT leaves.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/sqlite/sqlite_statement.h"
#include "shardvec/status.h"

namespace shardvec {

class Vec0ChunkWriter {
 public:
  // `db` holds an empty vec_index (float[dim], chunk_size slots per chunk) inside an open
  // transaction; `shard_name` names it in errors.
  static Result<std::unique_ptr<Vec0ChunkWriter>> Create(sqlite3* db, int64_t dim, int64_t chunk_size,
                                                         std::string shard_name);

  // Rows fill chunk slots in the order they are added, as vec0 fills them.
  Status Add(int64_t rowid, const float* vector);
  // Writes the last, partly filled chunk. Call once, before the transaction commits.
  Status Finish();

 private:
  Vec0ChunkWriter(sqlite3* db, int64_t dim, int64_t chunk_size, std::string shard_name);
  Status WriteChunk();
  Status Failed(std::string_view table) const;

  sqlite3* db_;
  int64_t dim_;
  int64_t chunk_size_;
  std::string shard_name_;
  SqliteStatement insert_chunk_;
  SqliteStatement insert_vectors_;
  SqliteStatement insert_rowid_;
  int64_t chunk_id_ = 1;  // AUTOINCREMENT's first id in a fresh table
  int64_t filled_ = 0;    // slots used in the current chunk
  std::vector<float> vectors_;    // chunk_size × dim, zeros in unused slots (as vec0 leaves them)
  std::vector<int64_t> rowids_;   // chunk_size, 0 in unused slots
  std::string validity_;          // chunk_size / 8 bytes, bit i = slot i used
};

}  // namespace shardvec
