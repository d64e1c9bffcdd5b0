// xxh3 digests of shard files, in the manifest's "xxh3:<16 hex>" form.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
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

}  // namespace shardvec
