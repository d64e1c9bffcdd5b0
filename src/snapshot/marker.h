// The bytes of a put-if-absent marker object (a run id claim, a shard attempt claim, a rollback intent
// or a cleanup tombstone).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace shardvec {

// `fields` plus who wrote it (host, pid, when) and a nonce. The nonce keeps every marker distinct:
// S3's put-if-absent takes an identical existing object for its own retried write, not a taken key.
std::string ClaimMarker(nlohmann::json fields);

}  // namespace shardvec
