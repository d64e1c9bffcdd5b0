// S3Store against the real S3-speaking test server on 127.0.0.1 (signatures checked).
#include "store/s3/s3_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "common/digest.h"
#include "read/snapshot_loader.h"
#include "snapshot/publisher.h"
#include "support/s3_test_env.h"
#include "support/test_util.h"

namespace shardvec {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::FaultAction;
using testing::FaultyTransport;
using testing::S3TestOptions;
using testing::UniqueS3Prefix;

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

std::shared_ptr<S3Store> OpenTestStore(const std::string& name, StoreOptions options = S3TestOptions(),
                                       std::shared_ptr<HttpTransport> transport = nullptr) {
  return testing::OpenS3TestStore(UniqueS3Prefix(name), std::move(transport), options);
}

TEST(S3StoreTest, PutGetRangeHeadRoundTripWithAwkwardKeys) {
  auto store = OpenTestStore("roundtrip");
  ASSERT_TRUE(store);
  const std::vector<std::string> keys = {"plain", "shards/run_id=a/db=00001/attempt=00/shard.db",
                                         "with space+plus&amp", "unicode/\xc3\xa9t\xc3\xa9", "tilde~star*"};
  for (size_t i = 0; i < keys.size(); ++i) {
    const std::string data = RandomBytes(1000 + i, i);
    ASSERT_TRUE(store->Put(keys[i], data).ok()) << keys[i];
    auto got = store->Get(keys[i]);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, data) << keys[i];
    auto range = store->GetRange(keys[i], 10, 20);
    ASSERT_TRUE(range.ok()) << range.status().ToString();
    EXPECT_EQ(*range, data.substr(10, 20));
    auto head = store->Head(keys[i]);
    ASSERT_TRUE(head.ok());
    EXPECT_EQ(head->size, static_cast<int64_t>(data.size()));
    EXPECT_FALSE(head->version.empty());
  }
  auto missing = store->Get("nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope"));
  EXPECT_THAT(store->Url("a/b"), HasSubstr("s3://" + testing::RequireS3Server().bucket + "/tests/roundtrip-"));
}

TEST(S3StoreTest, PutIfAbsentNeverOverwrites) {
  auto store = OpenTestStore("ifabsent");
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->PutIfAbsent("m", "first").ok());
  Status again = store->PutIfAbsent("m", "second");
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  EXPECT_EQ(*store->Get("m"), "first");
}

TEST(S3StoreTest, CompareAndSwapFollowsTheETag) {
  auto store = OpenTestStore("cas");
  ASSERT_TRUE(store);
  auto v1 = store->CompareAndSwap("_CURRENT", "one", std::nullopt);
  ASSERT_TRUE(v1.ok()) << v1.status().ToString();
  // Creating again must lose: the object exists now.
  EXPECT_EQ(store->CompareAndSwap("_CURRENT", "x", std::nullopt).status().code(), StatusCode::kConflict);
  auto v2 = store->CompareAndSwap("_CURRENT", "two", *v1);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_NE(*v1, *v2);
  // The old version no longer matches.
  auto stale = store->CompareAndSwap("_CURRENT", "three", *v1);
  EXPECT_EQ(stale.status().code(), StatusCode::kConflict);
  EXPECT_EQ(*store->Get("_CURRENT"), "two");
  auto versioned = store->GetVersioned("_CURRENT");
  ASSERT_TRUE(versioned.ok());
  EXPECT_EQ(versioned->version, *v2);
}

