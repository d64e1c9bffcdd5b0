// The _CURRENT pointer: compact JSON with sorted keys (docs/snapshot-format.md#current-pointer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

inline constexpr std::string_view kManifestContentType = "application/x-sqlite3";

struct CurrentPointer {
  std::string manifest_ref;
  std::string manifest_content_type = std::string(kManifestContentType);
  std::string run_id;
  std::string updated_at;
  int64_t format_version = 1;
};

std::string EncodeCurrentPointer(const CurrentPointer& pointer);
// Corruption naming the problem when the bytes are not a valid pointer; unknown keys are ignored.
Result<CurrentPointer> ParseCurrentPointer(std::string_view bytes);

}  // namespace shardvec
