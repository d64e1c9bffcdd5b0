// The parsed expression: a small tree the checker annotates (types, resolved opcodes) and the
// compiler lowers to the flat program. Operators are calls named as in cel-spec ("_+_", "-_", "@in").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "routing/cel/cel.h"

namespace shardvec::cel {

// A checked type: `depth` levels of list around `kind` (list(list(int)) = {kInt, 2}).
struct TypeInfo {
  Type kind = Type::kDyn;
  uint8_t depth = 0;
  friend bool operator==(const TypeInfo&, const TypeInfo&) = default;
  bool is(Type t) const { return depth == 0 && kind == t; }
};
std::string TypeInfoName(TypeInfo t);  // "int", "list(int)", "null_type", "list(dyn)"

struct Node {
  enum class Kind : uint8_t { kLiteral, kIdent, kCall, kList };
  Kind kind = Kind::kLiteral;
  bool member = false;  // a receiver call: args[0] is the receiver
  uint32_t pos = 0;     // byte offset errors point at (operator, '(' of a call, start of a literal)
  int depth = 1;        // height of this subtree (bounded by the parser)
  std::string name;     // identifier or function name
  // kLiteral payload (the literal's type is in `type`).
  bool b = false;
  int64_t i = 0;
  uint64_t u = 0;
  double d = 0;
  std::string s;
  std::vector<std::unique_ptr<Node>> args;
  // Set by the checker.
  TypeInfo type;
  uint16_t op = 0;    // resolved opcode for calls (see program.h)
  int32_t slot = -1;  // variable slot for identifiers
};

}  // namespace shardvec::cel
