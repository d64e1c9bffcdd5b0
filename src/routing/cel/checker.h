// Type checking with cel-cpp's rules: no implicit numeric conversions, equality only between
// assignable types (dyn and list element types unify), and overload resolution that picks the typed
// opcode each call node will run.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/cel/ast.h"
#include "shardvec/status.h"

namespace shardvec::cel {

// Annotates every node of `root` with its type (and calls with their opcode, identifiers with their
// slot in `vars`). Errors are InvalidArgument pointing into `expr`.
Status Check(Node& root, std::string_view expr, const std::vector<std::pair<std::string, Type>>& vars);

// True when values of `a` and `b` may be compared with == (and `a` may be an element of list(b)).
bool Assignable(TypeInfo a, TypeInfo b);

}  // namespace shardvec::cel
