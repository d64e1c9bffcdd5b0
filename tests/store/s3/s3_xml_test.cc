#include "store/s3/s3_xml.h"

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <random>
#include <string>
#include <vector>

namespace shardvec {
namespace {

constexpr const char* kListPage = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix>snap/</Prefix>
  <KeyCount>3</KeyCount>
  <MaxKeys>1000</MaxKeys>
  <Delimiter>/</Delimiter>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>snap/manifest.json</Key>
    <LastModified>2024-01-02T03:04:05.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag>
    <Size>1234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>snap/a &amp; b &lt;c&gt;.db</Key>
    <ETag>&quot;d41d8cd98f00b204e9800998ecf8427e-3&quot;</ETag>
    <Size>0</Size>
  </Contents>
  <Contents>
    <Key>snap/big.db</Key>
    <Size>68719476736</Size>
    <ETag>"plain"</ETag>
  </Contents>
  <CommonPrefixes><Prefix>snap/shards/</Prefix></CommonPrefixes>
  <CommonPrefixes><Prefix>snap/spool/</Prefix></CommonPrefixes>
</ListBucketResult>)";

constexpr const char* kInitiate = R"(<?xml version="1.0" encoding="UTF-8"?>
<InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>bucket</Bucket>
  <Key>snap/big.db</Key>
  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
</InitiateMultipartUploadResult>)";

constexpr const char* kDeleteWithErrors = R"(<?xml version="1.0" encoding="UTF-8"?>
<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Deleted><Key>a</Key></Deleted>
  <Error><Key>b &amp; c</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error>
  <Error><Key>d</Key><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>
</DeleteResult>)";

constexpr const char* kError = R"(<?xml version="1.0" encoding="UTF-8"?>
<Error>
  <Code>NoSuchKey</Code>
  <Message>The resource you requested does not exist</Message>
  <Resource>/mybucket/myfoto.jpg</Resource>
  <RequestId>4442587FB7D0A2F9</RequestId>
</Error>)";

// Key texts of a <Delete> or the ETags of a <CompleteMultipartUpload>, parsed back with pugixml.
pugi::xml_node LoadRoot(pugi::xml_document& doc, const std::string& xml, const char* root) {
  pugi::xml_parse_result parsed = doc.load_string(xml.c_str());
  EXPECT_TRUE(parsed) << parsed.description() << " in " << xml;
  pugi::xml_node node = doc.child(root);
  EXPECT_TRUE(node) << xml;
  return node;
}

// ---- ParseS3Error ----

TEST(S3XmlTest, ParseS3ErrorReadsCodeAndMessage) {
  S3ErrorBody error = ParseS3Error(kError);
  EXPECT_EQ(error.code, "NoSuchKey");
  EXPECT_EQ(error.message, "The resource you requested does not exist");

  S3ErrorBody slow = ParseS3Error("<Error><Code>SlowDown</Code><Message>Please reduce &amp; retry</Message></Error>");
  EXPECT_EQ(slow.code, "SlowDown");
  EXPECT_EQ(slow.message, "Please reduce & retry");

  S3ErrorBody code_only = ParseS3Error("<Error><Code>PreconditionFailed</Code></Error>");
  EXPECT_EQ(code_only.code, "PreconditionFailed");
  EXPECT_EQ(code_only.message, "");
}

TEST(S3XmlTest, ParseS3ErrorOnForeignBodiesGivesEmptyFields) {
  for (std::string body : {std::string(), std::string("not xml at all"), std::string("<html><body>502 Bad Gateway"),
                           std::string("<Error><Code>Trunc"), std::string("{\"code\":\"NoSuchKey\"}"),
                           std::string("<ListBucketResult><Code>X</Code></ListBucketResult>"),
                           std::string("\0\0\0\0", 4)}) {
    S3ErrorBody error = ParseS3Error(body);
    EXPECT_EQ(error.code, "") << body;
    EXPECT_EQ(error.message, "") << body;
  }
}

// ---- ParseListObjectsV2 ----