TEST(S3StoreTest, ListPaginatesAndGroupsByDelimiterAndDeleteManyBatches) {
  auto store = OpenTestStore("list");
  ASSERT_TRUE(store);
  store->set_list_page_size(7);
  std::vector<std::string> keys;
  for (int i = 0; i < 30; ++i) keys.push_back(fmt::format("runs/r{:02}/file", i));
  for (int i = 0; i < 5; ++i) keys.push_back(fmt::format("manifests/m{}/manifest", i));
  keys.push_back("_CURRENT");
  for (const auto& k : keys) ASSERT_TRUE(store->Put(k, k).ok());

  auto all = store->List("", "");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->objects.size(), keys.size());
  auto runs = store->List("runs/", "");
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->objects.size(), 30u);
  EXPECT_EQ(runs->objects[3].key, "runs/r03/file");
  EXPECT_EQ(runs->objects[3].size, 13);
  auto grouped = store->List("manifests/", "/");
  ASSERT_TRUE(grouped.ok());
  EXPECT_TRUE(grouped->objects.empty());
  EXPECT_THAT(grouped->common_prefixes, ::testing::ElementsAre("manifests/m0/", "manifests/m1/", "manifests/m2/",
                                                              "manifests/m3/", "manifests/m4/"));

  std::vector<std::string> doomed(keys.begin(), keys.begin() + 30);
  doomed.push_back("never-existed");
  ASSERT_TRUE(store->DeleteMany(doomed).ok());
  auto left = store->List("", "");
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(left->objects.size(), 6u);
  EXPECT_TRUE(store->Delete("never-existed").ok());
}

TEST(S3StoreTest, MultipartUploadAndParallelRangedDownloadKeepTheBytes) {
  StoreOptions options = S3TestOptions();
  options.part_size_bytes = 5 << 20;
  options.multipart_threshold_bytes = 5 << 20;
  options.ranged_get_threshold_bytes = 5 << 20;
  options.max_concurrency = 3;
  auto transport = std::make_shared<FaultyTransport>();
  auto store = OpenTestStore("multipart", options, transport);
  ASSERT_TRUE(store);

  testing::TempDir dir;
  const std::string data = RandomBytes((11 << 20) + 12345, 7);  // three parts, the last short
  testing::WriteText(dir / "shard.db", data);
  ASSERT_TRUE(store->PutFile("shard.db", dir / "shard.db").ok());
  EXPECT_EQ(transport->CountRequests("PUT", "partNumber="), 3);
  auto head = store->Head("shard.db");
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(head->size, static_cast<int64_t>(data.size()));
  EXPECT_THAT(head->version, HasSubstr("-3"));  // S3's multipart ETag names the part count

  ASSERT_TRUE(store->GetToFile("shard.db", dir / "copy.db", static_cast<int64_t>(data.size())).ok());
  EXPECT_EQ(transport->CountRequests("GET", "shard.db"), 3);  // three ranges
  auto want = DigestFile(dir / "shard.db");
  auto got = DigestFile(dir / "copy.db");
  ASSERT_TRUE(want.ok() && got.ok());
  EXPECT_EQ(got->digest, want->digest);
  EXPECT_EQ(got->size, want->size);
  // No staging files left beside the download.
  EXPECT_EQ(testing::ListFiles(dir.path()), (std::vector<std::string>{"copy.db", "shard.db"}));

  // In-memory Put above the threshold goes multipart too.
  ASSERT_TRUE(store->Put("mem.db", data).ok());
  EXPECT_EQ(*store->Get("mem.db"), data);
}

// An object larger than the read allows is refused from HEAD's or GET's Content-Length, before its
// bytes are stored: no file, no memory, whatever the object holds.
TEST(S3StoreTest, ObjectLargerThanTheReadAllowsIsRefusedBeforeItsBytes) {
  auto transport = std::make_shared<FaultyTransport>();
  auto store = OpenTestStore("oversized", S3TestOptions(), transport);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Put("shards/shard.db", RandomBytes(10000, 5)).ok());
  testing::TempDir dir;
  const Status to_file = store->GetToFile("shards/shard.db", dir / "dl/copy.db", 9999);
  EXPECT_EQ(to_file.code(), StatusCode::kCorruption) << to_file.ToString();
  EXPECT_THAT(to_file.message(), HasSubstr("shards/shard.db' is 10000 bytes, more than the 9999 bytes"));
  EXPECT_EQ(transport->CountRequests("GET", "shard.db"), 0);  // HEAD alone
  EXPECT_EQ(testing::ListFiles(dir.path()), std::vector<std::string>{});

  for (const Status& st : {store->Get("shards/shard.db", 9999).status(),
                           store->GetVersioned("shards/shard.db", 9999).status()}) {
    EXPECT_EQ(st.code(), StatusCode::kCorruption) << st.ToString();
    EXPECT_THAT(st.message(), HasSubstr("shards/shard.db"));
    EXPECT_THAT(st.message(), HasSubstr("larger than the 9999 bytes"));
  }
  EXPECT_EQ(transport->CountRequests("GET", "shard.db"), 2);  // one attempt each: never retried
  EXPECT_TRUE(store->GetToFile("shards/shard.db", dir / "dl/copy.db", 10000).ok());
  EXPECT_EQ(store->Get("shards/shard.db", 10000)->size(), 10000u);

  // A _CURRENT past its bound, as the reader and the publisher see it.
  ASSERT_TRUE(store->Put("_CURRENT", std::string(static_cast<size_t>(kMaxCurrentPointerBytes) + 1, ' ')).ok());
  for (const Status& pointer : {LoadCurrentPointer(*store).status(), ReadCurrent(*store).status()}) {
    EXPECT_EQ(pointer.code(), StatusCode::kCorruption);
    EXPECT_THAT(pointer.message(), HasSubstr(std::to_string(kMaxCurrentPointerBytes)));
  }
}

