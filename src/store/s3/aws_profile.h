// Lookups in the AWS shared config and credentials files and in the environment, shared by the S3
// settings (aws_config) and the credential chain (credential_chain): which file a profile lives in,
// the first of several candidate settings, and endpoint URL checks.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "shardvec/status.h"
#include "store/s3/aws_config.h"

namespace shardvec {

using IniSection = std::map<std::string, std::string>;

struct IniFile {
  std::string path;  // as shown in messages
  IniSections sections;
};

// botocore treats an empty variable like an unset one.
std::optional<std::string> EnvValue(const EnvLookup& env, const std::string& name);
// A non-empty value of `key` in `section` (which may be null).
std::optional<std::string> SectionValue(const IniSection* section, const std::string& key);

// A missing file is simply empty; an unreadable or malformed one is an error worth reporting.
// A leading "~" is replaced by `home` (no home: no default files).
Result<IniFile> LoadIniFile(std::string path, const std::optional<std::string>& home);

// In the config file a profile is "[profile name]" (botocore splits on whitespace and allows quotes);
// plain "[default]" also names the default profile, and "[profile default]" wins over it.
const IniSection* ConfigProfileSection(const IniFile& file, const std::string& profile);
// In the credentials file a profile is just "[name]".
const IniSection* CredentialsProfileSection(const IniFile& file, const std::string& profile);
// A named non-profile section of the config file, like "[sso-session name]".
const IniSection* ConfigNamedSection(const IniFile& file, std::string_view kind, const std::string& name);

// Surrounding blanks (spaces, tabs, CR, LF) removed.
std::string TrimSpace(std::string_view s);

struct Candidate {
  std::optional<std::string> value;
  std::string source;  // the field or variable it came from, for messages
};

// The first candidate that is set, in precedence order.
std::optional<Candidate> FirstSet(std::initializer_list<Candidate> candidates);

// "scheme://host[:port]" from an endpoint setting; refuses user:password@, other schemes and paths,
// naming the setting it came from.
Result<std::string> NormalizeEndpoint(const Candidate& endpoint);

}  // namespace shardvec
