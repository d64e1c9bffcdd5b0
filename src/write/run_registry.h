// The run registry: a run record written when a build starts, its lease renewed by a heartbeat, and
// its final status written at the end. Registry failures are logged, never fatal (as the reference).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "format/keys.h"
#include "format/run_record.h"
#include "shardvec/object_store.h"

namespace shardvec {

inline constexpr std::chrono::seconds kRunLease{600};
inline constexpr std::chrono::seconds kRunHeartbeat{60};

class RunRecordLifecycle {
 public:
  static std::unique_ptr<RunRecordLifecycle> Start(std::shared_ptr<ObjectStore> store,
                                                   const std::string& run_id,
                                                   const std::string& writer_type,
                                                   const KeyLayout& layout = {});
  // Marks the record failed when neither MarkSucceeded nor MarkFailed ran (an exception unwound the
  // build), then stops the heartbeat.
  ~RunRecordLifecycle();

  void MarkSucceeded(const std::string& manifest_ref);
  void MarkFailed(const Status& error);
  const std::string& key() const { return key_; }

 private:
  RunRecordLifecycle(std::shared_ptr<ObjectStore> store, std::string key, RunRecord record);
  // Puts the record; a failure is logged as `failure_event` (the reference's event names) and otherwise ignored.
  void Write(std::string_view failure_event);
  void HeartbeatLoop();
  void Finish(const std::string& status);

  std::shared_ptr<ObjectStore> store_;
  std::string key_;
  RunRecord record_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::thread heartbeat_;
};

}  // namespace shardvec
