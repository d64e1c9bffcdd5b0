// JSON forms of CEL routing values: manifest routing_values (docs/snapshot-format.md#manifest: int and str as they are,
// bytes as {"__bytes_hex__": "<hex>"}) and routing contexts in CLI input (.jsonl "routing_context"
// objects), which use the same bytes convention.
#pragma once

#include <nlohmann/json.hpp>

#include <string_view>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

nlohmann::json RoutingValueToJson(const RoutingValue& value);
// Any JSON scalar or {"__bytes_hex__": hex}; arrays and other objects are an InvalidArgument naming
// `field`. Integers above INT64_MAX become uint.
Result<RoutingValue> RoutingValueFromJson(const nlohmann::json& json, std::string_view field);

nlohmann::json RoutingValuesToJson(const std::vector<RoutingValue>& values);
Result<std::vector<RoutingValue>> RoutingValuesFromJson(const nlohmann::json& json, std::string_view field);

// A JSON object of variable -> value.
Result<RoutingContext> RoutingContextFromJson(const nlohmann::json& json, std::string_view field);

}  // namespace shardvec
