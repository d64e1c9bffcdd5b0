#include "store/s3/aws_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <utility>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "common/text_util.h"
#include "common/url_redact.h"
#include "shardvec/limits.h"

namespace shardvec {

namespace {

using Section = std::map<std::string, std::string>;

std::string Trim(std::string_view s) {
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

std::optional<std::string> SectionValue(const Section* section, const std::string& key) {
  if (section == nullptr) return std::nullopt;
  auto it = section->find(key);
  if (it == section->end() || it->second.empty()) return std::nullopt;
  return it->second;
}

struct IniFile {
  std::string path;  // as shown in messages
  IniSections sections;
};

// A missing file is simply empty; an unreadable or malformed one is an error worth reporting.
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

// In the config file a profile is "[profile name]" (botocore splits on whitespace and allows quotes);
// plain "[default]" also names the default profile, and "[profile default]" wins over it.
const Section* ConfigProfileSection(const IniFile& file, const std::string& profile) {
  for (const auto& [name, keys] : file.sections) {
    const bool is_profile = name.size() > 7 && name.rfind("profile", 0) == 0 &&
                            std::isspace(static_cast<unsigned char>(name[7]));
    if (!is_profile) continue;
    std::string rest = Trim(std::string_view(name).substr(7));
    if (rest.size() >= 2 && rest.front() == '"' && rest.back() == '"') {
      rest = rest.substr(1, rest.size() - 2);
    }
    if (rest == profile) return &keys;
  }
  if (profile == "default") {
    auto it = file.sections.find("default");
    if (it != file.sections.end()) return &it->second;
  }
  return nullptr;
}

// In the credentials file a profile is just "[name]".
const Section* CredentialsProfileSection(const IniFile& file, const std::string& profile) {
  auto it = file.sections.find(profile);
  return it == file.sections.end() ? nullptr : &it->second;
}

// Static keys from one profile section. Half a key pair is an error, as in botocore, rather than a
// silent fall-through to some other source.
Result<std::optional<AwsCredentials>> KeysFromProfile(const Section* section, const std::string& profile,
                                                      const std::string& path) {
  const auto id = SectionValue(section, "aws_access_key_id");
  const auto secret = SectionValue(section, "aws_secret_access_key");
  if (!id && !secret) return std::optional<AwsCredentials>();
  if (!id || !secret) {
    const char* have = id ? "aws_access_key_id" : "aws_secret_access_key";
    const char* missing = id ? "aws_secret_access_key" : "aws_access_key_id";
    return Status::InvalidArgument(fmt::format("AWS profile '{}' in {} sets {} but not {}; set both",
                                               profile, path, have, missing));
  }
  return std::optional<AwsCredentials>(
      AwsCredentials{*id, *secret, SectionValue(section, "aws_session_token").value_or("")});
}

// Profiles that get keys some other way (assume-role, SSO, a helper program) are not supported; naming
// the key turns a puzzling "no credentials" into an actionable message.
std::optional<std::string> UnsupportedCredentialKey(const Section* section) {
  for (const char* key : {"role_arn", "credential_process", "sso_session", "sso_start_url",
                          "web_identity_token_file"}) {
    if (SectionValue(section, key)) return key;
  }
  return std::nullopt;
}

struct Candidate {
  std::optional<std::string> value;
  std::string source;  // the field or variable it came from, for messages
};

// The first candidate that is set, in precedence order.
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

// Virtual-hosted addressing puts the bucket in a DNS name (and a TLS wildcard certificate), so only
// lower-case letters, digits and inner hyphens are safe there.
bool IsDnsCompatible(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  if (bucket.front() == '-' || bucket.back() == '-') return false;
  return std::all_of(bucket.begin(), bucket.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

}  // namespace

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

// Mirrors configparser as botocore uses it: a line indented deeper than the key above it continues
// that key, and a key with an empty value followed by such lines is a nested block of settings.
Result<IniSections> ParseAwsIni(std::string_view text, std::string_view file_name_for_errors) {
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.remove_prefix(3);  // a BOM from Windows editors
  IniSections sections;
  Section* section = nullptr;
  std::string section_name;
  std::string key;  // the last key in the current section, which indented lines continue
  size_t key_indent = 0;
  bool nested = false;
  int line_number = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    const std::string trimmed = Trim(line);
    if (trimmed.empty() || trimmed[0] == '#' || trimmed[0] == ';') continue;
    // Error messages name the line, never its text: it may hold a secret.
    auto malformed = [&](std::string_view what) {
      return Status::InvalidArgument(
          fmt::format("{} line {}: {}", file_name_for_errors, line_number, what));
    };
    const size_t indent = line.find_first_not_of(" \t");

    if (section != nullptr && !key.empty() && indent > key_indent) {
      if (!nested) {
        (*section)[key] += "\n" + trimmed;
        continue;
      }
      const size_t eq = trimmed.find('=');
      if (eq == std::string::npos || Trim(trimmed.substr(0, eq)).empty()) {
        return malformed(fmt::format("expected 'name = value' in the block under '{}'", key));
      }
      (*section)[key + "." + AsciiLower(Trim(trimmed.substr(0, eq)))] = Trim(trimmed.substr(eq + 1));
      continue;
    }

    key.clear();
    if (trimmed[0] == '[') {
      const size_t close = trimmed.rfind(']');
      section_name = close == std::string::npos ? "" : Trim(trimmed.substr(1, close - 1));
      if (section_name.empty()) return malformed("expected a section header like [name]");
      // configparser (strict) rejects repeats, so the AWS CLI would too.
      if (sections.count(section_name) != 0) {
        return malformed(fmt::format("section [{}] appears a second time", section_name));
      }
      section = &sections[section_name];
      continue;
    }
    if (section == nullptr) return malformed("expected a [section] header before any setting");
    const size_t eq = trimmed.find('=');
    if (eq == std::string::npos) return malformed("expected 'name = value'");
    std::string name = AsciiLower(Trim(trimmed.substr(0, eq)));
    if (name.empty()) return malformed("expected 'name = value' but the name is empty");
    if (section->count(name) != 0) {
      return malformed(fmt::format("'{}' appears a second time in [{}]", name, section_name));
    }
    std::string value = Trim(trimmed.substr(eq + 1));
    nested = value.empty();
    key_indent = indent;
    (*section)[name] = std::move(value);
    key = std::move(name);
  }
  return sections;
}

Result<S3Settings> ResolveS3Settings(const StoreOptions& options, std::string_view bucket,
                                     const EnvLookup& env) {
  // An explicit profile also turns off environment keys (botocore does the same); AWS_PROFILE does not.
  const bool option_profile = !options.profile.empty();
  const std::optional<std::string> env_profile = EnvValue(env, "AWS_PROFILE");
  const std::string profile = option_profile ? options.profile : env_profile.value_or("default");

  const std::optional<std::string> home = EnvValue(env, "HOME");
  const std::string credentials_path =
      EnvValue(env, "AWS_SHARED_CREDENTIALS_FILE").value_or("~/.aws/credentials");
  const std::string config_path = EnvValue(env, "AWS_CONFIG_FILE").value_or("~/.aws/config");
  ASSIGN_OR_RETURN(IniFile credentials_file, LoadIniFile(credentials_path, home));
  ASSIGN_OR_RETURN(IniFile config_file, LoadIniFile(config_path, home));
  const Section* credentials_section = CredentialsProfileSection(credentials_file, profile);
  const Section* config_section = ConfigProfileSection(config_file, profile);
  if ((option_profile || env_profile) && credentials_section == nullptr && config_section == nullptr) {
    return Status::InvalidArgument(fmt::format("AWS profile '{}' (from {}) is not in {} or {}", profile,
                                               option_profile ? "StoreOptions.profile" : "AWS_PROFILE",
                                               credentials_file.path, config_file.path));
  }

  S3Settings settings;
  const bool options_have_keys = !options.access_key_id.empty() || !options.secret_access_key.empty() ||
                                 !options.session_token.empty();
  const auto env_id = EnvValue(env, "AWS_ACCESS_KEY_ID");
  const auto env_secret = EnvValue(env, "AWS_SECRET_ACCESS_KEY");
  if (options_have_keys) {
    for (const auto& [field, value] : {std::pair{"access_key_id", &options.access_key_id},
                                       std::pair{"secret_access_key", &options.secret_access_key}}) {
      if (value->empty()) {
        return Status::InvalidArgument(fmt::format(
            "StoreOptions.{} is empty; explicit credentials need access_key_id and secret_access_key",
            field));
      }
    }
    settings.credentials = {options.access_key_id, options.secret_access_key, options.session_token};
    settings.credentials_source = "StoreOptions";
  } else if (!option_profile && (env_id || env_secret)) {
    if (!env_id || !env_secret) {
      const char* have = env_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY";
      const char* missing = env_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID";
      return Status::InvalidArgument(
          fmt::format("{} is set but {} is not; set both or neither", have, missing));
    }
    settings.credentials = {*env_id, *env_secret, EnvValue(env, "AWS_SESSION_TOKEN").value_or("")};
    settings.credentials_source = "environment (AWS_ACCESS_KEY_ID)";
  } else {
    for (const auto& [section, file] : {std::pair{credentials_section, &credentials_file},
                                        std::pair{config_section, &config_file}}) {
      ASSIGN_OR_RETURN(std::optional<AwsCredentials> keys,
                       KeysFromProfile(section, profile, file->path));
      if (keys) {
        settings.credentials = std::move(*keys);
        settings.credentials_source = fmt::format("profile '{}' in {}", profile, file->path);
        break;
      }
    }
    if (settings.credentials_source.empty()) {
      std::string hint = fmt::format("looked for profile '{}'", profile);
      for (const Section* section : {credentials_section, config_section}) {
        if (auto key = UnsupportedCredentialKey(section)) {
          hint = fmt::format("profile '{}' uses {}, which shardvec does not support; give it static keys",
                             profile, *key);
          break;
        }
      }
      return Status::InvalidArgument(fmt::format(
          "no AWS credentials found for s3://{}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a "
          "profile in {} ({})",
          bucket, credentials_file.path, hint));
    }
  }

  const auto config_source = [&](std::string_view key) {
    return fmt::format("{} in profile '{}' of {}", key, profile, config_file.path);
  };
  const auto region = FirstSet({
      {options.region, "StoreOptions.region"},
      {EnvValue(env, "AWS_REGION"), "AWS_REGION"},
      {EnvValue(env, "AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION"},
      {SectionValue(config_section, "region"), config_source("region")},
  });
  settings.region = region ? *region->value : "us-east-1";

  const auto endpoint = FirstSet({
      {options.endpoint_url, "StoreOptions.endpoint_url"},
      {EnvValue(env, "AWS_ENDPOINT_URL_S3"), "AWS_ENDPOINT_URL_S3"},
      {EnvValue(env, "AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"},
      {SectionValue(config_section, "s3.endpoint_url"), config_source("s3.endpoint_url")},
      {SectionValue(config_section, "endpoint_url"), config_source("endpoint_url")},
  });
  if (endpoint) {
    ASSIGN_OR_RETURN(settings.endpoint_url, NormalizeEndpoint(*endpoint));
  }

  // An empty option counts as "auto" so callers can pass through an unset flag.
  const std::string option_style = options.addressing_style == "auto" ? "" : options.addressing_style;
  const auto style = FirstSet({
      {option_style, "StoreOptions.addressing_style"},
      {SectionValue(config_section, "s3.addressing_style"), config_source("s3.addressing_style")},
  });
  if (style && *style->value != "auto") {
    if (*style->value != "path" && *style->value != "virtual") {
      return Status::InvalidArgument(fmt::format("{} must be auto, path or virtual (got '{}')",
                                                 style->source, *style->value));
    }
    settings.path_style = *style->value == "path";
  } else {
    // S3-compatible servers rarely have wildcard DNS for buckets, so a custom endpoint means path style.
    settings.path_style = !settings.endpoint_url.empty() || !IsDnsCompatible(bucket);
  }

  const auto ca_bundle = FirstSet({
      {options.ca_bundle, "StoreOptions.ca_bundle"},
      {EnvValue(env, "AWS_CA_BUNDLE"), "AWS_CA_BUNDLE"},
      {SectionValue(config_section, "ca_bundle"), config_source("ca_bundle")},
  });
  if (ca_bundle) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*ca_bundle->value, ec)) {
      return Status::InvalidArgument(
          fmt::format("{} '{}' is not a readable file", ca_bundle->source, *ca_bundle->value));
    }
    settings.ca_bundle = *ca_bundle->value;
  }
  return settings;
}

}  // namespace shardvec
