// JSON text in the two byte-exact styles the snapshot format uses.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "shardvec/limits.h"  // kMaxJsonNesting
#include "shardvec/text.h"    // ReadablePayloadJson, kRawPayloadKey

namespace shardvec {

// Python's json.dumps(value, sort_keys=True): ", " and ": " separators, ASCII-escaped.
// (Keys of nlohmann::json objects are already sorted.)
std::string PythonJsonDumps(const nlohmann::json& value);
// Same separators but keeps the object's own key order (payloads keep the user's order).
std::string PythonJsonDumps(const nlohmann::ordered_json& value);
// Compact ("," and ":"), sorted keys: the _CURRENT pointer style.
std::string CompactJsonDumps(const nlohmann::json& value);

// Whether `text` opens more than `max_depth` nested arrays/objects (brackets inside strings do not
// count). One pass, no allocation; run it before parsing untrusted JSON whose value will be dumped.
bool JsonNestsDeeperThan(std::string_view text, int max_depth = kMaxJsonNesting);

// Compact JSON text ("," and ":", keys as the value holds them) that never throws: bytes of a
// string that are not UTF-8 come out as U+FFFD. For output built from text read from a store or a
// file, where one bad byte must not abort the process.
std::string SafeJsonDump(const nlohmann::json& value);

}  // namespace shardvec
