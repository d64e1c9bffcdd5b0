// Text checks and display helpers for messages and output: UTF-8 checking, terminal-safe escaping and
// a stored payload made readable JSON.
#pragma once

#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

// OK, or InvalidArgument "<what> is not valid UTF-8 (byte 0xFF at offset 3): '<escaped text>'".
Status CheckUtf8(std::string_view text, std::string_view what);

// `text` made safe to print on a terminal or quote in a message: control characters (C0, DEL and
// the C1 range U+0080..U+009F) become "\n", "\r", "\t", "\xNN" or "\u0085"-style escapes, and bytes
// that are not UTF-8 become "\xNN". Printable text (including non-ASCII letters) is unchanged. The
// escapes are for reading, not reversible (a backslash in the text is left as it is).
std::string EscapeForDisplay(std::string_view text);

// The key of the object a reader returns for a stored payload it cannot hand back as JSON.
inline constexpr std::string_view kRawPayloadKey = "__raw_payload__";
// A shard's stored payload text as a reader returns it: the text unchanged when it is a JSON object
// nesting at most kMaxJsonNesting levels (so valid UTF-8, as JSON requires), otherwise
// {"__raw_payload__": "<the stored text>"} with bytes that are not UTF-8 replaced by U+FFFD. The
// result is always one valid JSON object. Bounded: the depth is checked before parsing, and
// parsing builds no tree.
std::string ReadablePayloadJson(std::string_view stored);

}  // namespace shardvec
