// An incremental-blob handle on one column of one table that moves from row to row: opening a blob
// compiles a statement, moving one (sqlite3_blob_reopen) does not, so writing many small pieces into
// the blobs of a few rows costs a seek each instead of a statement each. Closes itself.
#pragma once

#include <sqlite3.h>

#include <cstdint>

namespace shardvec {

class SqliteBlobCursor {
 public:
  // Opens read-write handles on `table`.`column` (in "main"), when first used.
  SqliteBlobCursor(sqlite3* db, const char* table, const char* column) : db_(db), table_(table), column_(column) {}
  ~SqliteBlobCursor() { sqlite3_blob_close(blob_); }
  SqliteBlobCursor(const SqliteBlobCursor&) = delete;
  SqliteBlobCursor& operator=(const SqliteBlobCursor&) = delete;

  // Reads or writes `bytes` at `offset` of the column in row `rowid`, moving the handle there first;
  // an SQLite result code (the message in sqlite3_errmsg). The caller must not change these rows
  // through SQL while the handle is open (a handle on a changed row expires).
  int Write(int64_t rowid, const void* data, int bytes, int64_t offset) {
    const int rc = MoveTo(rowid);
    return rc != SQLITE_OK ? rc : sqlite3_blob_write(blob_, data, bytes, static_cast<int>(offset));
  }
  int Read(int64_t rowid, void* data, int bytes, int64_t offset) {
    const int rc = MoveTo(rowid);
    return rc != SQLITE_OK ? rc : sqlite3_blob_read(blob_, data, bytes, static_cast<int>(offset));
  }

 private:
  int MoveTo(int64_t rowid) {
    int rc = SQLITE_OK;
    if (blob_ == nullptr) {
      rc = sqlite3_blob_open(db_, "main", table_, column_, rowid, 1, &blob_);
    } else if (rowid_ != rowid) {
      rc = sqlite3_blob_reopen(blob_, rowid);
    }
    if (rc != SQLITE_OK) {
      sqlite3_blob_close(blob_);  // after a failed open or reopen the handle is unusable
      blob_ = nullptr;
      rowid_ = -1;
      return rc;
    }
    rowid_ = rowid;
    return SQLITE_OK;
  }

  sqlite3* db_;
  const char* table_;
  const char* column_;
  sqlite3_blob* blob_ = nullptr;
  int64_t rowid_ = -1;
};

}  // namespace shardvec
