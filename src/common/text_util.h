// Small text helpers shared across modules.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "shardvec/status.h"
#include "shardvec/text.h"  // CheckUtf8, EscapeForDisplay

namespace shardvec {

// ASCII lowercase (bytes outside A-Z unchanged): for header names, schemes, file extensions,
// metric names and hex digests, never for user text.
std::string AsciiLower(std::string_view text);

// The offset of the first byte of `text` that does not belong to well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF, no cut-off sequence), or nullopt when all
// of it is UTF-8. Text from users, files and stores is checked with it before it goes into JSON
// (JSON text is UTF-8; nlohmann's dump throws on anything else).
std::optional<size_t> FirstInvalidUtf8(std::string_view text);

}  // namespace shardvec
