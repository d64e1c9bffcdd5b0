// Resolving a config's routing into a RoutingPlan, CLUSTER centroid training included, shared by
// WriteSharded and the distributed driver. PlanRouting (shardvec/distributed.h) is defined here too.
#pragma once

#include <memory>

#include "routing/router.h"
#include "shardvec/config.h"
#include "shardvec/types.h"

namespace shardvec {

// PlanRouting for a config Validate() already accepted; `training_sample` is used (and required)
// only for CLUSTER with train_centroids.
Result<RoutingPlan> ResolveRoutingPlan(const WriteConfig& config, const Matrix* training_sample);

// A plan can arrive from another process: its fields must agree before rows are routed by it.
Status CheckRoutingPlan(const RoutingPlan& plan);

// CheckRoutingPlan and the plan's router (the writer's, refusing repeated routing_values), built by
// the one check: a CEL expression is compiled once.
Result<std::unique_ptr<Router>> MakeCheckedRouter(const RoutingPlan& plan);

}  // namespace shardvec
