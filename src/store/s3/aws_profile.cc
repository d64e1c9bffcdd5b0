#include "store/s3/aws_profile.h"

#include <fmt/format.h>

#include <cctype>
#include <utility>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/text_util.h"
#include "common/url_redact.h"
#include "shardvec/limits.h"

namespace shardvec {

std::string TrimSpace(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return "";
  const size_t end = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(begin, end - begin + 1));
}

// botocore treats an empty variable like an unset one.
std::optional<std::string> EnvValue(const EnvLookup& env, const std::string& name) {
  std::optional<std::string> value = env(name);
  if (!value || value->empty()) return std::nullopt;
  return value;
}

std::optional<std::string> SectionValue(const IniSection* section, const std::string& key) {
  if (section == nullptr) return std::nullopt;
  auto it = section->find(key);
  if (it == section->end() || it->second.empty()) return std::nullopt;
  return it->second;
}

Result<IniFile> LoadIniFile(std::string path, const std::optional<std::string>& home) {
  const bool needs_home = path == "~" || path.rfind("~/", 0) == 0;
  if (needs_home && !home) return IniFile{std::move(path), {}};  // no HOME, so no default files
  if (needs_home) path = *home + path.substr(1);
  auto text = ReadWholeFile(path, kMaxConfigFileBytes);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return IniFile{std::move(path), {}};
    return text.status();
  }
  ASSIGN_OR_RETURN(IniSections sections, ParseAwsIni(*text, path));
  return IniFile{std::move(path), std::move(sections)};
}

const IniSection* ConfigProfileSection(const IniFile& file, const std::string& profile) {
  if (const IniSection* section = ConfigNamedSection(file, "profile", profile)) return section;
  if (profile == "default") {
    auto it = file.sections.find("default");
    if (it != file.sections.end()) return &it->second;
  }
  return nullptr;
}

const IniSection* CredentialsProfileSection(const IniFile& file, const std::string& profile) {
  auto it = file.sections.find(profile);
  return it == file.sections.end() ? nullptr : &it->second;
}

const IniSection* ConfigNamedSection(const IniFile& file, std::string_view kind, const std::string& name) {
  for (const auto& [header, keys] : file.sections) {
    if (header.size() <= kind.size() || header.compare(0, kind.size(), kind) != 0 ||
        !std::isspace(static_cast<unsigned char>(header[kind.size()]))) {
      continue;
    }
    std::string rest = TrimSpace(std::string_view(header).substr(kind.size()));
    if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') rest = rest.substr(1, rest.size() - 2);
    if (rest == name) return &keys;
  }
  return nullptr;
}

std::optional<Candidate> FirstSet(std::initializer_list<Candidate> candidates) {
  for (const Candidate& c : candidates) {
    if (c.value && !c.value->empty()) return c;
  }
  return std::nullopt;
}

Result<std::string> NormalizeEndpoint(const Candidate& endpoint) {
  const std::string& url = *endpoint.value;
  const std::string shown = RedactUrlUserinfo(url);  // never print credentials typed into it
  // SigV4 signs every request with the access key; a user:password in the URL would only reach the
  // Host header and every message, so it is refused rather than silently carried.
  if (UrlHasUserinfo(url)) {
    return Status::InvalidArgument(fmt::format(
        "{} '{}' must not carry credentials (user:password@); give them as an access key and secret "
        "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or StoreOptions)",
        endpoint.source, shown));
  }
  const size_t scheme_end = url.find("://");
  const std::string scheme = scheme_end == std::string::npos ? "" : AsciiLower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") {
    return Status::InvalidArgument(
        fmt::format("{} '{}' must start with http:// or https://", endpoint.source, shown));
  }
  std::string host = url.substr(scheme_end + 3);
  while (!host.empty() && host.back() == '/') host.pop_back();
  // Requests are signed against host[:port]; a path here would be silently dropped or mis-signed.
  if (host.empty() || host.find_first_of("/?#") != std::string::npos) {
    return Status::InvalidArgument(
        fmt::format("{} '{}' must be scheme://host[:port] with no path", endpoint.source, shown));
  }
  return scheme + "://" + host;
}

}  // namespace shardvec
