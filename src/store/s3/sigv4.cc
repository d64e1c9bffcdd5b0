#include "store/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>

#include <fmt/format.h>

#include "common/text_util.h"

namespace shardvec {
namespace {

std::string ToHex(const unsigned char* bytes, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xF];
  }
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

// SigV4 canonical header value: trimmed, inner runs of spaces collapsed to one.
std::string TrimSpaces(std::string_view s) {
  std::string out;
  for (char c : s) {
    const bool space = c == ' ' || c == '\t';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out.push_back(space ? ' ' : c);
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string UriEncode(std::string_view text, bool keep_slash) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string CanonicalQueryString(const HeaderList& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out += '&';
    out += name + "=" + value;
  }
  return out;
}

namespace {
std::string DigestHex(std::string_view data, const EVP_MD* md) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  return ToHex(out, len);
}
}  // namespace

std::string Sha256Hex(std::string_view data) { return DigestHex(data, EVP_sha256()); }

std::string Sha1Hex(std::string_view data) { return DigestHex(data, EVP_sha1()); }

std::string Md5Base64(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, digest, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), n);
}

std::string AmzDateNow() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[20];
  std::strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &utc);
  return buf;
}

HeaderList SignV4(const SignableRequest& request, const SigningKey& key, std::string_view region,
                  std::string_view service, std::string_view amz_date) {
  HeaderList added = {{"x-amz-date", std::string(amz_date)},
                      {"x-amz-content-sha256", request.payload_sha256}};
  if (!key.session_token.empty()) added.emplace_back("x-amz-security-token", key.session_token);

  // Every header we send is signed, so a proxy cannot alter conditions like If-Match unnoticed.
  std::vector<std::pair<std::string, std::string>> canonical = {{"host", request.host}};
  for (const auto& [name, value] : request.headers) canonical.emplace_back(AsciiLower(name), TrimSpaces(value));
  for (const auto& [name, value] : added) canonical.emplace_back(name, value);
  std::sort(canonical.begin(), canonical.end());

  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : canonical) {
    canonical_headers += name + ":" + value + "\n";
    if (!signed_headers.empty()) signed_headers += ';';
    signed_headers += name;
  }
  std::string canonical_request = fmt::format("{}\n{}\n{}\n{}\n{}\n{}", request.method, request.encoded_path,
                                              CanonicalQueryString(request.query), canonical_headers,
                                              signed_headers, request.payload_sha256);

  std::string_view date = amz_date.substr(0, 8);
  std::string scope = fmt::format("{}/{}/{}/aws4_request", date, region, service);
  std::string string_to_sign =
      fmt::format("AWS4-HMAC-SHA256\n{}\n{}\n{}", amz_date, scope, Sha256Hex(canonical_request));

  std::string k = HmacSha256("AWS4" + key.secret_access_key, date);
  k = HmacSha256(k, region);
  k = HmacSha256(k, service);
  k = HmacSha256(k, "aws4_request");
  std::string raw_signature = HmacSha256(k, string_to_sign);
  std::string signature = ToHex(reinterpret_cast<const unsigned char*>(raw_signature.data()),
                                raw_signature.size());

  added.emplace_back("Authorization",
                     fmt::format("AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}",
                                 key.access_key_id, scope, signed_headers, signature));
  return added;
}

}  // namespace shardvec
