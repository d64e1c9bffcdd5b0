// CEL for routing (docs/routing.md#cel): a parser, type checker and evaluator for the subset CEL sharding
// uses, with CEL's semantics (cel-spec; checked against cel-expr-python in the differential tests).
//
// Compile once: the expression is parsed, type-checked against the declared variable types of
// `cel_columns`, and lowered to a flat program. Evaluate many times: no allocation in the hot path
// (strings built by `+` or string() go to the caller's Scratch, which is reused).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shardvec/status.h"
#include "shardvec/types.h"

namespace shardvec::cel {

// kError is internal to Evaluate (an error travelling to && / || that may absorb it); Evaluate never
// returns it, it returns the error as a Status instead.
enum class Type : uint8_t { kNull, kBool, kInt, kUint, kDouble, kString, kBytes, kList, kDyn, kUnbound, kError };

// "int", "uint", "double", "string", "bytes", "bool" (the cel_columns types); anything else is an
// InvalidArgument naming `field` and the value.
Result<Type> ParseColumnType(std::string_view name, std::string_view field);
// "int", "uint", "double", "string", "bytes", "bool", "null_type", "list", "dyn".
std::string_view TypeName(Type type);

// A value during evaluation. Strings and bytes view into the bound context, the program's constants
// or the Scratch; such a view is valid until the next Evaluate with the same Scratch.
struct Value {
  Type type = Type::kUnbound;  // kUnbound: a declared variable the context did not supply
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string_view s;  // kString (UTF-8) / kBytes
  // kList (only inside Evaluate, or as a list-typed result): `u` elements from index `i` of the
  // Scratch's list storage, or of the program's constant lists when `b` is true.
  // kError (internal): `u` is the error code, `i` the byte offset of the failing operation.
};

// Per-thread working memory of Evaluate (value stack, intermediate strings). Not thread-safe; one per
// evaluating thread. Grows on first use, then is reused without allocating.
class Scratch {
 public:
  Scratch();
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

class Program {
 public:
  // Parses and checks `expr`. Errors are InvalidArgument and say where and why, e.g.
  //   cel_expr: found no matching overload for '_%_' applied to '(uint, int)' at column 15
  //    | shard_hash(tenant) % 32
  //    | ..............^ (write the literal as 32u, or convert with int(...))
  // `columns` maps variable name -> type name (ParseColumnType; errors name "cel_columns['x']").
  static Result<std::shared_ptr<const Program>> Compile(std::string_view expr,
                                                        const std::map<std::string, std::string>& columns);
  // How many times this process has called Compile: compiling is the costly step of building a CEL
  // router, so callers (and their tests) can see that a router is built once, not once per batch.
  static int64_t CompileCalls();
  virtual ~Program() = default;

  virtual Type result_type() const = 0;
  // Declared variables in slot order (ascending name).
  virtual const std::vector<std::pair<std::string, Type>>& variables() const = 0;

  // Fills `slots` (size variables().size()) from `context`: a value must have its variable's declared
  // type, except lossless conversions (int <-> uint within range, int/uint -> double). Otherwise an
  // InvalidArgument like "routing_context['tenant'] must be string (cel_columns), got 5". A missing
  // variable leaves its slot kUnbound (reading it is an evaluation error, as in CEL); names not
  // declared are ignored. Strings in the slots view into `context`, which must outlive evaluation.
  virtual Status Bind(const RoutingContext& context, std::span<Value> slots) const = 0;

  // Evaluates with CEL semantics: integer overflow, division or modulus by zero, out-of-range
  // conversions, malformed UTF-8 in string(bytes) and reading an unbound variable are errors
  // (InvalidArgument, message naming the operation and the column), with && / || absorbing errors
  // as CEL does. Never throws, never has undefined behaviour. Errors read like compile errors:
  //   cel_expr: divide by zero at column 3\n | a / b\n | ..^
  // A string result views the Scratch, the bound context or the program's constants.
  virtual Result<Value> Evaluate(std::span<const Value> slots, Scratch& scratch) const = 0;
};

// shard_hash(x): xxh3_64 with seed 0 over x's canonical bytes: int as 8-byte little-endian two's
// complement, uint the same when <= INT64_MAX (larger is an error, as in the reference), string as
// its UTF-8 bytes, bytes as they are.
uint64_t ShardHashInt(int64_t v);
uint64_t ShardHashBytes(std::string_view bytes);

}  // namespace shardvec::cel
