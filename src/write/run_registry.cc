#include "write/run_registry.h"

#include "common/log.h"
#include "common/random_id.h"
#include "common/text_util.h"
#include "common/thread_pool.h"
#include "common/time_util.h"
#include "format/keys.h"

namespace shardvec {

std::unique_ptr<RunRecordLifecycle> RunRecordLifecycle::Start(std::shared_ptr<ObjectStore> store,
                                                              const std::string& run_id,
                                                              const std::string& writer_type,
                                                              const KeyLayout& layout) {
  const SystemTime now = NowUtc();
  RunRecord record;
  record.run_id = run_id;
  record.writer_type = writer_type;
  record.started_at = record.updated_at = FormatTimestamp(now);
  record.lease_expires_at = FormatTimestamp(now + kRunLease);
  record.s3_prefix = store->PrefixUrl();
  record.shard_prefix = layout.shard_prefix;
  record.db_path_template = layout.db_path_template;
  std::string key = RunRecordKey(record.started_at, run_id, NewUuidHex(), layout.run_registry_prefix);
  std::unique_ptr<RunRecordLifecycle> life(new RunRecordLifecycle(std::move(store), std::move(key), record));
  life->Write("run_record_create_failed");
  // Like every registry failure, a heartbeat thread the system refuses is logged, not fatal: the
  // record then keeps its first lease.
  if (Status st = StartThread(&life->heartbeat_, [raw = life.get()] { raw->HeartbeatLoop(); }, "the run record's heartbeat");
      !st.ok()) {
    LogEvent(LogLevel::kWarning, "run_record_heartbeat_failed", {{"run_id", run_id}, {"error", st.ToString()}});
  }
  return life;
}

RunRecordLifecycle::RunRecordLifecycle(std::shared_ptr<ObjectStore> store, std::string key, RunRecord record)
    : store_(std::move(store)), key_(std::move(key)), record_(std::move(record)) {}

RunRecordLifecycle::~RunRecordLifecycle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Destroyed without a final status: the build ended by an exception thrown past it. The record
    // must not stay "running" until its lease expires.
    if (!finished_) {
      record_.error_type = std::string(StatusCodeName(StatusCode::kInternal));
      record_.error_message = "the build ended without a final status (an unexpected exception)";
      Finish("failed");
    }
  }
  cv_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void RunRecordLifecycle::Write(std::string_view failure_event) {
  Status st = store_->Put(key_, EncodeRunRecord(record_));
  if (!st.ok()) {
    LogEvent(LogLevel::kWarning, failure_event,
             {{"run_id", record_.run_id}, {"key", key_}, {"status", record_.status}, {"error", st.ToString()}});
  }
}

void RunRecordLifecycle::HeartbeatLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, kRunHeartbeat, [this] { return finished_; })) {
    const SystemTime now = NowUtc();
    record_.updated_at = FormatTimestamp(now);
    record_.lease_expires_at = FormatTimestamp(now + kRunLease);
    Write("run_record_heartbeat_failed");
  }
}

void RunRecordLifecycle::Finish(const std::string& status) {
  const SystemTime now = NowUtc();
  record_.status = status;
  record_.updated_at = record_.lease_expires_at = FormatTimestamp(now);
  finished_ = true;
  Write("run_record_terminal_update_failed");
}

void RunRecordLifecycle::MarkSucceeded(const std::string& manifest_ref) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    record_.manifest_ref = manifest_ref;
    Finish("succeeded");
  }
  cv_.notify_all();
}

void RunRecordLifecycle::MarkFailed(const Status& error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    record_.error_type = std::string(StatusCodeName(error.code()));
    // Printable and UTF-8 whatever values the message quotes: readers parse the record as YAML.
    record_.error_message = EscapeForDisplay(error.message());
    Finish("failed");
  }
  cv_.notify_all();
}

}  // namespace shardvec
