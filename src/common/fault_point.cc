#include "common/fault_point.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

namespace shardvec {
namespace {

struct EnvFault {
  std::string name;
  int nth = 1;
  bool crash = true;
  std::atomic<int> passes{0};
};

// Parsed once; a malformed value is reported on stderr and arms nothing (a test would then see
// its write succeed and fail loudly).
EnvFault* ParseEnvFault() {
  const char* point = std::getenv("SHARDVEC_FAULT_POINT");
  if (point == nullptr || *point == '\0') return nullptr;
  auto* fault = new EnvFault;
  std::string spec(point);
  if (const size_t colon = spec.find(':'); colon != std::string::npos) {
    char* end = nullptr;
    const long nth = std::strtol(spec.c_str() + colon + 1, &end, 10);
    if (end == spec.c_str() + colon + 1 || *end != '\0' || nth < 1) {
      fmt::print(stderr, "SHARDVEC_FAULT_POINT='{}': the pass after ':' must be an integer >= 1\n", spec);
      delete fault;
      return nullptr;
    }
    fault->nth = static_cast<int>(nth);
    spec.resize(colon);
  }
  fault->name = spec;
  const char* action = std::getenv("SHARDVEC_FAULT_ACTION");
  const std::string act = action ? action : "crash";
  if (act != "crash" && act != "fail") {
    fmt::print(stderr, "SHARDVEC_FAULT_ACTION='{}' must be 'fail' or 'crash'\n", act);
    delete fault;
    return nullptr;
  }
  fault->crash = act == "crash";
  return fault;
}

EnvFault* const g_env_fault = ParseEnvFault();  // never freed: points may pass during exit
std::atomic<bool> g_armed{g_env_fault != nullptr};
std::mutex g_hook_mu;
std::shared_ptr<FaultHook> g_hook;

}  // namespace

Status InjectedFault(std::string_view name) {
  return Status::Internal(fmt::format("fault injected at '{}'", name));
}

void CrashNow() {
  ::raise(SIGKILL);
  std::abort();  // unreachable: SIGKILL cannot be caught
}

Status FaultPoint(std::string_view name) {
  if (!g_armed.load(std::memory_order_relaxed)) return Status::OK();
  std::shared_ptr<FaultHook> hook;
  {
    std::lock_guard<std::mutex> lock(g_hook_mu);
    hook = g_hook;
  }
  if (hook) return (*hook)(name);
  if (g_env_fault == nullptr || g_env_fault->name != name) return Status::OK();
  if (g_env_fault->passes.fetch_add(1) + 1 != g_env_fault->nth) return Status::OK();
  if (g_env_fault->crash) CrashNow();
  return InjectedFault(name);
}

void SetFaultHookForTesting(FaultHook hook) {
  std::lock_guard<std::mutex> lock(g_hook_mu);
  g_hook = hook ? std::make_shared<FaultHook>(std::move(hook)) : nullptr;
  g_armed.store(g_hook != nullptr || g_env_fault != nullptr);
}

}  // namespace shardvec
