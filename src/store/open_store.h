// What OpenStore decides from a prefix and the connection settings, for front ends that check their
// flags before opening a store.
#pragma once

#include <string_view>
#include <vector>

#include "shardvec/object_store.h"

namespace shardvec {

// Whether `prefix` names an S3 store (s3://bucket/prefix); anything else is a folder.
bool IsS3Prefix(std::string_view prefix);

// The StoreOptions fields set to other than their defaults, by their option names (endpoint_url,
// region, …, connect_timeout, read_timeout). OpenStore refuses any of them for a folder store.
std::vector<std::string_view> SetS3Options(const StoreOptions& options);

}  // namespace shardvec
