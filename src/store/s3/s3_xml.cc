#include "store/s3/s3_xml.h"

#include <pugixml.hpp>

#include <sstream>

#include <fmt/format.h>

namespace shardvec {
namespace {

Result<pugi::xml_node> ParseRoot(pugi::xml_document& doc, std::string_view body, const char* root_name) {
  pugi::xml_parse_result parsed = doc.load_buffer(body.data(), body.size());
  if (!parsed) {
    return S3BadResponse(fmt::format("S3 {} response is not XML ({} at byte {})", root_name,
                                     parsed.description(), parsed.offset));
  }
  pugi::xml_node root = doc.child(root_name);
  if (!root) {
    return S3BadResponse(fmt::format("S3 response has no <{}> element (root is <{}>)", root_name,
                                     doc.first_child().name()));
  }
  return root;
}

std::string Print(const pugi::xml_document& doc) {
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw);
  return out.str();
}

}  // namespace

Status S3BadResponse(std::string message) {
  return Status::Corruption(std::move(message)).WithKind(ErrorKind::kStoreResponse);
}

S3ErrorBody ParseS3Error(std::string_view body) {
  S3ErrorBody error;
  pugi::xml_document doc;
  if (body.empty() || !doc.load_buffer(body.data(), body.size())) return error;
  pugi::xml_node root = doc.child("Error");
  if (!root) root = doc.child("ErrorResponse").child("Error");  // STS wraps its error
  if (!root) return error;
  error.code = root.child_value("Code");
  error.message = root.child_value("Message");
  return error;
}

Result<S3ListPage> ParseListObjectsV2(std::string_view body) {
  pugi::xml_document doc;
  auto root = ParseRoot(doc, body, "ListBucketResult");
  if (!root.ok()) return root.status();
  S3ListPage page;
  for (pugi::xml_node item : root->children("Contents")) {
    S3ListPage::Entry entry;
    entry.key = item.child_value("Key");
    entry.size = item.child("Size").text().as_llong(-1);
    entry.etag = item.child_value("ETag");
    if (entry.key.empty() || entry.size < 0) {
      return S3BadResponse("S3 ListObjectsV2 response has an entry without a Key or Size");
    }
    page.contents.push_back(std::move(entry));
  }
  for (pugi::xml_node item : root->children("CommonPrefixes")) {
    page.common_prefixes.emplace_back(item.child_value("Prefix"));
  }
  page.truncated = std::string_view(root->child_value("IsTruncated")) == "true";
  page.next_continuation_token = root->child_value("NextContinuationToken");
  if (page.truncated && page.next_continuation_token.empty()) {
    return S3BadResponse("S3 ListObjectsV2 response is truncated but has no NextContinuationToken");
  }
  return page;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view body) {
  pugi::xml_document doc;
  auto root = ParseRoot(doc, body, "InitiateMultipartUploadResult");
  if (!root.ok()) return root.status();
  std::string upload_id = root->child_value("UploadId");
  if (upload_id.empty()) return S3BadResponse("S3 CreateMultipartUpload response has no UploadId");
  return upload_id;
}

std::string CompleteMultipartUploadXml(const std::vector<std::string>& part_etags) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("CompleteMultipartUpload");
  for (size_t i = 0; i < part_etags.size(); ++i) {
    pugi::xml_node part = root.append_child("Part");
    part.append_child("PartNumber").text().set(static_cast<unsigned long long>(i + 1));
    part.append_child("ETag").text().set(part_etags[i].c_str());
  }
  return Print(doc);
}

std::string DeleteObjectsXml(const std::vector<std::string>& keys) {
  pugi::xml_document doc;
  pugi::xml_node root = doc.append_child("Delete");
  root.append_child("Quiet").text().set("true");
  for (const std::string& key : keys) {
    root.append_child("Object").append_child("Key").text().set(key.c_str());
  }
  return Print(doc);
}

Result<std::vector<S3DeleteFailure>> ParseDeleteResult(std::string_view body) {
  pugi::xml_document doc;
  auto root = ParseRoot(doc, body, "DeleteResult");
  if (!root.ok()) return root.status();
  std::vector<S3DeleteFailure> failures;
  for (pugi::xml_node item : root->children("Error")) {
    failures.push_back({item.child_value("Key"), item.child_value("Code"), item.child_value("Message")});
  }
  return failures;
}

}  // namespace shardvec
