// Credentials typed into a URL ("http://user:password@host") must never reach a message, a log line
// or a metric. Every URL that may carry them is printed through this one helper.
#pragma once

#include <string>
#include <string_view>

namespace shardvec {

// `url` with the userinfo of its authority (everything before the last '@' ahead of the path)
// replaced by "***": "http://***@host:9000/path". A URL without userinfo is returned unchanged; a
// text without "://" is treated as starting with its authority.
std::string RedactUrlUserinfo(std::string_view url);

// Whether `url` carries userinfo (a '@' in its authority).
bool UrlHasUserinfo(std::string_view url);

}  // namespace shardvec
