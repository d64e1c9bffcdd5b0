#include "routing/explicit_routing.h"

#include <fmt/format.h>

namespace shardvec {

Result<int64_t> ExplicitAssign(const std::optional<int64_t>& shard_id, int64_t num_dbs,
                               std::string_view record_id) {
  if (!shard_id.has_value()) {
    return Status::InvalidArgument(
        fmt::format("EXPLICIT sharding requires shard_id (record id={})", record_id));
  }
  if (*shard_id < 0 || *shard_id >= num_dbs) {
    return Status::InvalidArgument(fmt::format("shard_id {} out of range [0, {}) (record id={})",
                                               *shard_id, num_dbs, record_id));
  }
  return *shard_id;
}

}  // namespace shardvec
