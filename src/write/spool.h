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
#include "shardvec/writer.h"

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

// Makes a one-shot source rewindable: the first pass is copied into a spool file as it is read, and
// every later pass reads that file. Shard ids are not spooled, so the writer uses it only for CLUSTER
// training, whose passes ignore them.
class ReplayableSource final : public RecordSource {
 public:
  ReplayableSource(RecordSource& stream, std::filesystem::path spool_path, int64_t dim);
  ~ReplayableSource() override;
  Result<bool> Next(Record* out) override;
  Status Rewind() override;
  std::optional<int64_t> SizeHint() const override;

 private:
  RecordSource& stream_;
  SpoolWriter copy_;
  int64_t dim_;
  bool started_ = false;
  bool stream_done_ = false;
  std::optional<SpoolReader> replay_;
};

}  // namespace shardvec
