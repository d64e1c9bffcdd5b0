#include "shard/vec0_chunk_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "common/status_macros.h"

namespace shardvec {

// The rowids blob is little-endian int64s, which is what this host's memory holds.
static_assert(std::endian::native == std::endian::little);

Vec0ChunkWriter::Vec0ChunkWriter(sqlite3* db, int64_t dim, int64_t chunk_size, std::string shard_name)
    : db_(db),
      dim_(dim),
      chunk_size_(chunk_size),
      shard_name_(std::move(shard_name)),
      insert_chunk_(db, "INSERT INTO vec_index_chunks(chunk_id, size, validity, rowids) VALUES (?, ?, ?, ?)"),
      insert_vectors_(db, "INSERT INTO vec_index_vector_chunks00(rowid, vectors) VALUES (?, ?)"),
      insert_rowid_(db, "INSERT INTO vec_index_rowids(rowid, id, chunk_id, chunk_offset) VALUES (?, NULL, ?, ?)"),
      vectors_(static_cast<size_t>(chunk_size * dim), 0.0f),
      rowids_(static_cast<size_t>(chunk_size), 0),
      validity_(static_cast<size_t>(chunk_size / 8), '\0') {}

Result<std::unique_ptr<Vec0ChunkWriter>> Vec0ChunkWriter::Create(sqlite3* db, int64_t dim, int64_t chunk_size,
                                                                 std::string shard_name) {
  if (dim <= 0 || chunk_size <= 0 || chunk_size % 8 != 0) {
    return Status::InvalidArgument(fmt::format("shard '{}': vec0 chunks need dim > 0 and a chunk_size that is a "
                                               "positive multiple of 8 (dim {}, chunk_size {})",
                                               shard_name, dim, chunk_size));
  }
  std::unique_ptr<Vec0ChunkWriter> writer(new Vec0ChunkWriter(db, dim, chunk_size, std::move(shard_name)));
  for (const SqliteStatement* stmt : {&writer->insert_chunk_, &writer->insert_vectors_, &writer->insert_rowid_}) {
    if (!stmt->ok()) return writer->Failed("vec0 storage (prepare)");
  }
  SqliteStatement existing(db, "SELECT (SELECT count(*) FROM vec_index_chunks) + (SELECT count(*) FROM vec_index_rowids)");
  if (!existing.ok() || existing.Step() != SQLITE_ROW) return writer->Failed("vec_index_chunks");
  if (existing.Int(0) != 0) {
    return Status::Internal(fmt::format("shard '{}': vec_index is not empty; chunks are only written into a fresh table",
                                        writer->shard_name_));
  }
  return writer;
}

Status Vec0ChunkWriter::Failed(std::string_view table) const {
  return Status::IOError(fmt::format("shard '{}': writing {} failed: {}", shard_name_, table, sqlite3_errmsg(db_)));
}

Status Vec0ChunkWriter::Add(int64_t rowid, const float* vector) {
  sqlite3_bind_int64(insert_rowid_.get(), 1, rowid);
  sqlite3_bind_int64(insert_rowid_.get(), 2, chunk_id_);
  sqlite3_bind_int64(insert_rowid_.get(), 3, filled_);
  if (insert_rowid_.Run() != SQLITE_DONE) return Failed(fmt::format("vec_index_rowids (rowid {})", rowid));
  std::memcpy(vectors_.data() + filled_ * dim_, vector, static_cast<size_t>(dim_) * sizeof(float));
  rowids_[static_cast<size_t>(filled_)] = rowid;
  validity_[static_cast<size_t>(filled_ / 8)] |= static_cast<char>(1u << (filled_ % 8));
  if (++filled_ == chunk_size_) return WriteChunk();
  return Status::OK();
}

Status Vec0ChunkWriter::WriteChunk() {
  sqlite3_bind_int64(insert_chunk_.get(), 1, chunk_id_);
  sqlite3_bind_int64(insert_chunk_.get(), 2, chunk_size_);
  sqlite3_bind_blob(insert_chunk_.get(), 3, validity_.data(), static_cast<int>(validity_.size()), SQLITE_STATIC);
  sqlite3_bind_blob(insert_chunk_.get(), 4, rowids_.data(), static_cast<int>(rowids_.size() * sizeof(int64_t)),
                    SQLITE_STATIC);
  if (insert_chunk_.Run() != SQLITE_DONE) return Failed(fmt::format("vec_index_chunks (chunk {})", chunk_id_));
  sqlite3_bind_int64(insert_vectors_.get(), 1, chunk_id_);
  sqlite3_bind_blob(insert_vectors_.get(), 2, vectors_.data(), static_cast<int>(vectors_.size() * sizeof(float)),
                    SQLITE_STATIC);
  if (insert_vectors_.Run() != SQLITE_DONE) {
    return Failed(fmt::format("vec_index_vector_chunks00 (chunk {})", chunk_id_));
  }
  ++chunk_id_;
  filled_ = 0;
  // The next chunk overwrites every vector and rowid slot it uses; Finish zeroes the rest.
  std::fill(validity_.begin(), validity_.end(), '\0');
  return Status::OK();
}

Status Vec0ChunkWriter::Finish() {
  // vec0 makes a chunk when its first row arrives, so an empty table has none.
  if (filled_ == 0) return Status::OK();
  // Unused slots of the last chunk hold zeros, as vec0 leaves them.
  std::fill(vectors_.begin() + filled_ * dim_, vectors_.end(), 0.0f);
  std::fill(rowids_.begin() + filled_, rowids_.end(), 0);
  return WriteChunk();
}

}  // namespace shardvec
