#include "store/s3/aws_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "common/status_macros.h"
#include "common/text_util.h"
#include "store/s3/aws_profile.h"
#include "store/s3/credential_chain.h"
#include "store/s3/http_transport.h"

namespace shardvec {

namespace {

using Section = IniSection;

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
    const std::string trimmed = TrimSpace(line);
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
      if (eq == std::string::npos || TrimSpace(trimmed.substr(0, eq)).empty()) {
        return malformed(fmt::format("expected 'name = value' in the block under '{}'", key));
      }
      (*section)[key + "." + AsciiLower(TrimSpace(trimmed.substr(0, eq)))] = TrimSpace(trimmed.substr(eq + 1));
      continue;
    }

    key.clear();
    if (trimmed[0] == '[') {
      const size_t close = trimmed.rfind(']');
      section_name = close == std::string::npos ? "" : TrimSpace(trimmed.substr(1, close - 1));
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
    std::string name = AsciiLower(TrimSpace(trimmed.substr(0, eq)));
    if (name.empty()) return malformed("expected 'name = value' but the name is empty");
    if (section->count(name) != 0) {
      return malformed(fmt::format("'{}' appears a second time in [{}]", name, section_name));
    }
    std::string value = TrimSpace(trimmed.substr(eq + 1));
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

  CredentialChainInput chain;
  chain.options = &options;
  chain.env = &env;
  chain.profile = profile;
  chain.explicit_profile = option_profile;
  chain.credentials_file = &credentials_file;
  chain.config_file = &config_file;
  chain.home = home;
  chain.region = settings.region;
  chain.bucket = std::string(bucket);
  chain.transport = std::make_shared<CurlTransport>(TlsOptions{options.verify_tls, settings.ca_bundle});
  ASSIGN_OR_RETURN(settings.credential_provider, ResolveCredentialChain(chain));
  settings.credentials_source = settings.credential_provider->source();
  settings.credentials = settings.credential_provider->Snapshot();
  return settings;
}

}  // namespace shardvec
