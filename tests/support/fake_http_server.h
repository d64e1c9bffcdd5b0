// A small HTTP/1.1 server on 127.0.0.1 for tests that play a remote service (EC2 instance metadata,
// the ECS credentials endpoint, the SSO portal, STS): each request is answered by a handler and
// recorded. One connection at a time, each closed after its answer; the server stops with the object.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shardvec::testing {

struct FakeRequest {
  std::string method;
  std::string target;                          // path and query as sent
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string Header(const std::string& lowercase_name) const {
    auto it = headers.find(lowercase_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct FakeResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeResponse(const FakeRequest&)>;
  explicit FakeHttpServer(Handler handler);
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::string url() const;  // http://127.0.0.1:<port>
  std::vector<FakeRequest> requests() const;

 private:
  void Serve();
  void Answer(int client);

  Handler handler_;
  int listener_ = -1;
  int port_ = 0;
  mutable std::mutex mu_;
  std::vector<FakeRequest> requests_;
  std::thread thread_;
};

// "2026-01-31T12:00:00Z" for now + `seconds` (negative: in the past).
std::string UtcTimeFromNow(int seconds);

}  // namespace shardvec::testing
