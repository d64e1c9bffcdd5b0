// The lowered form of a checked expression: a flat post-order instruction array over a value stack,
// with every operand type resolved at compile time (kAddInt, kEqString, ...) and jumps for && / ||
// and ?:. Shared by the checker (which picks opcodes) and the evaluator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "routing/cel/ast.h"
#include "routing/cel/cel.h"

namespace shardvec::cel {

enum class Op : uint16_t {
  kNone,
  // Operands: kConst a=pool index; kVar a=slot.
  kConst, kVar,
  kNegInt, kNegDouble, kNot,
  kAddInt, kSubInt, kMulInt, kDivInt, kModInt,
  kAddUint, kSubUint, kMulUint, kDivUint, kModUint,
  kAddDouble, kSubDouble, kMulDouble, kDivDouble,
  kAddString, kAddBytes, kAddList,
  kEqInt, kNeInt, kLtInt, kLeInt, kGtInt, kGeInt,
  kEqUint, kNeUint, kLtUint, kLeUint, kGtUint, kGeUint,
  kEqDouble, kNeDouble, kLtDouble, kLeDouble, kGtDouble, kGeDouble,
  kEqString, kNeString, kLtString, kLeString, kGtString, kGeString,  // also bytes (bytewise)
  kEqBool, kNeBool, kLtBool, kLeBool, kGtBool, kGeBool,
  kEqAny, kNeAny,  // lists, null, dyn: CEL heterogeneous equality
  kIn,             // value in list (a = 1 when the list is a constant range of the pool: b = first, c = count)
  kMakeList,       // a = element count
  kSizeString, kSizeBytes, kSizeList,
  kStartsWith, kEndsWith, kContains,
  kIntFromUint, kIntFromDouble, kIntFromString,
  kUintFromInt, kUintFromDouble, kUintFromString,
  kDoubleFromInt, kDoubleFromUint, kDoubleFromString,
  kStringFromInt, kStringFromUint, kStringFromDouble, kStringFromBytes, kStringFromBool,
  kBytesFromString,
  kBoolFromString,
  kHashInt, kHashUint, kHashBytes,  // string hashes as its UTF-8 bytes
  kIdentity,                        // int(int), string(string), ...: no instruction emitted
  // Control: a = target pc.
  kJumpIfFalseKeep,  // && : top is false -> jump, keeping it as the result
  kJumpIfTrueKeep,   // || : top is true -> jump, keeping it
  kAnd, kOr,         // combine the two operands (error absorption)
  kCondJump,         // ?: pops the condition; false -> jump to a; error -> push it, jump to b
  kJump,
};

// Runtime error codes carried by an error Value (Value::u) until Evaluate reports them.
enum class ErrorCode : uint8_t {
  kNone, kUnbound, kIntOverflow, kUintOverflow, kDivideByZero, kModulusByZero,
  kDoubleToIntRange, kDoubleToUintRange, kIntToUintRange, kUintToIntRange,
  kStringToInt, kStringToUint, kStringToDouble, kStringToBool, kMalformedUtf8, kHashUintRange,
};

struct Instr {
  Op op = Op::kNone;
  uint32_t pos = 0;  // byte offset in the expression, for error messages
  int32_t a = 0;
  int32_t b = 0;
  int32_t c = 0;
};

}  // namespace shardvec::cel