TEST(S3XmlTest, ParseListObjectsV2ReadsContentsPrefixesAndToken) {
  auto page = ParseListObjectsV2(kListPage);
  ASSERT_TRUE(page.ok()) << page.status().message();
  ASSERT_EQ(page->contents.size(), 3u);
  EXPECT_EQ(page->contents[0].key, "snap/manifest.json");
  EXPECT_EQ(page->contents[0].size, 1234);
  EXPECT_EQ(page->contents[0].etag, "\"9b2cf535f27731c974343645a3985328\"");
  EXPECT_EQ(page->contents[1].key, "snap/a & b <c>.db");
  EXPECT_EQ(page->contents[1].size, 0);
  EXPECT_EQ(page->contents[1].etag, "\"d41d8cd98f00b204e9800998ecf8427e-3\"");
  EXPECT_EQ(page->contents[2].key, "snap/big.db");
  EXPECT_EQ(page->contents[2].size, int64_t{68719476736});  // beyond 32 bits
  EXPECT_EQ(page->contents[2].etag, "\"plain\"");
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{"snap/shards/", "snap/spool/"}));
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3XmlTest, ParseListObjectsV2LastAndEmptyPages) {
  auto last = ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>false</IsTruncated>"
      "<Contents><Key>k</Key><Size>7</Size></Contents></ListBucketResult>");
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_FALSE(last->truncated);
  EXPECT_EQ(last->next_continuation_token, "");
  ASSERT_EQ(last->contents.size(), 1u);
  EXPECT_EQ(last->contents[0].size, 7);
  EXPECT_EQ(last->contents[0].etag, "");

  auto empty = ParseListObjectsV2(
      R"(<?xml version="1.0"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
      "<Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(empty.ok()) << empty.status().message();
  EXPECT_TRUE(empty->contents.empty());
  EXPECT_TRUE(empty->common_prefixes.empty());
  EXPECT_FALSE(empty->truncated);
}

void ExpectCorruption(const Result<S3ListPage>& page, const std::string& body) {
  ASSERT_FALSE(page.ok()) << "accepted: " << body;
  EXPECT_EQ(page.status().code(), StatusCode::kCorruption) << page.status().message();
  EXPECT_FALSE(page.status().message().empty());
}

TEST(S3XmlTest, ParseListObjectsV2RejectsNonXml) {
  for (std::string body : {std::string(), std::string("<html>"), std::string("<ListBucketResult><Contents>"),
                           std::string("garbage \x01\x02"), std::string("<ListBucketResult></Wrong>")}) {
    ExpectCorruption(ParseListObjectsV2(body), body);
  }
}

TEST(S3XmlTest, ParseListObjectsV2RejectsWrongRoot) {
  std::string body = "<ListAllMyBucketsResult><Buckets/></ListAllMyBucketsResult>";
  auto page = ParseListObjectsV2(body);
  ExpectCorruption(page, body);
  EXPECT_NE(page.status().message().find("ListBucketResult"), std::string::npos) << page.status().message();
  ExpectCorruption(ParseListObjectsV2(kError), kError);
}

