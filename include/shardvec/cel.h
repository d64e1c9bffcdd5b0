// CEL routing for clients that take its parts as text: a column type's check, an expression's result
// type, and routing values in the manifest's JSON form.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

// OK when `type` is a cel_columns type (int, uint, double, string, bytes, bool); otherwise an
// InvalidArgument "<field> is '<type>'; expected one of int, uint, double, string, bytes, bool".
Status CheckCelColumnType(std::string_view type, std::string_view field);

// The type `expr` returns with the variables `columns` (name -> cel_columns type): "int", "uint",
// "double", "string", "bytes", "bool", "null_type", "list" or "dyn". Errors are the compile errors
// of the expression (InvalidArgument, saying where and why).
Result<std::string> CelResultType(std::string_view expr, const std::map<std::string, std::string>& columns);

// Routing values as the manifest's routing_values JSON text: a compact array of ints, uints and
// strings as they are, bytes as {"__bytes_hex__": "<hex>"}.
std::string RoutingValuesJsonText(const std::vector<RoutingValue>& values);

}  // namespace shardvec
