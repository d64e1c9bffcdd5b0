#include "common/url_redact.h"

#include <optional>
#include <utility>

namespace shardvec {
namespace {

// [begin, at) of the userinfo ('@' at `at`), or nullopt when the authority has none.
std::optional<std::pair<size_t, size_t>> UserinfoSpan(std::string_view url) {
  const size_t scheme = url.find("://");
  const size_t begin = scheme == std::string_view::npos ? 0 : scheme + 3;
  const size_t end = std::min(url.find_first_of("/?#", begin), url.size());
  const size_t at = url.substr(begin, end - begin).rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return std::pair{begin, begin + at};
}

}  // namespace

bool UrlHasUserinfo(std::string_view url) { return UserinfoSpan(url).has_value(); }

std::string RedactUrlUserinfo(std::string_view url) {
  const auto span = UserinfoSpan(url);
  if (!span) return std::string(url);
  return std::string(url.substr(0, span->first)) + "***" + std::string(url.substr(span->second));
}

}  // namespace shardvec
