#include "support/fault_injection_store.h"

#include <fmt/format.h>
#include <signal.h>

#include <atomic>
#include <charconv>
#include <cstdlib>

#include "common/status_macros.h"
#include "format/keys.h"

namespace shardvec::testing {
namespace {

bool IsShardFile(std::string_view key) {
  return key.starts_with(kShardPrefix) && key.ends_with(std::string("/") + std::string(kShardFileName));
}
bool IsManifest(std::string_view key) { return key.starts_with(kManifestsPrefix) && key.ends_with("/manifest"); }

}  // namespace

Status InjectedFault(std::string_view point) {
  return Status::Internal(fmt::format("fault injected at '{}'", point));
}

void CrashNow() {
  ::raise(SIGKILL);
  std::abort();  // unreachable: SIGKILL cannot be caught
}

FaultHook FaultAt(std::string_view point, int nth, bool crash) {
  return [point = std::string(point), nth, crash,
          passes = std::make_shared<std::atomic<int>>(0)](std::string_view name) -> Status {
    if (name != point || passes->fetch_add(1) + 1 != nth) return Status::OK();
    if (crash) CrashNow();
    return InjectedFault(name);
  };
}

Result<FaultHook> ParseFault(std::string_view point_spec, std::string_view action) {
  std::string_view point = point_spec;
  int nth = 1;
  if (const size_t colon = point_spec.find(':'); colon != std::string_view::npos) {
    point = point_spec.substr(0, colon);
    const std::string_view digits = point_spec.substr(colon + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), nth);
    if (ec != std::errc() || end != digits.data() + digits.size() || nth < 1) {
      return Status::InvalidArgument(
          fmt::format("fault '{}': the pass after ':' must be an integer >= 1", point_spec));
    }
  }
  if (action != "crash" && action != "fail") {
    return Status::InvalidArgument(fmt::format("fault action '{}' must be 'fail' or 'crash'", action));
  }
  return FaultAt(point, nth, action == "crash");
}

Status FaultInjectionStore::PutFile(std::string_view key, const std::filesystem::path& source) {
  RETURN_IF_ERROR(inner().PutFile(key, source));
  return IsShardFile(key) ? hook_(kFaultAfterShardUpload) : Status::OK();
}

Status FaultInjectionStore::PutIfAbsent(std::string_view key, std::string_view data) {
  if (!IsManifest(key)) return inner().PutIfAbsent(key, data);
  RETURN_IF_ERROR(hook_(kFaultAfterRoutingArtifacts));
  RETURN_IF_ERROR(inner().PutIfAbsent(key, data));
  return hook_(kFaultAfterManifestPut);
}

Result<std::string> FaultInjectionStore::CompareAndSwap(std::string_view key, std::string_view data,
                                                        const std::optional<std::string>& expected_version) {
  if (key != kCurrentKey) return inner().CompareAndSwap(key, data, expected_version);
  RETURN_IF_ERROR(hook_(kFaultDuringCurrentSwap));
  ASSIGN_OR_RETURN(std::string version, inner().CompareAndSwap(key, data, expected_version));
  RETURN_IF_ERROR(hook_(kFaultAfterCurrentSwap));
  return version;
}

}  // namespace shardvec::testing