TEST(S3XmlTest, ParseListObjectsV2RejectsTruncatedWithoutToken) {
  for (std::string body : {std::string("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"),
                           std::string("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                       "<NextContinuationToken></NextContinuationToken></ListBucketResult>")}) {
    ExpectCorruption(ParseListObjectsV2(body), body);
  }
}

TEST(S3XmlTest, ParseListObjectsV2RejectsEntriesWithoutKeyOrSize) {
  for (std::string body : {
           std::string("<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>"),
           std::string("<ListBucketResult><Contents><Key>k</Key><Size></Size></Contents></ListBucketResult>"),
           std::string("<ListBucketResult><Contents><Key>k</Key><Size>-5</Size></Contents></ListBucketResult>"),
           std::string("<ListBucketResult><Contents><Size>5</Size></Contents></ListBucketResult>"),
           // One good entry does not excuse a bad one.
           std::string("<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents>"
                       "<Contents><Key>b</Key></Contents></ListBucketResult>"),
       }) {
    ExpectCorruption(ParseListObjectsV2(body), body);
  }
}

// ---- ParseInitiateMultipartUpload ----

TEST(S3XmlTest, ParseInitiateMultipartUploadReadsUploadId) {
  auto id = ParseInitiateMultipartUpload(kInitiate);
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(*id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");

  auto escaped = ParseInitiateMultipartUpload(
      "<InitiateMultipartUploadResult><UploadId>a&amp;b</UploadId></InitiateMultipartUploadResult>");
  ASSERT_TRUE(escaped.ok()) << escaped.status().message();
  EXPECT_EQ(*escaped, "a&b");
}

TEST(S3XmlTest, ParseInitiateMultipartUploadRejectsBadBodies) {
  for (std::string body : {std::string(), std::string("nope"), std::string(kError),
                           std::string("<InitiateMultipartUploadResult><Bucket>b</Bucket></InitiateMultipartUploadResult>"),
                           std::string("<InitiateMultipartUploadResult><UploadId></UploadId>"
                                       "</InitiateMultipartUploadResult>"),
                           std::string("<InitiateMultipartUploadResult><UploadId>abc")}) {
    auto id = ParseInitiateMultipartUpload(body);
    ASSERT_FALSE(id.ok()) << "accepted: " << body;
    EXPECT_EQ(id.status().code(), StatusCode::kCorruption) << body;
  }
}

// ---- CompleteMultipartUploadXml ----

TEST(S3XmlTest, CompleteMultipartUploadXmlRoundTrips) {
  std::vector<std::string> etags = {"\"a54357aff0632cce46d942af68356b38\"", "\"0c78aef83f66abc1fa1e8477f296d394\"",
                                    "weird & <etag> 'quoted' \"x\""};
  std::string xml = CompleteMultipartUploadXml(etags);
  pugi::xml_document doc;
  pugi::xml_node root = LoadRoot(doc, xml, "CompleteMultipartUpload");
  ASSERT_TRUE(root);

  std::vector<std::pair<std::string, std::string>> parts;
  for (pugi::xml_node part : root.children()) {
    EXPECT_STREQ(part.name(), "Part");
    parts.emplace_back(part.child_value("PartNumber"), part.child_value("ETag"));
  }
  ASSERT_EQ(parts.size(), 3u) << xml;
  for (size_t i = 0; i < parts.size(); ++i) {
    EXPECT_EQ(parts[i].first, std::to_string(i + 1));
    EXPECT_EQ(parts[i].second, etags[i]);
  }
  // The special characters are escaped, not written raw.
  EXPECT_EQ(xml.find("<etag>"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("weird & "), std::string::npos) << xml;
}

TEST(S3XmlTest, CompleteMultipartUploadXmlWithManyParts) {
  std::vector<std::string> etags;
  for (int i = 0; i < 10000; ++i) etags.push_back("\"etag" + std::to_string(i) + "\"");
  std::string xml = CompleteMultipartUploadXml(etags);
  pugi::xml_document doc;
  pugi::xml_node root = LoadRoot(doc, xml, "CompleteMultipartUpload");
  size_t n = 0;
  for (pugi::xml_node part : root.children("Part")) {
    ASSERT_EQ(part.child("PartNumber").text().as_ullong(), n + 1);
    ASSERT_EQ(std::string(part.child_value("ETag")), etags[n]);
    ++n;
  }
  EXPECT_EQ(n, etags.size());
}

// ---- DeleteObjectsXml ----

TEST(S3XmlTest, DeleteObjectsXmlRoundTripsAndEscapesKeys) {
  std::vector<std::string> keys = {"plain/key.db", "a & b", "<script>", "it's \"quoted\"", "caf\xC3\xA9/\xE6\x95\xB0",
                                   "x]]>y", " leading and trailing "};
  std::string xml = DeleteObjectsXml(keys);
  pugi::xml_document doc;
  pugi::xml_node root = LoadRoot(doc, xml, "Delete");
  ASSERT_TRUE(root);
  EXPECT_STREQ(root.child_value("Quiet"), "true");

  std::vector<std::string> parsed;
  for (pugi::xml_node object : root.children("Object")) parsed.emplace_back(object.child_value("Key"));
  EXPECT_EQ(parsed, keys) << xml;
  EXPECT_EQ(xml.find("<script>"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("a & b"), std::string::npos) << xml;
}

TEST(S3XmlTest, DeleteObjectsXmlWithNoKeys) {
  std::string xml = DeleteObjectsXml({});
  pugi::xml_document doc;
  pugi::xml_node root = LoadRoot(doc, xml, "Delete");
  ASSERT_TRUE(root);
  EXPECT_STREQ(root.child_value("Quiet"), "true");
  EXPECT_FALSE(root.child("Object"));
}

// ---- ParseDeleteResult ----

TEST(S3XmlTest, ParseDeleteResultListsOnlyFailures) {
  auto failures = ParseDeleteResult(kDeleteWithErrors);
  ASSERT_TRUE(failures.ok()) << failures.status().message();
  ASSERT_EQ(failures->size(), 2u);
  EXPECT_EQ((*failures)[0].key, "b & c");
  EXPECT_EQ((*failures)[0].code, "AccessDenied");
  EXPECT_EQ((*failures)[0].message, "Access Denied");
  EXPECT_EQ((*failures)[1].key, "d");
  EXPECT_EQ((*failures)[1].code, "InternalError");
  EXPECT_EQ((*failures)[1].message, "We encountered an internal error.");
}

TEST(S3XmlTest, ParseDeleteResultWithoutErrors) {
  for (std::string body : {std::string("<DeleteResult/>"),
                           std::string(R"(<?xml version="1.0" encoding="UTF-8"?>)"
                                       R"(<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">)"
                                       "<Deleted><Key>a</Key></Deleted><Deleted><Key>b</Key></Deleted>"
                                       "</DeleteResult>")}) {
    auto failures = ParseDeleteResult(body);
    ASSERT_TRUE(failures.ok()) << failures.status().message();
    EXPECT_TRUE(failures->empty()) << body;
  }
}

TEST(S3XmlTest, ParseDeleteResultRejectsBadBodies) {
  // An <Error> document in a 200 answer is not a DeleteResult.
  for (std::string body : {std::string(), std::string("<<<"), std::string(kError),
                           std::string("<DeleteResult><Error><Key>a</Key>")}) {
    auto failures = ParseDeleteResult(body);
    ASSERT_FALSE(failures.ok()) << "accepted: " << body;
    EXPECT_EQ(failures.status().code(), StatusCode::kCorruption);
  }
}

// ---- Hostile bodies ----

// Random bytes, random XML-ish tokens, truncations and byte flips of valid documents: every parser
// must return (a value or Corruption) without crashing.
TEST(S3XmlTest, ParsersSurviveRandomAndTruncatedBodies) {
  std::mt19937 rng(20240524);
  const std::vector<std::string> valid = {kListPage, kInitiate, kDeleteWithErrors, kError};
  const std::vector<std::string> tokens = {"<",         ">",         "</",       "/>",          "<?xml ",
                                           "?>",        "<!--",      "-->",      "<![CDATA[",   "]]>",
                                           "&amp;",     "&#x0;",     "&#65;",    "&bogus;",     "\"",
                                           "<Contents>", "<Key>",    "<Size>",   "</Size>",     "<IsTruncated>true",
                                           "<Error>",   "<Code>",    "<!DOCTYPE x [<!ENTITY e \"ee\">]>",
                                           "<ListBucketResult>",     "<DeleteResult>", "\xEF\xBB\xBF", "\xFF\xFE",
                                           std::string("\0", 1), "99999999999999999999999", "-1"};
  auto check = [](const std::string& body) {
    (void)ParseS3Error(body);
    auto page = ParseListObjectsV2(body);
    if (!page.ok()) {
      EXPECT_EQ(page.status().code(), StatusCode::kCorruption);
    } else {
      for (const auto& entry : page->contents) {
        EXPECT_FALSE(entry.key.empty());
        EXPECT_GE(entry.size, 0);
      }
      if (page->truncated) EXPECT_FALSE(page->next_continuation_token.empty());
    }
    auto id = ParseInitiateMultipartUpload(body);
    if (!id.ok()) {
      EXPECT_EQ(id.status().code(), StatusCode::kCorruption);
    } else {
      EXPECT_FALSE(id->empty());
    }
    auto failures = ParseDeleteResult(body);
    if (!failures.ok()) EXPECT_EQ(failures.status().code(), StatusCode::kCorruption);
  };

  for (int i = 0; i < 2000; ++i) {
    std::string body;
    switch (i % 4) {
      case 0: {  // random bytes
        body.resize(rng() % 512);
        for (char& c : body) c = static_cast<char>(rng() & 0xFF);
        break;
      }
      case 1: {  // a valid document cut short
        const std::string& doc = valid[rng() % valid.size()];
        body = doc.substr(0, rng() % (doc.size() + 1));
        break;
      }
      case 2: {  // a valid document with some bytes flipped
        body = valid[rng() % valid.size()];
        int flips = 1 + static_cast<int>(rng() % 8);
        for (int f = 0; f < flips; ++f) body[rng() % body.size()] = static_cast<char>(rng() & 0xFF);
        break;
      }
      default: {  // a soup of XML tokens
        int n = static_cast<int>(rng() % 40);
        for (int t = 0; t < n; ++t) body += tokens[rng() % tokens.size()];
        break;
      }
    }
    check(body);
    if (HasFailure()) {
      ADD_FAILURE() << "body #" << i << " (" << body.size() << " bytes)";
      return;
    }
  }
}

TEST(S3XmlTest, ParsersSurviveDeepNesting) {
  std::string body = "<ListBucketResult>";
  for (int i = 0; i < 100000; ++i) body += "<a>";
  for (int i = 0; i < 100000; ++i) body += "</a>";
  body += "</ListBucketResult>";
  auto page = ParseListObjectsV2(body);
  ASSERT_TRUE(page.ok()) << page.status().message();
  EXPECT_TRUE(page->contents.empty());
  EXPECT_EQ(ParseS3Error(body).code, "");
  EXPECT_FALSE(ParseDeleteResult(body).ok());
}

}  // namespace
}  // namespace shardvec
