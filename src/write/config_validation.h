// Field rules of Validate(WriteConfig) that other inputs share (a distributed task's run id, a routing
// plan's matrices, a driver's training sample).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/vector_check.h"
#include "shardvec/config.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// What a front end calls each sharding field in its errors: the API's names by default, the CLI's
// flags in the CLI.
struct ShardingFieldNames {
  std::string_view num_dbs = "num_dbs";
  std::string_view num_probes = "num_probes";
  std::string_view centroids = "centroids";
  std::string_view train_centroids = "train_centroids";
  std::string_view sample_size = "centroids_training_sample_size";
  std::string_view num_hash_bits = "num_hash_bits";
  std::string_view hyperplanes = "hyperplanes";
  std::string_view cel_expr = "cel_expr";
  std::string_view cel_columns = "cel_columns";
  std::string_view routing_values = "routing_values";
};

// Every sharding field set to other than its default must take effect. Refuses, naming the field
// and the value: a field the strategy does not use (centroids or train_centroids outside CLUSTER,
// the two together, a sample size other than the default without training, num_hash_bits other
// than the default or hyperplanes outside LSH, the CEL fields outside CEL); num_probes above the
// shards the routing can probe (num_dbs, the centroid count, and 1 + the hash bits for LSH); and an
// LSH num_dbs above the 2^bits codes the hash reaches. Validate() runs it with the default names.
Status CheckShardingFieldsTakeEffect(const ShardingConfig& s, const ShardingFieldNames& names = {});

// 1-128 characters of letters, digits, '.', '_' or '-' (it names folders and object keys).
Status ValidateRunId(std::string_view run_id);

}  // namespace shardvec
