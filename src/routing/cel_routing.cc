#include "routing/cel_routing.h"

#include <fmt/format.h>

#include <limits>

#include "common/status_macros.h"

namespace shardvec {
namespace {

enum class TokenKind { kInt, kString, kBytes, kInvalid };

TokenKind KindOf(const RoutingValue& v) {
  if (std::holds_alternative<int64_t>(v) || std::holds_alternative<uint64_t>(v)) return TokenKind::kInt;
  if (std::holds_alternative<std::string>(v)) return TokenKind::kString;
  if (std::holds_alternative<Bytes>(v)) return TokenKind::kBytes;
  return TokenKind::kInvalid;
}

TokenKind KindOf(cel::Type t) {
  switch (t) {
    case cel::Type::kInt:
    case cel::Type::kUint: return TokenKind::kInt;
    case cel::Type::kString: return TokenKind::kString;
    case cel::Type::kBytes: return TokenKind::kBytes;
    default: return TokenKind::kInvalid;
  }
}

std::string_view KindName(TokenKind k) {
  switch (k) {
    case TokenKind::kInt: return "int";
    case TokenKind::kString: return "string";
    case TokenKind::kBytes: return "bytes";
    case TokenKind::kInvalid: break;
  }
  return "invalid";
}

std::string ValueText(const cel::Value& v) {
  switch (v.type) {
    case cel::Type::kInt: return RoutingValueToString(v.i);
    case cel::Type::kUint: return RoutingValueToString(v.u);
    case cel::Type::kString: return RoutingValueToString(std::string(v.s));
    case cel::Type::kBytes: return RoutingValueToString(Bytes{std::string(v.s)});
    case cel::Type::kDouble: return RoutingValueToString(v.d);
    case cel::Type::kBool: return RoutingValueToString(v.b);
    default: return std::string(cel::TypeName(v.type));
  }
}

// One evaluating thread's buffers: bound variables and the evaluator's scratch.
struct ThreadState {
  std::vector<cel::Value> slots;
  cel::Scratch scratch;
};

}  // namespace

Result<std::unique_ptr<CelRouting>> CelRouting::Make(const std::string& expr,
                                                     const std::map<std::string, std::string>& columns,
                                                     const std::optional<std::vector<RoutingValue>>& routing_values,
                                                     int64_t num_dbs, bool reject_duplicate_tokens) {
  auto routing = std::unique_ptr<CelRouting>(new CelRouting());
  ASSIGN_OR_RETURN(routing->program_, cel::Program::Compile(expr, columns));
  routing->num_dbs_ = num_dbs;
  const TokenKind result_kind = KindOf(routing->program_->result_type());
  const std::string_view result_name = cel::TypeName(routing->program_->result_type());
  if (!routing_values) {
    if (result_kind != TokenKind::kInt) {
      return Status::InvalidArgument(fmt::format(
          "cel_expr '{}' returns {}; without routing_values it must return an int or uint shard id", expr,
          result_name));
    }
    return routing;
  }
  routing->categorical_ = true;
  if (result_kind == TokenKind::kInvalid) {
    return Status::InvalidArgument(fmt::format(
        "cel_expr '{}' returns {}; a routing token must be an int, uint, string or bytes", expr, result_name));
  }
  std::optional<TokenKind> tokens_kind;
  for (size_t i = 0; i < routing_values->size(); ++i) {
    const RoutingValue& token = (*routing_values)[i];
    const TokenKind kind = KindOf(token);
    if (kind == TokenKind::kInvalid) {
      return Status::InvalidArgument(fmt::format(
          "routing_values[{}] is {}; routing tokens must be ints, strings or bytes", i, RoutingValueToString(token)));
    }
    if (reject_duplicate_tokens) {
      if (tokens_kind && *tokens_kind != kind) {
        return Status::InvalidArgument(fmt::format(
            "routing_values mixes types: routing_values[0] is {} but routing_values[{}] is {} ({})",
            KindName(*tokens_kind), i, KindName(kind), RoutingValueToString(token)));
      }
      if (kind != result_kind) {
        return Status::InvalidArgument(fmt::format(
            "cel_expr '{}' returns {} but routing_values holds {} tokens, so no record could match", expr,
            result_name, KindName(kind)));
      }
    }
    tokens_kind = kind;
    bool inserted = true;
    const int64_t index = static_cast<int64_t>(i);
    if (const auto* v = std::get_if<int64_t>(&token)) {
      inserted = routing->int_tokens_.insert_or_assign(*v, index).second;
    } else if (const auto* u = std::get_if<uint64_t>(&token)) {
      if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        inserted = routing->int_tokens_.insert_or_assign(static_cast<int64_t>(*u), index).second;
      } else {
        inserted = routing->big_uint_tokens_.insert_or_assign(*u, index).second;
      }
    } else if (const auto* s = std::get_if<std::string>(&token)) {
      inserted = routing->string_tokens_.insert_or_assign(*s, index).second;
    } else {
      inserted = routing->bytes_tokens_.insert_or_assign(std::get<Bytes>(token).data, index).second;
    }
    if (!inserted && reject_duplicate_tokens) {
      return Status::InvalidArgument(
          fmt::format("routing_values[{}] repeats the token {}; each token names one shard", i,
                      RoutingValueToString(token)));
    }
  }
  return routing;
}

