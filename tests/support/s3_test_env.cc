#include "support/s3_test_env.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

#include "common/random_id.h"
#include "support/test_util.h"

namespace shardvec::testing {
namespace {

std::string EnvOr(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

}  // namespace

const S3TestServer& RequireS3Server() {
  static const S3TestServer server{EnvOr("SHARDVEC_TEST_S3_ENDPOINT"), EnvOr("SHARDVEC_TEST_S3_BUCKET"),
                                   EnvOr("SHARDVEC_TEST_S3_KEY_ID"), EnvOr("SHARDVEC_TEST_S3_SECRET")};
  // The test stops here (GoogleTest reports the exception as the test's failure): going on would
  // dereference a store that was never opened, or talk to an address that is not loopback.
  if (server.endpoint.empty() || server.bucket.empty()) {
    ADD_FAILURE() << "no S3 test server: run the tests with scripts/test, or wrap them as "
                     ".venv/bin/python scripts/s3_test_server.py -- ctest --test-dir build";
    throw std::runtime_error("no S3 test server");
  }
  if (server.endpoint.rfind("http://127.0.0.1:", 0) != 0) {
    ADD_FAILURE() << "S3 tests only ever talk to 127.0.0.1, not " << server.endpoint;
    throw std::runtime_error("the S3 test server is not on 127.0.0.1");
  }
  return server;
}

StoreOptions S3TestOptions() {
  const S3TestServer& s = RequireS3Server();
  StoreOptions o;
  o.endpoint_url = s.endpoint;
  o.region = "us-east-1";
  o.addressing_style = "path";
  o.access_key_id = s.key_id;
  o.secret_access_key = s.secret;
  o.max_attempts = 4;
  o.max_retry_seconds = 10;
  return o;
}

std::string UniqueS3Prefix(const std::string& name) {
  return fmt::format("s3://{}/tests/{}-{}", RequireS3Server().bucket, name, NewUuidHex().substr(0, 12));
}

std::shared_ptr<S3Store> OpenS3TestStore(const std::string& prefix, std::shared_ptr<HttpTransport> transport,
                                         const StoreOptions& options) {
  auto store = S3Store::Open(prefix, options, std::move(transport));
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? *store : nullptr;
}

std::string S3CliEnv() {
  const S3TestServer& s = RequireS3Server();
  return fmt::format("env -u AWS_PROFILE AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_ENDPOINT_URL={} "
                     "AWS_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null",
                     ShellQuote(s.key_id), ShellQuote(s.secret), ShellQuote(s.endpoint));
}

CommandResult RunTestPython(const std::string& script_and_args) {
  const std::string root = SHARDVEC_SOURCE_DIR;
  return RunCommand(fmt::format("cd {} && .venv/bin/python tests/support/{}", ShellQuote(root), script_and_args));
}

FaultyTransport::FaultyTransport() : real_(std::make_shared<CurlTransport>()) {}

void FaultyTransport::AddRule(FaultRule rule) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{std::move(rule)});
}

int FaultyTransport::CountRequests(const std::string& method, const std::string& url_contains) const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [m, url] : log_) {
    if ((method.empty() || m == method) && url.find(url_contains) != std::string::npos) ++n;
  }
  return n;
}

Result<HttpResponse> FaultyTransport::Send(const HttpRequest& request) {
  std::optional<FaultRule> fire;
  {
    std::lock_guard<std::mutex> lock(mu_);
    log_.emplace_back(request.method, request.url);
    for (Rule& r : rules_) {
      if (!r.rule.method.empty() && r.rule.method != request.method) continue;
      if (request.url.find(r.rule.url_contains) == std::string::npos) continue;
      if (r.seen++ < r.rule.skip) continue;
      if (r.rule.times >= 0 && r.fired >= r.rule.times) continue;
      ++r.fired;
      fire = r.rule;
      break;
    }
  }
  if (!fire) return real_->Send(request);
  ++faults_;
  auto answer = [](long status, const char* code) {
    HttpResponse response;
    response.status = status;
    response.body = fmt::format("<?xml version=\"1.0\"?><Error><Code>{}</Code><Message>injected by the test"
                                "</Message></Error>", code);
    return response;
  };
  switch (fire->action) {
    case FaultAction::kSlowDown503: return answer(503, "SlowDown");
    case FaultAction::kInternal500: return answer(500, "InternalError");
    case FaultAction::kDeny403: return answer(403, "AccessDenied");
    case FaultAction::kReset: return Status::Unavailable("connection reset by peer (injected)");
    case FaultAction::kResetAfterSend: {
      Result<HttpResponse> real = real_->Send(request);
      (void)real;
      return Status::Unavailable("connection reset by peer after sending (injected)");
    }
    case FaultAction::kDelay:
      std::this_thread::sleep_for(std::chrono::milliseconds(fire->delay_ms));
      return real_->Send(request);
  }
  return real_->Send(request);
}

}  // namespace shardvec::testing
