// CurlTransport's own messages: a URL carrying userinfo is printed with "***" in its place.
#include "store/http_transport.h"

#include <gtest/gtest.h>

namespace shardvec {
namespace {

TEST(HttpTransportTest, FailedExchangeNamesTheUrlWithoutItsUserinfo) {
  CurlTransport transport;
  HttpRequest request;
  request.method = "GET";
  request.url = "http://someone:pw-never-print-9c1e@127.0.0.1:1/bucket/key?uploadId=u";
  request.connect_timeout_seconds = 5;
  request.timeout_seconds = 5;
  auto response = transport.Send(request);
  ASSERT_FALSE(response.ok());
  const std::string message = response.status().message();
  EXPECT_NE(message.find("GET http://***@127.0.0.1:1/bucket/key"), std::string::npos) << message;
  EXPECT_EQ(message.find("pw-never-print-9c1e"), std::string::npos) << message;
  EXPECT_EQ(message.find("someone"), std::string::npos) << message;
}

}  // namespace
}  // namespace shardvec
