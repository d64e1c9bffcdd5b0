// The S3 test server scripts/s3_test_server.py starts on 127.0.0.1 (moto, signatures checked), as the
// tests see it, plus a transport that injects faults into chosen requests.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shardvec/object_store.h"
#include "store/s3/http_transport.h"
#include "store/s3/s3_store.h"

namespace shardvec::testing {

struct S3TestServer {
  std::string endpoint;  // http://127.0.0.1:<port>
  std::string bucket;
  std::string key_id;
  std::string secret;
};

// The server from the environment. Fails the test (with how to start one) when it is not set.
const S3TestServer& RequireS3Server();
// Options that reach the test server with its key, path-style, quick retries.
StoreOptions S3TestOptions();
// A fresh s3://bucket/tests/<name>-<random> prefix, so tests never see each other's objects.
std::string UniqueS3Prefix(const std::string& name);
// Opens an S3Store on the test server (a failed open fails the test and gives nullptr).
std::shared_ptr<S3Store> OpenS3TestStore(const std::string& prefix, std::shared_ptr<HttpTransport> transport = nullptr,
                                         const StoreOptions& options = S3TestOptions());
// "env AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_ENDPOINT_URL=…" for CLI command lines.
std::string S3CliEnv();
// Runs .venv/bin/python with a script from tests/support and arguments; returns its stdout.
struct CommandResult;
CommandResult RunTestPython(const std::string& script_and_args);

// What a fault does to a matching request.
enum class FaultAction {
  kSlowDown503,    // answer 503 SlowDown without sending
  kInternal500,    // answer 500 InternalError without sending
  kReset,          // fail like a reset connection, without sending
  kResetAfterSend, // send it (the server applies it), then lose the answer
  kDeny403,        // answer 403 AccessDenied without sending (permanent)
  kDelay,          // wait delay_ms, then send
};

struct FaultRule {
  std::string method;         // "" matches any
  std::string url_contains;   // substring of the URL
  FaultAction action = FaultAction::kSlowDown503;
  int skip = 0;               // let this many matching requests through first
  int times = 1;              // then fault this many (-1: forever)
  int delay_ms = 0;
};

// Wraps the real libcurl transport; counts every request it sees.
class FaultyTransport final : public HttpTransport {
 public:
  FaultyTransport();
  void AddRule(FaultRule rule);
  Result<HttpResponse> Send(const HttpRequest& request) override;
  int faults_injected() const { return faults_.load(); }
  // Requests whose method and URL contain both strings (every attempt counts).
  int CountRequests(const std::string& method, const std::string& url_contains) const;

 private:
  struct Rule {
    FaultRule rule;
    int seen = 0;
    int fired = 0;
  };
  std::shared_ptr<HttpTransport> real_;
  mutable std::mutex mu_;
  std::vector<Rule> rules_;
  std::vector<std::pair<std::string, std::string>> log_;
  std::atomic<int> faults_{0};
};

}  // namespace shardvec::testing
