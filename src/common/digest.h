// xxh3 digests of shard files, in the manifest's "xxh3:<16 hex>" form.
#pragma once

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
Result<FileDigest> DigestFile(const std::filesystem::path& path);
uint64_t Xxh3_64(std::string_view bytes);

}  // namespace shardvec