Result<int64_t> CelRouting::Lookup(const cel::Value& token) const {
  const auto found = [](const auto& map, const auto& key) -> std::optional<int64_t> {
    auto it = map.find(key);
    if (it == map.end()) return std::nullopt;
    return it->second;
  };
  std::optional<int64_t> shard;
  switch (token.type) {
    case cel::Type::kInt: shard = found(int_tokens_, token.i); break;
    case cel::Type::kUint:
      shard = token.u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                  ? found(int_tokens_, static_cast<int64_t>(token.u))
                  : found(big_uint_tokens_, token.u);
      break;
    case cel::Type::kString: shard = found(string_tokens_, token.s); break;
    case cel::Type::kBytes: shard = found(bytes_tokens_, token.s); break;
    default:
      return Status::InvalidArgument(fmt::format(
          "CEL expression must return int, str, or bytes; got {}", cel::TypeName(token.type)));
  }
  if (!shard) {
    return Status::InvalidArgument(fmt::format(
        "categorical routing token {} is not in routing_values: it is not present in this snapshot",
        ValueText(token))).WithKind(ErrorKind::kUnknownRoutingToken);
  }
  return *shard;
}

Result<int64_t> CelRouting::Shard(const RoutingContext* context) const {
  if (!context) return Status::InvalidArgument("CEL sharding requires routing_context");
  thread_local ThreadState state;
  state.slots.resize(program_->variables().size());
  RETURN_IF_ERROR(program_->Bind(*context, state.slots));
  ASSIGN_OR_RETURN(const cel::Value result, program_->Evaluate(state.slots, state.scratch));
  int64_t shard = 0;
  if (categorical_) {
    ASSIGN_OR_RETURN(shard, Lookup(result));
  } else if (result.type == cel::Type::kInt) {
    shard = result.i;
  } else if (result.type == cel::Type::kUint) {
    if (result.u >= static_cast<uint64_t>(num_dbs_)) {
      return Status::InvalidArgument(
          fmt::format("CEL sharding produced shard_id {}u outside [0, {})", result.u, num_dbs_));
    }
    shard = static_cast<int64_t>(result.u);
  } else {
    return Status::InvalidArgument(fmt::format(
        "CEL expression must return an int shard id; got {}", cel::TypeName(result.type)));
  }
  if (shard < 0 || shard >= num_dbs_) {
    return Status::InvalidArgument(fmt::format("CEL sharding produced shard_id {} outside [0, {})", shard, num_dbs_));
  }
  return shard;
}

}  // namespace shardvec
