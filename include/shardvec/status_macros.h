// Early-return helpers for Status / Result<T>: RETURN_IF_ERROR(status) and ASSIGN_OR_RETURN(lhs, result).
#pragma once

#include "shardvec/status.h"

#define SHARDVEC_CONCAT_INNER(a, b) a##b
#define SHARDVEC_CONCAT(a, b) SHARDVEC_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                     \
  do {                                            \
    ::shardvec::Status _st = (expr);              \
    if (!_st.ok()) return _st;                    \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(SHARDVEC_CONCAT(_result_, __LINE__), lhs, expr)
