// CEL sharding (docs/routing.md#cel): a compiled expression over a record's routing_context and, for
// categorical routing, the routing_values lookup from token to shard. Writer and reader share it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "routing/cel/cel.h"
#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec {

class CelRouting {
 public:
  // Compiles `expr` against `columns` and checks it against the tokens: categorical routing needs a
  // result of the tokens' type (int and uint results both match int tokens), direct routing an int or
  // uint result. Errors name the config field (cel_expr, cel_columns, routing_values). With
  // `reject_duplicate_tokens` (the writer) a repeated token is an error; a reader follows the
  // reference, where the later index wins.
  static Result<std::unique_ptr<CelRouting>> Make(const std::string& expr,
                                                  const std::map<std::string, std::string>& columns,
                                                  const std::optional<std::vector<RoutingValue>>& routing_values,
                                                  int64_t num_dbs, bool reject_duplicate_tokens);

  // The shard of one routing context, checked to lie in [0, num_dbs). Errors: no context ("CEL
  // sharding requires routing_context"), a value of the wrong type, an evaluation error, a token not
  // in routing_values (kind kUnknownRoutingToken). Thread-safe.
  Result<int64_t> Shard(const RoutingContext* context) const;

  const cel::Program& program() const { return *program_; }
  bool categorical() const { return categorical_; }

 private:
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using StringLookup = std::unordered_map<std::string, int64_t, StringHash, std::equal_to<>>;

  Result<int64_t> Lookup(const cel::Value& token) const;

  std::shared_ptr<const cel::Program> program_;
  int64_t num_dbs_ = 0;
  bool categorical_ = false;
  std::unordered_map<int64_t, int64_t> int_tokens_;
  std::unordered_map<uint64_t, int64_t> big_uint_tokens_;  // tokens above INT64_MAX
  StringLookup string_tokens_;
  StringLookup bytes_tokens_;
};

}  // namespace shardvec
