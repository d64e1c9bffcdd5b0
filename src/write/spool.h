// Per-shard spool files: the route pass appends each record to its shard's spool, then a pool of
// builders turns each spool into a shard. Spooling keeps memory flat for inputs larger than RAM and
// lets every shard be built in one transaction by one thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

class SpoolWriter {
 public:
  SpoolWriter(std::filesystem::path path, size_t flush_bytes);
  Status Append(const RecordId& id, const std::vector<float>& vector,
                const std::optional<std::string>& payload_json);
  // Writes buffered bytes to the file.
  Status Flush();
  int64_t rows() const { return rows_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  size_t flush_bytes_;
  std::string buffer_;
  int64_t rows_ = 0;
};

class SpoolReader {
 public:
  static Result<SpoolReader> Open(const std::filesystem::path& path, int64_t dim);
  SpoolReader(SpoolReader&& other) noexcept;
  ~SpoolReader();
  // Reads the next record; false at the end.
  Result<bool> Next(RecordId* id, std::vector<float>* vector, std::optional<std::string>* payload_json);

 private:
  SpoolReader(std::FILE* file, std::filesystem::path path, int64_t dim);
  Status ReadExact(void* dst, size_t size);

  std::FILE* file_;
  std::filesystem::path path_;
  int64_t dim_;
};

}  // namespace shardvec
