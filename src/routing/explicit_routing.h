// EXPLICIT routing (docs/routing.md#explicit): each record names its own shard.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

// The record's shard_id once checked to lie in [0, num_dbs). A missing or out-of-range id is an
// InvalidArgument that names the record.
Result<int64_t> ExplicitAssign(const std::optional<int64_t>& shard_id, int64_t num_dbs,
                               std::string_view record_id);

}  // namespace shardvec
