// Small text helpers shared across modules.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

// ASCII lowercase (bytes outside A-Z unchanged): for header names, schemes, file extensions,
// metric names and hex digests, never for user text.
std::string AsciiLower(std::string_view text);

// The offset of the first byte of `text` that does not belong to well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF, no cut-off sequence), or nullopt when all
// of it is UTF-8. Text from users, files and stores is checked with it before it goes into JSON
// (JSON text is UTF-8; nlohmann's dump throws on anything else).
std::optional<size_t> FirstInvalidUtf8(std::string_view text);

// OK, or InvalidArgument "<what> is not valid UTF-8 (byte 0xFF at offset 3): '<escaped text>'".
Status CheckUtf8(std::string_view text, std::string_view what);

// `text` made safe to print on a terminal or quote in a message: control characters (C0, DEL and
// the C1 range U+0080..U+009F) become "\n", "\r", "\t", "\xNN" or "\u0085"-style escapes, and bytes
// that are not UTF-8 become "\xNN". Printable text (including non-ASCII letters) is unchanged. The
// escapes are for reading, not reversible (a backslash in the text is left as it is).
std::string EscapeForDisplay(std::string_view text);

}  // namespace shardvec
