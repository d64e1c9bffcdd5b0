// Fault injection for crash-safety tests, like LevelDB's FaultInjectionTestEnv wraps Env: an
// ObjectStore that forwards every call to the store it wraps and, at the store operations that are
// the publish steps of a write, asks a hook whether to go on, fail (an error Status) or crash the
// process (SIGKILL, like kill -9). Only test builds link it: the shipped library, CLI and Python
// module have no fault hook.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "shardvec/object_store.h"
#include "support/forwarding_store.h"

namespace shardvec::testing {

// The publish steps, in the order a write passes them, and the operation each one is.
inline constexpr std::string_view kFaultAfterShardUpload = "after_shard_upload";  // a shard.db upload returned OK
// Every shard and routing artifact is uploaded, the manifest not yet: its upload is about to start.
inline constexpr std::string_view kFaultAfterRoutingArtifacts = "after_routing_artifacts";
inline constexpr std::string_view kFaultAfterManifestPut = "after_manifest_put";  // the manifest upload returned OK
inline constexpr std::string_view kFaultDuringCurrentSwap = "during_current_swap";  // _CURRENT's swap about to start
inline constexpr std::string_view kFaultAfterCurrentSwap = "after_current_swap";    // _CURRENT's swap returned OK

// Called at every pass of every point (from any thread); its Status is what the operation returns
// instead (OK: go on).
using FaultHook = std::function<Status(std::string_view point)>;

// The error an injected failure returns: Internal, "fault injected at '<point>'".
Status InjectedFault(std::string_view point);
// Kills this process with SIGKILL (no destructors, no flushing: what kill -9 leaves behind).
[[noreturn]] void CrashNow();

// Fails (crash = false) or kills the process (crash = true) at the nth pass of `point`; every other
// pass goes on.
FaultHook FaultAt(std::string_view point, int nth, bool crash);
// FaultAt from text: "<point>[:<nth>]" and "fail" or "crash"; InvalidArgument naming a malformed one.
Result<FaultHook> ParseFault(std::string_view point_spec, std::string_view action);

class FaultInjectionStore : public ForwardingStore {
 public:
  FaultInjectionStore(std::shared_ptr<ObjectStore> inner, FaultHook hook)
      : ForwardingStore(std::move(inner)), hook_(std::move(hook)) {}

  Status PutFile(std::string_view key, const std::filesystem::path& source) override;
  Status PutIfAbsent(std::string_view key, std::string_view data) override;
  Result<std::string> CompareAndSwap(std::string_view key, std::string_view data,
                                     const std::optional<std::string>& expected_version) override;

 private:
  FaultHook hook_;
};

}  // namespace shardvec::testing