TEST(S3StoreTest, FailedMultipartIsAbortedAndLeavesNoObject) {
  StoreOptions options = S3TestOptions();
  options.part_size_bytes = 5 << 20;
  options.multipart_threshold_bytes = 5 << 20;
  auto transport = std::make_shared<FaultyTransport>();
  transport->AddRule({.method = "PUT", .url_contains = "partNumber=2", .action = FaultAction::kDeny403, .times = -1});
  auto store = OpenTestStore("abort", options, transport);
  ASSERT_TRUE(store);
  Status st = store->Put("big.db", RandomBytes(11 << 20, 3));
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << st.ToString();
  EXPECT_EQ(transport->CountRequests("DELETE", "uploadId="), 1);
  EXPECT_EQ(store->Head("big.db").status().code(), StatusCode::kNotFound);
  // The server holds no unfinished upload for the key.
  S3Call uploads;
  uploads.method = "GET";
  uploads.query = {{"uploads", ""}};
  auto listed = store->client().Execute(uploads);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_THAT(listed->body, Not(HasSubstr("big.db")));
}

TEST(S3StoreTest, TransientFaultsAreRetriedAndLostAnswersStillSucceed) {
  auto transport = std::make_shared<FaultyTransport>();
  transport->AddRule({.method = "PUT", .url_contains = "/a", .action = FaultAction::kSlowDown503, .times = 2});
  transport->AddRule({.method = "GET", .url_contains = "/a", .action = FaultAction::kReset, .times = 1});
  transport->AddRule({.method = "PUT", .url_contains = "/once", .action = FaultAction::kResetAfterSend});
  transport->AddRule({.method = "PUT", .url_contains = "/ptr", .action = FaultAction::kResetAfterSend, .skip = 1});
  transport->AddRule({.method = "GET", .url_contains = "/b", .action = FaultAction::kInternal500, .times = 1});
  auto store = OpenTestStore("retry", S3TestOptions(), transport);
  ASSERT_TRUE(store);

  ASSERT_TRUE(store->Put("a", "alpha").ok());
  EXPECT_EQ(*store->Get("a"), "alpha");
  // Put-if-absent whose first answer was lost: the retry sees our own object and succeeds.
  ASSERT_TRUE(store->PutIfAbsent("once", "manifest bytes").ok());
  EXPECT_EQ(transport->CountRequests("PUT", "/once"), 2);
  // The same for a compare-and-swap.
  auto v1 = store->CompareAndSwap("ptr", "p1", std::nullopt);
  ASSERT_TRUE(v1.ok());
  auto v2 = store->CompareAndSwap("ptr", "p2", *v1);
  ASSERT_TRUE(v2.ok()) << v2.status().ToString();
  EXPECT_EQ(*store->Get("ptr"), "p2");
  ASSERT_TRUE(store->Put("b", "beta").ok());
  EXPECT_EQ(*store->Get("b"), "beta");
  EXPECT_EQ(transport->faults_injected(), 6);  // 2 + 1 + 1 + 1 + 1, each retried past
}

