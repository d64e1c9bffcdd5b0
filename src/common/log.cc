#include "common/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace shardvec {
namespace {
std::mutex g_mu;
bool DebugEnabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("SHARDVEC_LOG");
    return v != nullptr && std::strcmp(v, "debug") == 0;
  }();
  return enabled;
}
}  // namespace

void LogWarning(std::string_view message) {
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "shardvec: warning: %.*s\n", static_cast<int>(message.size()), message.data());
}

void LogDebug(std::string_view message) {
  if (!DebugEnabled()) return;
  std::lock_guard<std::mutex> lock(g_mu);
  std::fprintf(stderr, "shardvec: debug: %.*s\n", static_cast<int>(message.size()), message.data());
}

}  // namespace shardvec
