// Router: the one place a strategy turns a record into a shard (write side) and a query into the
// ordered shards to probe (read side). Writer and reader share it, so probe[0] == Assign always holds.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

class Router {
 public:
  virtual ~Router() = default;
  // The shard a record belongs to, range-checked. `vector` is the record's vector (dim values,
  // checked), held in the record or lent by its source.
  virtual Result<int64_t> Assign(const Record& record, std::span<const float> vector) const = 0;
  // Shards to search for a query, best first, without duplicates. EXPLICIT has no probe order and
  // asks for shard_ids; CEL asks for a routing context.
  virtual Result<std::vector<int64_t>> Probe(const float* query, int64_t num_probes) const = 0;
  // The most shards Probe can list (a larger num_probes could not take effect).
  virtual int64_t MaxProbes() const = 0;
  // Whether queries route by routing context (CEL) rather than by vector.
  virtual bool RoutesByContext() const { return false; }
  // CEL: the one shard a query's routing context selects (null: none was given, an error).
  virtual Result<int64_t> ProbeContext(const RoutingContext* context) const {
    return Status::Internal("ProbeContext called on a router that routes by vector");
  }
};

// Builds the router for a snapshot's (or a run's) routing plan. `strict_tokens` (the writer) also
// refuses repeated or mixed-type routing_values, which a reader accepts as the reference does.
Result<std::unique_ptr<Router>> MakeRouter(const RoutingPlan& plan, bool strict_tokens = false);

}  // namespace shardvec
