#include "store/s3/sigv4.h"

#include <gtest/gtest.h>

#include <cctype>
#include <map>
#include <string>

// The request examples are AWS's own, from the S3 API reference page "Signature Calculations for the
// Authorization Header: Transferring Payload in a Single Chunk (AWS Signature Version 4)". Every
// expected signature was also recomputed independently with botocore.auth.S3SigV4Auth at a fixed
// time (2013-05-24T00:00:00Z), including the session-token case, which AWS does not publish.

namespace shardvec {
namespace {

constexpr const char* kAccessKey = "AKIAIOSFODNN7EXAMPLE";
constexpr const char* kSecretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr const char* kRegion = "us-east-1";
constexpr const char* kService = "s3";
constexpr const char* kAmzDate = "20130524T000000Z";
constexpr const char* kHost = "examplebucket.s3.amazonaws.com";
constexpr const char* kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr const char* kScope = "20130524/us-east-1/s3/aws4_request";

SigningKey ExampleKey() { return SigningKey{kAccessKey, kSecretKey, ""}; }

// The returned headers as a map; fails the test on a duplicate name.
std::map<std::string, std::string> AsMap(const HeaderList& headers) {
  std::map<std::string, std::string> out;
  for (const auto& [name, value] : headers) {
    EXPECT_TRUE(out.emplace(name, value).second) << "duplicate header " << name;
  }
  return out;
}

std::string ExpectedAuthorization(const std::string& signed_headers, const std::string& signature) {
  return std::string("AWS4-HMAC-SHA256 Credential=") + kAccessKey + "/" + kScope +
         ", SignedHeaders=" + signed_headers + ", Signature=" + signature;
}

TEST(SigV4Test, GetObjectWithRangeMatchesAwsExample) {
  SignableRequest request{"GET", kHost, "/test.txt", {}, {{"Range", "bytes=0-9"}}, kEmptySha256};
  HeaderList added = SignV4(request, ExampleKey(), kRegion, kService, kAmzDate);
  auto headers = AsMap(added);

  ASSERT_EQ(headers.size(), 3u) << "x-amz-date, x-amz-content-sha256, Authorization";
  EXPECT_EQ(headers["x-amz-date"], kAmzDate);
  EXPECT_EQ(headers["x-amz-content-sha256"], kEmptySha256);
  EXPECT_EQ(headers["Authorization"],
            ExpectedAuthorization("host;range;x-amz-content-sha256;x-amz-date",
                                  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
  EXPECT_EQ(headers.count("x-amz-security-token"), 0u);
}

TEST(SigV4Test, GetBucketLifecycleMatchesAwsExample) {
  SignableRequest request{"GET", kHost, "/", {{"lifecycle", ""}}, {}, kEmptySha256};
  auto headers = AsMap(SignV4(request, ExampleKey(), kRegion, kService, kAmzDate));
  EXPECT_EQ(headers["Authorization"],
            ExpectedAuthorization("host;x-amz-content-sha256;x-amz-date",
                                  "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
}

TEST(SigV4Test, ListObjectsMatchesAwsExample) {
  // Given out of order: the canonical query string sorts them.
  SignableRequest request{"GET", kHost, "/", {{"prefix", "J"}, {"max-keys", "2"}}, {}, kEmptySha256};
  auto headers = AsMap(SignV4(request, ExampleKey(), kRegion, kService, kAmzDate));
  EXPECT_EQ(headers["Authorization"],
            ExpectedAuthorization("host;x-amz-content-sha256;x-amz-date",
                                  "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

TEST(SigV4Test, PutObjectMatchesAwsExample) {
  const std::string body = "Welcome to Amazon S3.";
  const std::string payload_hash = Sha256Hex(body);
  ASSERT_EQ(payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  ASSERT_EQ("/" + UriEncode("test$file.text", true), "/test%24file.text");

  SignableRequest request{"PUT",
                          kHost,
                          "/test%24file.text",
                          {},
                          {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                           {"x-amz-storage-class", "REDUCED_REDUNDANCY"}},
                          payload_hash};
  auto headers = AsMap(SignV4(request, ExampleKey(), kRegion, kService, kAmzDate));
  EXPECT_EQ(headers["x-amz-date"], kAmzDate);
  EXPECT_EQ(headers["x-amz-content-sha256"], payload_hash);
  EXPECT_EQ(headers["Authorization"],
            ExpectedAuthorization("date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                                  "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
}

TEST(SigV4Test, HeaderNamesAreLowerCasedAndValuesTrimmed) {
  // The same request as the GET example with the Range header spelled and padded differently.
  SignableRequest request{"GET", kHost, "/test.txt", {}, {{"RANGE", "  bytes=0-9\t "}}, kEmptySha256};
  auto headers = AsMap(SignV4(request, ExampleKey(), kRegion, kService, kAmzDate));
  EXPECT_EQ(headers["Authorization"],
            ExpectedAuthorization("host;range;x-amz-content-sha256;x-amz-date",
                                  "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
}

TEST(SigV4Test, SessionTokenIsSentAndSigned) {
  SigningKey key{kAccessKey, kSecretKey, "SESSIONTOKEN/+=abc"};
  SignableRequest request{"GET", kHost, "/test.txt", {}, {{"Range", "bytes=0-9"}}, kEmptySha256};
  auto headers = AsMap(SignV4(request, key, kRegion, kService, kAmzDate));

  ASSERT_EQ(headers.size(), 4u);
  EXPECT_EQ(headers["x-amz-security-token"], "SESSIONTOKEN/+=abc");
  EXPECT_EQ(headers["x-amz-date"], kAmzDate);
  EXPECT_EQ(headers["x-amz-content-sha256"], kEmptySha256);
  // Signature computed by botocore for the same request and token.
  EXPECT_EQ(headers["Authorization"],
            ExpectedAuthorization("host;range;x-amz-content-sha256;x-amz-date;x-amz-security-token",
                                  "86626b525b2e4e5e8487506aad45f5c48592d00158ee412ad0cf56a09237d368"));
}

TEST(SigV4Test, SignatureDependsOnEveryInput) {
  SignableRequest base{"GET", kHost, "/test.txt", {}, {{"Range", "bytes=0-9"}}, kEmptySha256};
  const std::string reference = AsMap(SignV4(base, ExampleKey(), kRegion, kService, kAmzDate))["Authorization"];

  auto signature_of = [](const SignableRequest& r, const SigningKey& k, const char* region, const char* date) {
    return AsMap(SignV4(r, k, region, kService, date))["Authorization"];
  };
  SignableRequest other = base;
  other.encoded_path = "/test.txu";
  EXPECT_NE(signature_of(other, ExampleKey(), kRegion, kAmzDate), reference);
  other = base;
  other.headers = {{"Range", "bytes=0-8"}};
  EXPECT_NE(signature_of(other, ExampleKey(), kRegion, kAmzDate), reference);
  other = base;
  other.method = "HEAD";
  EXPECT_NE(signature_of(other, ExampleKey(), kRegion, kAmzDate), reference);
  other = base;
  other.query = {{"versionId", "1"}};
  EXPECT_NE(signature_of(other, ExampleKey(), kRegion, kAmzDate), reference);
  EXPECT_NE(signature_of(base, SigningKey{kAccessKey, "other-secret", ""}, kRegion, kAmzDate), reference);
  EXPECT_NE(signature_of(base, ExampleKey(), "eu-west-1", kAmzDate), reference);
  EXPECT_NE(signature_of(base, ExampleKey(), kRegion, "20130524T000001Z"), reference);
}

TEST(SigV4Test, UriEncodeKeepsUnreservedCharacters) {
  const std::string unreserved = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
  EXPECT_EQ(UriEncode(unreserved, false), unreserved);
  EXPECT_EQ(UriEncode(unreserved, true), unreserved);
  EXPECT_EQ(UriEncode("", false), "");
}

TEST(SigV4Test, UriEncodeEscapesEverythingElse) {
  EXPECT_EQ(UriEncode("a b", false), "a%20b");
  EXPECT_EQ(UriEncode("a=b", false), "a%3Db");
  EXPECT_EQ(UriEncode("a+b&c?d#e%f", false), "a%2Bb%26c%3Fd%23e%25f");
  EXPECT_EQ(UriEncode("$", false), "%24");
  EXPECT_EQ(UriEncode("*", false), "%2A");
  EXPECT_EQ(UriEncode(std::string("\x00\x01\x7f", 3), false), "%00%01%7F");
}

TEST(SigV4Test, UriEncodeSlashOnlyKeptWhenAsked) {
  EXPECT_EQ(UriEncode("a/b/c", false), "a%2Fb%2Fc");
  EXPECT_EQ(UriEncode("a/b/c", true), "a/b/c");
  EXPECT_EQ(UriEncode("/dir with space/x=y", true), "/dir%20with%20space/x%3Dy");
}

TEST(SigV4Test, UriEncodeUtf8BytesAreUppercasePercentEscapes) {
  EXPECT_EQ(UriEncode("\xC3\xA9", false), "%C3%A9");  // é
  EXPECT_EQ(UriEncode("snap/\xC3\xBCn\xC3\xAF/\xE6\x95\xB0\xE6\x8D\xAE.npy", true),
            "snap/%C3%BCn%C3%AF/%E6%95%B0%E6%8D%AE.npy");  // snap/ünï/数据.npy, as botocore quotes it
  EXPECT_EQ(UriEncode("\xFF\xFE", false), "%FF%FE");
}

TEST(SigV4Test, CanonicalQueryStringSortsByEncodedName) {
  EXPECT_EQ(CanonicalQueryString({}), "");
  EXPECT_EQ(CanonicalQueryString({{"prefix", "J"}, {"max-keys", "2"}}), "max-keys=2&prefix=J");
  EXPECT_EQ(CanonicalQueryString({{"prefix", "a/b"}, {"list-type", "2"}}), "list-type=2&prefix=a%2Fb");
  // Sorted on the encoded bytes: "%20..." < "A" < "_" < "a".
  EXPECT_EQ(CanonicalQueryString({{"a", "1"}, {"_", "2"}, {"A", "3"}, {" x", "4"}}), "%20x=4&A=3&_=2&a=1");
  // Uppercase-before-lowercase byte order, not case-insensitive.
  EXPECT_EQ(CanonicalQueryString({{"uploads", ""}, {"Zeta", "z"}}), "Zeta=z&uploads=");
}

TEST(SigV4Test, CanonicalQueryStringEncodesNamesAndValues) {
  EXPECT_EQ(CanonicalQueryString({{"lifecycle", ""}}), "lifecycle=");
  EXPECT_EQ(CanonicalQueryString({{"uploadId", "a b+c=d/e"}, {"partNumber", "3"}}),
            "partNumber=3&uploadId=a%20b%2Bc%3Dd%2Fe");
  EXPECT_EQ(CanonicalQueryString({{"continuation-token", "1/\xC3\xA9=="}}), "continuation-token=1%2F%C3%A9%3D%3D");
}

TEST(SigV4Test, Digests) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha256);
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Md5Base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(Md5Base64("Welcome to Amazon S3."), "1EfQ6PKJ8WoS/2AnznfCWA==");
}

TEST(SigV4Test, AmzDateNowHasTheSigV4Shape) {
  std::string date = AmzDateNow();
  ASSERT_EQ(date.size(), 16u) << date;
  for (int i : {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14}) {
    EXPECT_TRUE(std::isdigit(static_cast<unsigned char>(date[i]))) << date;
  }
  EXPECT_EQ(date[8], 'T');
  EXPECT_EQ(date[15], 'Z');
  EXPECT_GE(date.substr(0, 4), "2024");
}

}  // namespace
}  // namespace shardvec

namespace shardvec {
namespace {

// SigV4 collapses runs of spaces inside a header value; S3 does the same when it checks.
TEST(SigV4Test, InnerSpaceRunsInHeaderValuesAreCollapsed) {
  SigningKey key{"AKIDEXAMPLE", "secret", ""};
  SignableRequest spaced{"PUT", "h", "/k", {}, {{"x-amz-meta-note", "a   b \t c"}}, "UNSIGNED-PAYLOAD"};
  SignableRequest single{"PUT", "h", "/k", {}, {{"x-amz-meta-note", "a b c"}}, "UNSIGNED-PAYLOAD"};
  EXPECT_EQ(SignV4(spaced, key, "us-east-1", "s3", "20240101T000000Z"),
            SignV4(single, key, "us-east-1", "s3", "20240101T000000Z"));
}

}  // namespace
}  // namespace shardvec
