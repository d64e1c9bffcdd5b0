#include "store/s3/s3_client.h"

#include <gtest/gtest.h>

#include <string>

// S3Client::UrlFor builds the address without sending anything, so no transport is needed. The
// expected encodings match botocore's (urllib.parse.quote(key, safe="/~") for keys).

namespace shardvec {
namespace {

S3Client MakeClient(std::string endpoint_url, std::string region, bool path_style, std::string bucket = "bucket") {
  S3Settings settings;
  settings.credentials = AwsCredentials{"AKIDEXAMPLE", "secret", ""};
  settings.region = std::move(region);
  settings.endpoint_url = std::move(endpoint_url);
  settings.path_style = path_style;
  settings.credentials_source = "test";
  return S3Client(std::move(settings), std::move(bucket), StoreOptions{}, /*transport=*/nullptr);
}

S3Call ObjectCall(std::string key) {
  S3Call call;
  call.method = "GET";
  call.object_key = std::move(key);
  return call;
}

TEST(S3ClientUrlTest, PathStyleObjectUrl) {
  S3Client client = MakeClient("http://127.0.0.1:9000", "us-east-1", /*path_style=*/true);
  EXPECT_EQ(client.UrlFor(ObjectCall("key")), "http://127.0.0.1:9000/bucket/key");
  EXPECT_EQ(client.UrlFor(ObjectCall("snap/shards/0001.db")), "http://127.0.0.1:9000/bucket/snap/shards/0001.db");
  EXPECT_EQ(client.bucket(), "bucket");
  EXPECT_EQ(client.Describe("a/b"), "s3://bucket/a/b");
  EXPECT_EQ(client.Describe(""), "s3://bucket");
}

TEST(S3ClientUrlTest, PathStyleBucketUrl) {
  S3Client client = MakeClient("http://127.0.0.1:9000", "us-east-1", /*path_style=*/true);
  S3Call list;
  list.method = "GET";
  list.query = {{"prefix", "a/b"}, {"list-type", "2"}};
  EXPECT_EQ(client.UrlFor(list), "http://127.0.0.1:9000/bucket?list-type=2&prefix=a%2Fb");
}

TEST(S3ClientUrlTest, EndpointPathAndHttpsAreHandled) {
  // An endpoint with a trailing path keeps only its authority.
  S3Client client = MakeClient("https://minio.example.com:8443/ignored", "us-east-1", /*path_style=*/true);
  EXPECT_EQ(client.UrlFor(ObjectCall("k")), "https://minio.example.com:8443/bucket/k");
}

TEST(S3ClientUrlTest, VirtualHostedAwsUrl) {
  S3Client client = MakeClient("", "eu-west-1", /*path_style=*/false);
  EXPECT_EQ(client.UrlFor(ObjectCall("key")), "https://bucket.s3.eu-west-1.amazonaws.com/key");
  EXPECT_EQ(client.UrlFor(ObjectCall("dir/sub/file.npy")),
            "https://bucket.s3.eu-west-1.amazonaws.com/dir/sub/file.npy");
}

TEST(S3ClientUrlTest, VirtualHostedBucketUrl) {
  S3Client client = MakeClient("", "eu-west-1", /*path_style=*/false);
  S3Call list;
  list.method = "GET";
  list.query = {{"prefix", "a/b"}, {"list-type", "2"}, {"continuation-token", "x+y/z="}};
  EXPECT_EQ(client.UrlFor(list),
            "https://bucket.s3.eu-west-1.amazonaws.com/?continuation-token=x%2By%2Fz%3D&list-type=2&prefix=a%2Fb");
}

TEST(S3ClientUrlTest, VirtualHostedCustomEndpoint) {
  S3Client client = MakeClient("http://localhost:4566", "us-east-1", /*path_style=*/false, "my-bucket");
  EXPECT_EQ(client.UrlFor(ObjectCall("k")), "http://my-bucket.localhost:4566/k");
}

TEST(S3ClientUrlTest, ObjectKeysAreEncoded) {
  S3Client path = MakeClient("http://127.0.0.1:9000", "us-east-1", /*path_style=*/true);
  S3Client hosted = MakeClient("", "eu-west-1", /*path_style=*/false);

  EXPECT_EQ(path.UrlFor(ObjectCall("dir with space/a=b.txt")),
            "http://127.0.0.1:9000/bucket/dir%20with%20space/a%3Db.txt");
  EXPECT_EQ(hosted.UrlFor(ObjectCall("dir with space/a=b.txt")),
            "https://bucket.s3.eu-west-1.amazonaws.com/dir%20with%20space/a%3Db.txt");
  // snap/ünï/数据.npy
  EXPECT_EQ(path.UrlFor(ObjectCall("snap/\xC3\xBCn\xC3\xAF/\xE6\x95\xB0\xE6\x8D\xAE.npy")),
            "http://127.0.0.1:9000/bucket/snap/%C3%BCn%C3%AF/%E6%95%B0%E6%8D%AE.npy");
  EXPECT_EQ(path.UrlFor(ObjectCall("x+y&z?#%")), "http://127.0.0.1:9000/bucket/x%2By%26z%3F%23%25");
  EXPECT_EQ(path.UrlFor(ObjectCall("a~b_c-d.e")), "http://127.0.0.1:9000/bucket/a~b_c-d.e");
}

TEST(S3ClientUrlTest, ObjectQueryIsSortedAndEncoded) {
  S3Client client = MakeClient("http://127.0.0.1:9000", "us-east-1", /*path_style=*/true);
  S3Call part = ObjectCall("big file.db");
  part.method = "PUT";
  part.query = {{"uploadId", "abc/def+="}, {"partNumber", "7"}};
  EXPECT_EQ(client.UrlFor(part), "http://127.0.0.1:9000/bucket/big%20file.db?partNumber=7&uploadId=abc%2Fdef%2B%3D");

  S3Call initiate = ObjectCall("k");
  initiate.method = "POST";
  initiate.query = {{"uploads", ""}};
  EXPECT_EQ(client.UrlFor(initiate), "http://127.0.0.1:9000/bucket/k?uploads=");
}

}  // namespace
}  // namespace shardvec
