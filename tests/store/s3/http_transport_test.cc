// CurlTransport's own guarantees, against a one-shot server on 127.0.0.1: a URL carrying userinfo is
// printed with "***" in its place, and no body past the request's bound is stored, whether the
// server declares it (Content-Length) or streams it without a length.
#include "store/s3/http_transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "common/file_util.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

// Answers one request with `head` and then up to 1024 chunks of 64 KiB of 'x' (64 MiB), stopping
// when the client hangs up.
class OneShotServer {
 public:
  explicit OneShotServer(std::string head, bool chunked) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(::listen(listener_, 1), 0);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, head = std::move(head), chunked] {
      const int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = ::recv(client, buf, sizeof(buf), 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      const std::string chunk(64 << 10, 'x');
      const std::string framed = chunked ? "10000\r\n" + chunk + "\r\n" : chunk;
      bool open = ::send(client, head.data(), head.size(), MSG_NOSIGNAL) > 0;
      for (int i = 0; open && i < 1024; ++i) open = ::send(client, framed.data(), framed.size(), MSG_NOSIGNAL) > 0;
      ::close(client);
    });
  }
  ~OneShotServer() {
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  std::string Url(const std::string& userinfo = "") const {
    return "http://" + userinfo + "127.0.0.1:" + std::to_string(port_) + "/bucket/key";
  }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

HttpRequest Get(const std::string& url, int64_t max_body_bytes, int fd = -1) {
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  request.max_body_bytes = max_body_bytes;
  request.response_fd = fd;
  request.connect_timeout_seconds = 30;
  request.timeout_seconds = 60;
  return request;
}

// A GET bounded at `max_body_bytes` whose body goes to a file: the outcome and the bytes stored.
std::pair<Status, int64_t> SendToFile(const std::string& url, int64_t max_body_bytes) {
  testing::TempDir tmp;
  ScopedFd fd(::open((tmp / "body").c_str(), O_CREAT | O_RDWR, 0600));
  if (fd.get() < 0) return {Status::IOError("cannot create the body file"), -1};
  CurlTransport transport;
  const Status status = transport.Send(Get(url, max_body_bytes, fd.get())).status();
  return {status, static_cast<int64_t>(::lseek(fd.get(), 0, SEEK_END))};
}

TEST(HttpTransportTest, FailedExchangeNamesTheUrlWithoutItsUserinfo) {
  CurlTransport transport;
  auto response = transport.Send(Get("http://someone:pw-never-print-9c1e@127.0.0.1:1/bucket/key?uploadId=u", 100));
  ASSERT_FALSE(response.ok());
  const std::string message = response.status().message();
  EXPECT_NE(message.find("GET http://***@127.0.0.1:1/bucket/key"), std::string::npos) << message;
  EXPECT_EQ(message.find("pw-never-print-9c1e"), std::string::npos) << message;
  EXPECT_EQ(message.find("someone"), std::string::npos) << message;
}

TEST(HttpTransportTest, BodyDeclaredLargerThanTheBoundIsRefusedBeforeAByteIsStored) {
  OneShotServer server("HTTP/1.1 200 OK\r\nContent-Length: 67108864\r\n\r\n", /*chunked=*/false);
  const auto [status, stored] = SendToFile(server.Url(), 1000);
  EXPECT_EQ(status.code(), StatusCode::kCorruption) << status.ToString();
  EXPECT_NE(status.message().find("larger than the 1000 bytes expected"), std::string::npos);
  EXPECT_EQ(stored, 0);
}

TEST(HttpTransportTest, BodyStreamedWithoutLengthStopsAtTheBound) {
  OneShotServer server("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", /*chunked=*/true);
  const auto [status, stored] = SendToFile(server.Url(), 100000);
  EXPECT_EQ(status.code(), StatusCode::kCorruption) << status.ToString();
  EXPECT_LE(stored, 100000);  // never a byte past the bound on disk
}

TEST(HttpTransportTest, ErrorBodyIsKeptOnlyUpToItsLimit) {
  OneShotServer server("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 67108864\r\n\r\n", /*chunked=*/false);
  CurlTransport transport;
  auto response = transport.Send(Get(server.Url(), 1000));
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_EQ(response->status, 500);
  EXPECT_LE(static_cast<int64_t>(response->body.size()), 2 * kMaxErrorBodyBytes);
  EXPECT_EQ(response->body_bytes, int64_t{64} << 20);
}

}  // namespace
}  // namespace shardvec
