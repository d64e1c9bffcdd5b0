#include "write/run_claim.h"

#include <fmt/format.h>

#include "common/log.h"
#include "common/status_macros.h"
#include "format/keys.h"
#include "snapshot/history.h"

namespace shardvec {
namespace {

Status RunIdTaken(const ObjectStore& store, std::string_view run_id, std::string_view key) {
  return Status::InvalidArgument(fmt::format(
      "run_id '{}' is already used in store '{}': '{}' exists; a run id names exactly one build, so "
      "pick another run_id (or leave it unset for a fresh one)",
      run_id, store.PrefixUrl(), key));
}

// The error of a write the store refused, before the build started: it names the store.
Status NotWritable(const ObjectStore& store, std::string_view what, const Status& cause) {
  return cause.WithMessage(fmt::format(
      "store '{}' cannot be written (checked before training and building): {}: {}; check the store's "
      "path or bucket, the credentials and their permissions",
      store.PrefixUrl(), what, cause.message()));
}

// The first object some earlier build of `run_id` left (other than `claim_key`), if any.
Result<std::optional<std::string>> FindRunObject(ObjectStore& store, std::string_view run_id,
                                                 const std::string& claim_key, const KeyLayout& layout) {
  ASSIGN_OR_RETURN(std::vector<ManifestEntry> manifests, ListManifests(store, 0));
  for (const ManifestEntry& entry : manifests) {
    if (entry.run_id == run_id) return std::optional<std::string>(entry.key);
  }
  for (const std::string& prefix : {RunShardsPrefix(run_id, layout), VectorMetaKey(run_id, "")}) {
    auto listed = store.List(prefix);
    if (!listed.ok()) return listed.status().WithContext(fmt::format("listing '{}'", prefix));
    for (const ObjectInfo& object : listed->objects) {
      if (object.key != claim_key) return std::optional<std::string>(object.key);
    }
  }
  const std::string records_prefix = layout.run_registry_prefix + "/";
  auto records = store.List(records_prefix);
  if (!records.ok()) return records.status().WithContext(fmt::format("listing '{}'", records_prefix));
  for (const ObjectInfo& object : records->objects) {
    if (RunIdOfRecordKey(object.key, layout.run_registry_prefix) == std::string(run_id)) return std::optional<std::string>(object.key);
  }
  return std::optional<std::string>();
}

}  // namespace

Status ClaimRunId(ObjectStore& store, std::string_view run_id, bool check_history, const KeyLayout& layout) {
  const std::string claim_key = RunClaimKey(run_id, layout);
  Status put = store.PutIfAbsent(claim_key, ClaimMarker({{"run_id", run_id}}));
  if (put.code() == StatusCode::kAlreadyExists) return RunIdTaken(store, run_id, claim_key);
  if (!put.ok()) return NotWritable(store, fmt::format("claiming run_id '{}'", run_id), put);
  if (!check_history) return Status::OK();
  Result<std::optional<std::string>> found = FindRunObject(store, run_id, claim_key, layout);
  if (found.ok() && !*found) return Status::OK();
  // Refused (or unable to tell): the claim is ours and nothing may hang on it yet.
  (void)store.Delete(claim_key);
  if (!found.ok()) return found.status().WithContext(fmt::format("checking run_id '{}' is unused", run_id));
  return RunIdTaken(store, run_id, **found);
}

Status ProbeStoreWritable(ObjectStore& store, std::string_view run_id, const KeyLayout& layout) {
  const std::string key = RunShardsPrefix(run_id, layout) + "_WRITE_PROBE";
  Status put = store.Put(key, "shardvec write probe\n");
  if (!put.ok()) return NotWritable(store, fmt::format("writing the probe object '{}'", store.Url(key)), put);
  if (Status st = store.Delete(key); !st.ok()) {
    LogEvent(LogLevel::kWarning, "write_probe_delete_failed",
             {{"run_id", run_id}, {"key", key}, {"error", st.ToString()}});
  }
  return Status::OK();
}

}  // namespace shardvec
