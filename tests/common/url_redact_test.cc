#include "common/url_redact.h"

#include <gtest/gtest.h>

namespace shardvec {
namespace {

TEST(UrlRedactTest, ReplacesUserinfoAndKeepsTheRest) {
  EXPECT_EQ(RedactUrlUserinfo("http://user:s3cr3t@127.0.0.1:9000/bucket/key?x=1"), "http://***@127.0.0.1:9000/bucket/key?x=1");
  EXPECT_EQ(RedactUrlUserinfo("https://token@host"), "https://***@host");
  // A password holding '@' (unencoded) is hidden whole: the last '@' before the path ends it.
  EXPECT_EQ(RedactUrlUserinfo("http://u:p@ss@host/k"), "http://***@host/k");
  EXPECT_EQ(RedactUrlUserinfo("user:pw@host:1"), "***@host:1");  // no scheme typed
  EXPECT_TRUE(UrlHasUserinfo("s3://a:b@bucket/prefix"));
}

TEST(UrlRedactTest, LeavesUrlsWithoutUserinfoAlone) {
  for (const char* url : {"http://127.0.0.1:9000", "s3://bucket/prefix/a@b", "file:///tmp/x@y/z", "", "plain",
                          "http://host/path?email=a@b"}) {
    EXPECT_EQ(RedactUrlUserinfo(url), url);
    EXPECT_FALSE(UrlHasUserinfo(url)) << url;
  }
}

}  // namespace
}  // namespace shardvec