TEST(S3StoreTest, PermanentFaultsFailWithTheKeyAndTheS3Code) {
  auto transport = std::make_shared<FaultyTransport>();
  transport->AddRule({.method = "PUT", .url_contains = "/x", .action = FaultAction::kSlowDown503, .times = -1});
  transport->AddRule({.method = "PUT", .url_contains = "/y", .action = FaultAction::kDeny403, .times = -1});
  auto store = OpenTestStore("permanent", S3TestOptions(), transport);
  ASSERT_TRUE(store);
  Status slow = store->Put("x", "data");
  EXPECT_EQ(slow.code(), StatusCode::kUnavailable);
  EXPECT_THAT(slow.message(), HasSubstr("/x"));
  EXPECT_THAT(slow.message(), HasSubstr("SlowDown"));
  EXPECT_THAT(slow.message(), HasSubstr("gave up after 4 attempts"));
  EXPECT_EQ(transport->CountRequests("PUT", "/x"), 4);
  Status denied = store->Put("y", "data");
  EXPECT_EQ(denied.code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(denied.message(), HasSubstr("AccessDenied"));
  EXPECT_EQ(transport->CountRequests("PUT", "/y"), 1);  // never retried
}

TEST(S3StoreTest, WrongSecretIsAClearAuthenticationErrorWithoutTheSecret) {
  StoreOptions options = S3TestOptions();
  options.secret_access_key = "wrong-secret-do-not-print";
  auto store = OpenTestStore("badsecret", options);
  ASSERT_TRUE(store);
  auto got = store->Get("anything");
  EXPECT_EQ(got.status().code(), StatusCode::kPermissionDenied);
  EXPECT_THAT(got.status().message(), HasSubstr("SignatureDoesNotMatch"));
  EXPECT_THAT(got.status().message(), Not(HasSubstr("wrong-secret-do-not-print")));
  EXPECT_THAT(got.status().message(), Not(HasSubstr(testing::RequireS3Server().secret)));

  options = S3TestOptions();
  options.access_key_id = "AKIAUNKNOWNKEY000000";
  store = OpenTestStore("badkey", options);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->Get("anything").status().code(), StatusCode::kPermissionDenied);
}

TEST(S3StoreTest, MissingBucketIsAClearError) {
  auto store = S3Store::Open("s3://no-such-bucket-shardvec/x", S3TestOptions());
  ASSERT_TRUE(store.ok());
  auto got = (*store)->Get("_CURRENT");
  EXPECT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), HasSubstr("bucket 'no-such-bucket-shardvec' does not exist (NoSuchBucket)"));
}

TEST(S3StoreTest, BadUrlsAndOptionsAreRejectedByName) {
  EXPECT_THAT(S3Store::Open("s3://", S3TestOptions()).status().message(), HasSubstr("bucket name ''"));
  EXPECT_THAT(S3Store::Open("s3://b!d/x", S3TestOptions()).status().message(), HasSubstr("bucket name 'b!d'"));
  EXPECT_THAT(S3Store::Open("s3://bucket/a/../b", S3TestOptions()).status().message(), HasSubstr("'..'"));
  StoreOptions small = S3TestOptions();
  small.part_size_bytes = 1024;
  EXPECT_THAT(S3Store::Open("s3://bucket/x", small).status().message(), HasSubstr("part_size_bytes"));
}

TEST(S3StoreTest, VirtualHostedAddressingReachesTheSameBucket) {
  StoreOptions options = S3TestOptions();
  options.addressing_style = "virtual";
  // *.localhost resolves to 127.0.0.1 inside curl, so the bucket can sit in the host name.
  options.endpoint_url = "http://localhost:" + testing::RequireS3Server().endpoint.substr(17);
  auto virtual_store = OpenTestStore("virtual", options);
  ASSERT_TRUE(virtual_store);
  S3Call get_k;
  get_k.method = "GET";
  get_k.object_key = "k";
  EXPECT_THAT(virtual_store->client().UrlFor(get_k),
              HasSubstr("://" + testing::RequireS3Server().bucket + ".localhost:"));
  ASSERT_TRUE(virtual_store->Put("k", "via virtual host").ok());
  auto path_store = S3Store::Open(virtual_store->PrefixUrl(), S3TestOptions());
  ASSERT_TRUE(path_store.ok());
  EXPECT_EQ(*(*path_store)->Get("k"), "via virtual host");
}

}  // namespace
}  // namespace shardvec
