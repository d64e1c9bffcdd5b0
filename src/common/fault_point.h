// Fault injection for crash-safety tests: the writer passes a named point after every publish step,
// and a test can make one of them fail (an error Status) or crash the process (SIGKILL, like kill -9).
// Unarmed, a point costs one relaxed atomic load.
//
// Armed by the environment, for child processes (the `shardvec` CLI):
//   SHARDVEC_FAULT_POINT=<name>[:<nth>]   fire at the nth pass of <name> (default 1)
//   SHARDVEC_FAULT_ACTION=fail|crash      default crash
// or in-process by SetFaultHookForTesting, which sees every pass of every point.
#pragma once

#include <functional>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

// The publish steps, in the order a write passes them.
inline constexpr std::string_view kFaultAfterShardUpload = "after_shard_upload";      // once per shard
inline constexpr std::string_view kFaultAfterRoutingArtifacts = "after_routing_artifacts";
inline constexpr std::string_view kFaultAfterManifestPut = "after_manifest_put";
inline constexpr std::string_view kFaultDuringCurrentSwap = "during_current_swap";    // new bytes staged, not live
inline constexpr std::string_view kFaultAfterCurrentSwap = "after_current_swap";

// OK unless this pass is armed: then an Internal error naming the point, or SIGKILL.
Status FaultPoint(std::string_view name);

// Replaces the environment's arming for this process; an empty hook disarms. The hook runs at every
// pass of every point (from any thread) and returns what FaultPoint returns.
using FaultHook = std::function<Status(std::string_view name)>;
void SetFaultHookForTesting(FaultHook hook);

// The error FaultPoint returns when it fails a pass.
Status InjectedFault(std::string_view name);
// Kills this process with SIGKILL (no destructors, no flushing: what kill -9 leaves behind).
[[noreturn]] void CrashNow();

}  // namespace shardvec
