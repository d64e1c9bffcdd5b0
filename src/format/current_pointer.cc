#include "format/current_pointer.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "common/time_util.h"

namespace shardvec {

std::string EncodeCurrentPointer(const CurrentPointer& pointer) {
  nlohmann::json j = {
      {"format_version", pointer.format_version},
      {"manifest_content_type", pointer.manifest_content_type},
      {"manifest_ref", pointer.manifest_ref},
      {"run_id", pointer.run_id},
      {"updated_at", pointer.updated_at},
  };
  return CompactJsonDumps(j);
}

Result<CurrentPointer> ParseCurrentPointer(std::string_view bytes) {
  auto fail = [](std::string why) {
    return Status::Corruption("CURRENT pointer validation failed: " + why).WithKind(ErrorKind::kManifestParse);
  };
  if (static_cast<int64_t>(bytes.size()) > kMaxCurrentPointerBytes) {
    return fail(fmt::format("it is {} bytes, more than the limit of {}", bytes.size(), kMaxCurrentPointerBytes));
  }
  if (JsonNestsDeeperThan(bytes)) return fail(fmt::format("JSON nests deeper than {} levels", kMaxJsonNesting));
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return fail("not valid JSON");
  if (!j.is_object()) return fail("expected a JSON object");
  CurrentPointer p;
  for (const char* field : {"manifest_ref", "manifest_content_type", "run_id", "updated_at"}) {
    if (!j.contains(field)) return fail(fmt::format("field '{}' is missing", field));
    if (!j[field].is_string()) return fail(fmt::format("field '{}' must be a string", field));
  }
  p.manifest_ref = j["manifest_ref"].get<std::string>();
  p.manifest_content_type = j["manifest_content_type"].get<std::string>();
  p.run_id = j["run_id"].get<std::string>();
  p.updated_at = j["updated_at"].get<std::string>();
  if (p.manifest_ref.empty()) return fail("field 'manifest_ref' is empty");
  if (!ParseTimestamp(p.updated_at)) {
    return fail(fmt::format("field 'updated_at' is not a timestamp: '{}'", p.updated_at));
  }
  if (j.contains("format_version")) {
    const auto& version = j["format_version"];
    // An unsigned value above int64's range would wrap to a negative version.
    if (!version.is_number_integer() || (version.is_number_unsigned() && version.get<uint64_t>() > INT64_MAX)) {
      return fail(fmt::format("field 'format_version' must be an integer, got {}", version.dump()));
    }
    p.format_version = j["format_version"].get<int64_t>();
  }
  return p;
}

}  // namespace shardvec
