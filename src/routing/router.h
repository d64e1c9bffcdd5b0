// Router: the one place a strategy turns a record into a shard (write side) and a query into the
// ordered shards to probe (read side). Writer and reader share it, so probe[0] == Assign always holds.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

class Router {
 public:
  virtual ~Router() = default;
  // The shard a record belongs to, range-checked.
  virtual Result<int64_t> Assign(const Record& record) const = 0;
  // Shards to search for a query, best first, without duplicates. EXPLICIT has no probe order and
  // asks for shard_ids; CEL (a later issue) needs a routing context.
  virtual Result<std::vector<int64_t>> Probe(const float* query, int64_t num_probes) const = 0;
};

// Builds the router for a snapshot's (or a run's) routing plan; CEL reports that it is not available
// yet (the seam for that issue).
Result<std::unique_ptr<Router>> MakeRouter(const RoutingPlan& state);

}  // namespace shardvec
