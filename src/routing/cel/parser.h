// Recursive-descent parser for CEL's expression grammar (cel-spec), the subset routing uses. Nesting
// is bounded (kMaxNesting parentheses/lists/calls, kMaxTreeDepth overall) so hostile input cannot
// overflow the stack in the parser, the checker or the compiler.
#pragma once

#include <memory>
#include <string_view>

#include "routing/cel/ast.h"
#include "shardvec/status.h"

namespace shardvec::cel {

inline constexpr int kMaxNesting = 64;
inline constexpr int kMaxTreeDepth = 256;

// Parses `expr`; errors are InvalidArgument with the position and a caret line (FormatCompileError).
Result<std::unique_ptr<Node>> Parse(std::string_view expr);

// "cel_expr: <what> at column N\n | <line>\n | ....^ <hint>" (column in code points, 1-based).
Status FormatCompileError(std::string_view expr, uint32_t pos, std::string_view what, std::string_view hint = {});

}  // namespace shardvec::cel
