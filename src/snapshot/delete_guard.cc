#include "snapshot/delete_guard.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <utility>

#include "common/log.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "snapshot/marker.h"

namespace shardvec {

Result<GuardMarker> GuardMarker::Write(ObjectStore& store, std::string_view prefix,
                                       const std::set<std::string>& keys) {
  // The timestamp first, so a marker's age is in its name.
  std::string key = fmt::format("{}{}_{}", prefix, FormatTimestamp(NowUtc()), NewUuidHex());
  RETURN_IF_ERROR(store.PutIfAbsent(key, ClaimMarker({{"keys", keys}}))
                      .WithContext(fmt::format("writing marker '{}'", key)));
  return GuardMarker(&store, std::move(key));
}

GuardMarker::GuardMarker(ObjectStore* store, std::string key)
    : store_(store), key_(std::move(key)), written_(std::chrono::steady_clock::now()) {}

GuardMarker::GuardMarker(GuardMarker&& other) noexcept
    : store_(std::exchange(other.store_, nullptr)), key_(std::move(other.key_)), written_(other.written_) {}

GuardMarker::~GuardMarker() {
  if (!store_) return;
  if (Status st = store_->Delete(key_); !st.ok()) {
    LogEvent(LogLevel::kWarning, "guard_marker_remove_failed",
             {{"key", key_}, {"error", st.ToString()},
              {"message", "a leftover marker only holds objects back; cleanup removes it later"}});
  }
}

bool GuardMarker::PastDeadline() const { return std::chrono::steady_clock::now() - written_ > kGuardDeadline; }

Result<std::vector<MarkerInfo>> ReadMarkers(ObjectStore& store, std::string_view prefix, SystemTime now) {
  auto listed = store.List(prefix);
  if (!listed.ok()) return listed.status().WithContext(fmt::format("listing '{}'", prefix));
  std::vector<MarkerInfo> markers;
  for (const ObjectInfo& object : listed->objects) {
    auto bytes = store.Get(object.key);
    if (!bytes.ok()) {
      if (bytes.status().code() == StatusCode::kNotFound) continue;  // its owner finished meanwhile
      return bytes.status().WithContext(fmt::format("marker '{}'", object.key));
    }
    MarkerInfo marker{object.key, {}, true};
    const std::string name = object.key.substr(prefix.size());
    const auto written = ParseTimestamp(name.substr(0, name.find('_')));
    const auto json = nlohmann::json::parse(*bytes, nullptr, false);
    if (written && json.is_object() && json.contains("keys") && json["keys"].is_array()) {
      marker.stale = *written + kGuardGrace < now;
      for (const auto& key : json["keys"]) {
        if (key.is_string()) marker.keys.insert(key.get<std::string>());
      }
    }
    markers.push_back(std::move(marker));
  }
  return markers;
}

std::optional<std::pair<std::string, std::string>> FindOverlap(const std::vector<MarkerInfo>& markers,
                                                              const std::set<std::string>& keys,
                                                              bool include_stale) {
  for (const MarkerInfo& marker : markers) {
    if (marker.stale && !include_stale) continue;
    for (const std::string& key : marker.keys) {
      if (keys.count(key)) return std::make_pair(marker.key, key);
    }
  }
  return std::nullopt;
}

}  // namespace shardvec
