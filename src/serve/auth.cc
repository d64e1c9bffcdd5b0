#include "serve/auth.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "shardvec/serve.h"
#include "shardvec/text.h"

namespace shardvec {

Result<std::string> ReadAuthTokenFile(const std::string& path, std::string_view flag) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(fmt::format("{} '{}' is not a readable file", flag, EscapeForDisplay(path)));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return Status::InvalidArgument(fmt::format("{} '{}' is not private: its mode {:04o} lets others read or write it "
                                               "(chmod 600 it)",
                                               flag, EscapeForDisplay(path), st.st_mode & 07777));
  }
  if (st.st_size > 4096) {
    return Status::InvalidArgument(fmt::format("{} '{}' holds {} bytes; a token is at most 4096", flag,
                                               EscapeForDisplay(path), static_cast<long long>(st.st_size)));
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  if (!in) return Status::InvalidArgument(fmt::format("{} '{}' cannot be read", flag, EscapeForDisplay(path)));
  if (token.ends_with('\n')) token.pop_back();
  if (token.ends_with('\r')) token.pop_back();
  if (token.empty()) return Status::InvalidArgument(fmt::format("{} '{}' is empty", flag, EscapeForDisplay(path)));
  for (const char c : token) {
    if (c <= ' ' || c > '~') {
      return Status::InvalidArgument(fmt::format(
          "{} '{}': the token must be one line of visible ASCII characters (no spaces)", flag, EscapeForDisplay(path)));
    }
  }
  return token;
}

namespace serve {

bool BearerTokenMatches(std::string_view header, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (!header.starts_with(kScheme)) return false;
  header.remove_prefix(kScheme.size());
  // Every byte of the longer text is visited whatever the contents; only the lengths leak.
  unsigned char diff = header.size() == token.size() ? 0 : 1;
  const size_t n = std::max(header.size(), token.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < header.size() ? static_cast<unsigned char>(header[i]) : 0;
    const unsigned char b = i < token.size() ? static_cast<unsigned char>(token[i]) : 0;
    diff |= a ^ b;
  }
  return diff == 0;
}

}  // namespace serve
}  // namespace shardvec
