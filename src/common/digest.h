// xxh3 digests of shard files, in the manifest's "xxh3:<16 hex>" form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

struct FileDigest {
  std::string digest;  // "xxh3:0123456789abcdef"
  int64_t size = 0;
};

std::string Xxh3Digest(std::string_view bytes);
// The file's digest and size. It is read through mappings of `window_bytes` at a time.
Result<FileDigest> DigestFile(const std::filesystem::path& path, size_t window_bytes = size_t{256} << 20);
// DigestFile of the file open as `fd` (left open); `path` names it in errors.
Result<FileDigest> DigestFd(int fd, const std::filesystem::path& path, size_t window_bytes = size_t{256} << 20);
uint64_t Xxh3_64(std::string_view bytes);

// The same digest over bytes handed in pieces (e.g. an object read in ranges).
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void Update(std::string_view bytes);
  // "xxh3:<16 hex>" of every byte handed in so far.
  std::string Digest() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace shardvec
