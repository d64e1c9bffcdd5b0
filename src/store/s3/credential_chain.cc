#include "store/s3/credential_chain.h"

#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <tuple>
#include <set>
#include <utility>

#include "common/file_util.h"
#include "common/status_macros.h"
#include "shardvec/limits.h"
#include "store/s3/metadata_credentials.h"
#include "store/s3/process_credentials.h"
#include "store/s3/sso_credentials.h"
#include "store/s3/sts_client.h"

namespace shardvec {

namespace {

// Profiles naming each other through source_profile stop after this many hops (the AWS CLI has no
// fixed limit, but a loop is caught first by name).
constexpr int kMaxSourceProfileDepth = 16;

// A key pair from two settings. Half a pair is an error (`half_set` words it from which half is there),
// as in botocore, rather than a silent fall-through to some other source.
Result<std::optional<AwsCredentials>> KeyPair(std::optional<std::string> id, std::optional<std::string> secret,
                                              std::optional<std::string> token,
                                              const std::function<std::string(bool has_id)>& half_set) {
  if (!id && !secret) return std::optional<AwsCredentials>();
  if (!id || !secret) return Status::InvalidArgument(half_set(id.has_value()));
  return std::optional<AwsCredentials>(AwsCredentials{*id, *secret, token.value_or("")});
}

// Static keys from one profile section.
Result<std::optional<AwsCredentials>> KeysFromProfile(const IniSection* section, const std::string& profile,
                                                      const std::string& path) {
  return KeyPair(SectionValue(section, "aws_access_key_id"), SectionValue(section, "aws_secret_access_key"),
                 SectionValue(section, "aws_session_token"), [&](bool has_id) {
                   return fmt::format("AWS profile '{}' in {} sets {} but not {}; set both", profile, path,
                                      has_id ? "aws_access_key_id" : "aws_secret_access_key",
                                      has_id ? "aws_secret_access_key" : "aws_access_key_id");
                 });
}

// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN].
Result<std::optional<AwsCredentials>> KeysFromEnvironment(const EnvLookup& env) {
  return KeyPair(EnvValue(env, "AWS_ACCESS_KEY_ID"), EnvValue(env, "AWS_SECRET_ACCESS_KEY"),
                 EnvValue(env, "AWS_SESSION_TOKEN"), [](bool has_id) {
                   return fmt::format("{} is set but {} is not; set both or neither",
                                      has_id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
                                      has_id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
                 });
}

std::string DefaultSessionName() {
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return fmt::format("shardvec-session-{}", seconds);
}

class ChainResolver {
 public:
  explicit ChainResolver(const CredentialChainInput& in) : in_(in), env_(*in.env) {}

  Result<std::shared_ptr<CredentialProvider>> Resolve() {
    const StoreOptions& options = *in_.options;
    if (!options.access_key_id.empty() || !options.secret_access_key.empty() || !options.session_token.empty()) {
      for (const auto& [field, value] : {std::pair{"access_key_id", &options.access_key_id},
                                         std::pair{"secret_access_key", &options.secret_access_key}}) {
        if (value->empty()) {
          return Status::InvalidArgument(fmt::format(
              "StoreOptions.{} is empty; explicit credentials need access_key_id and secret_access_key", field));
        }
      }
      return CredentialProvider::Static(
          "StoreOptions", {options.access_key_id, options.secret_access_key, options.session_token});
    }
    if (!in_.explicit_profile) {
      ASSIGN_OR_RETURN(std::optional<AwsCredentials> keys, KeysFromEnvironment(env_));
      if (keys) return CredentialProvider::Static("environment (AWS_ACCESS_KEY_ID)", std::move(*keys));
    }
    std::set<std::string> visited;
    ASSIGN_OR_RETURN(std::shared_ptr<CredentialProvider> from_profile,
                     FromProfile(in_.profile, visited, /*top_level=*/true));
    if (from_profile) return from_profile;
    if (ContainerCredentialsConfigured(env_)) {
      EnvLookup env = env_;
      std::shared_ptr<HttpTransport> transport = in_.transport;
      return CredentialProvider::Start("ECS container credentials", [env, transport] {
        return FetchContainerCredentials(env, *transport);
      });
    }
    std::string imds_note = "EC2 instance metadata: turned off by AWS_EC2_METADATA_DISABLED";
    if (!InstanceMetadataDisabled(env_)) {
      auto from_imds = InstanceMetadata();
      if (from_imds.ok()) return from_imds;
      imds_note = from_imds.status().message();
    }
    return Status::InvalidArgument(fmt::format(
        "no AWS credentials found for s3://{}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a "
        "profile in {} (looked for profile '{}'; {})",
        in_.bucket, in_.credentials_file->path, in_.profile, imds_note));
  }

 private:
  struct Profile {
    std::string name;
    const IniSection* credentials = nullptr;
    const IniSection* config = nullptr;
    // A setting of the profile: the credentials file's value wins over the config file's (botocore merges so).
    std::optional<std::string> Get(const std::string& key) const {
      auto value = SectionValue(credentials, key);
      return value ? value : SectionValue(config, key);
    }
  };

  Profile Lookup(const std::string& name) const {
    return {name, CredentialsProfileSection(*in_.credentials_file, name), ConfigProfileSection(*in_.config_file, name)};
  }
  std::string Describe(const Profile& p) const { return fmt::format("AWS profile '{}'", p.name); }

  Result<std::shared_ptr<CredentialProvider>> InstanceMetadata() {
    EnvLookup env = env_;
    std::shared_ptr<HttpTransport> transport = in_.transport;
    return CredentialProvider::Start("EC2 instance metadata", [env, transport] {
      return FetchInstanceCredentials(env, *transport);
    });
  }

  Result<StsTarget> Sts(const Profile& p) const {
    return ResolveStsTarget(env_, p.config, fmt::format("profile '{}' of {}", p.name, in_.config_file->path),
                            in_.region, in_.transport);
  }

  // Settings every role takes (session name, external id, duration).
  Result<AssumeRoleRequest> RoleRequest(const Profile& p, std::string role_arn,
                                        std::optional<std::string> session_name) const {
    AssumeRoleRequest request;
    request.role_arn = std::move(role_arn);
    request.session_name = session_name ? *session_name : p.Get("role_session_name").value_or(DefaultSessionName());
    request.external_id = p.Get("external_id").value_or("");
    if (auto duration = p.Get("duration_seconds")) {
      char* end = nullptr;
      const long value = std::strtol(duration->c_str(), &end, 10);
      if (end == duration->c_str() || *end != '\0' || value < 900 || value > 43200) {
        return Status::InvalidArgument(fmt::format("{}: duration_seconds must be a whole number from 900 to 43200 (got '{}')",
                                                   Describe(p), *duration));
      }
      request.duration_seconds = static_cast<int>(value);
    }
    return request;
  }

  // The keys AssumeRole is signed with: source_profile's or credential_source's.
  Result<std::shared_ptr<CredentialProvider>> RoleSource(const Profile& p, std::set<std::string>& visited) {
    const auto source_profile = p.Get("source_profile");
    const auto credential_source = p.Get("credential_source");
    if (source_profile && credential_source) {
      return Status::InvalidArgument(
          fmt::format("{} sets both source_profile and credential_source for role_arn; keep one", Describe(p)));
    }
    if (credential_source) {
      if (*credential_source == "Environment") {
        ASSIGN_OR_RETURN(std::optional<AwsCredentials> keys, KeysFromEnvironment(env_));
        if (!keys) {
          return Status::InvalidArgument(fmt::format(
              "{}: credential_source = Environment but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set",
              Describe(p)));
        }
        return CredentialProvider::Static("environment (AWS_ACCESS_KEY_ID)", std::move(*keys));
      }
      if (*credential_source == "Ec2InstanceMetadata") return InstanceMetadata();
      if (*credential_source == "EcsContainer") {
        if (!ContainerCredentialsConfigured(env_)) {
          return Status::InvalidArgument(fmt::format(
              "{}: credential_source = EcsContainer but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/_FULL_URI are not set",
              Describe(p)));
        }
        EnvLookup env = env_;
        std::shared_ptr<HttpTransport> transport = in_.transport;
        return CredentialProvider::Start("ECS container credentials", [env, transport] {
          return FetchContainerCredentials(env, *transport);
        });
      }
      return Status::InvalidArgument(fmt::format(
          "{}: credential_source must be Environment, Ec2InstanceMetadata or EcsContainer (got '{}')", Describe(p),
          *credential_source));
    }
    if (*source_profile == p.name) {
      // A profile may sign its own role_arn with its static keys.
      ASSIGN_OR_RETURN(auto keys, KeysFromProfile(p.credentials ? p.credentials : p.config, p.name,
                                                  p.credentials ? in_.credentials_file->path : in_.config_file->path));
      if (!keys) {
        return Status::InvalidArgument(
            fmt::format("{} names itself as source_profile for role_arn but has no static keys", Describe(p)));
      }
      return CredentialProvider::Static(fmt::format("profile '{}'", p.name), std::move(*keys));
    }
    if (visited.count(*source_profile) != 0 || static_cast<int>(visited.size()) >= kMaxSourceProfileDepth) {
      return Status::InvalidArgument(fmt::format("{}: source_profile '{}' for role_arn leads back into a loop of profiles",
                                                 Describe(p), *source_profile));
    }
    const Profile source = Lookup(*source_profile);
    if (source.credentials == nullptr && source.config == nullptr) {
      return Status::InvalidArgument(fmt::format("{} sets role_arn with source_profile '{}', but profile '{}' is not in {} or {}",
                                                 Describe(p), *source_profile, *source_profile,
                                                 in_.credentials_file->path, in_.config_file->path));
    }
    ASSIGN_OR_RETURN(std::shared_ptr<CredentialProvider> provider, FromProfile(source.name, visited, false));
    if (!provider) {
      return Status::InvalidArgument(fmt::format("{} sets role_arn with source_profile '{}', which has no credentials",
                                                 Describe(p), *source_profile));
    }
    return provider;
  }

  Result<std::shared_ptr<CredentialProvider>> AssumeRole(const Profile& p, std::set<std::string>& visited) {
    if (p.Get("mfa_serial")) {
      return Status::InvalidArgument(fmt::format(
          "{} sets mfa_serial, which needs an interactive code; use temporary keys from `aws sts get-session-token`",
          Describe(p)));
    }
    ASSIGN_OR_RETURN(std::shared_ptr<CredentialProvider> source, RoleSource(p, visited));
    ASSIGN_OR_RETURN(StsTarget sts, Sts(p));
    ASSIGN_OR_RETURN(AssumeRoleRequest request, RoleRequest(p, *p.Get("role_arn"), std::nullopt));
    const std::string what = fmt::format("profile '{}' (role_arn {} via {})", p.name, request.role_arn, source->source());
    return CredentialProvider::Start(what, [source, sts, request, what]() -> Result<ExpiringCredentials> {
      ASSIGN_OR_RETURN(AwsCredentials keys, source->Current());
      return StsAssumeRole(sts, keys, request, what);
    });
  }

  // Web identity from the environment (top-level profile only) or the profile; nullptr when neither.
  Result<std::shared_ptr<CredentialProvider>> WebIdentity(const Profile& p, bool top_level) {
    const auto env_or_profile = [&](const char* variable, const char* key) -> std::optional<Candidate> {
      if (top_level) {
        if (auto value = EnvValue(env_, variable)) return Candidate{value, variable};
      }
      if (auto value = p.Get(key)) return Candidate{value, fmt::format("{} in profile '{}'", key, p.name)};
      return std::nullopt;
    };
    const auto token_file = env_or_profile("AWS_WEB_IDENTITY_TOKEN_FILE", "web_identity_token_file");
    if (!token_file) return std::shared_ptr<CredentialProvider>();
    const auto role_arn = env_or_profile("AWS_ROLE_ARN", "role_arn");
    if (!role_arn) {
      return Status::InvalidArgument(fmt::format("web identity: {} is set but no role to assume ({}or role_arn in profile '{}')",
                                                 token_file->source, top_level ? "AWS_ROLE_ARN, " : "", p.name));
    }
    std::optional<std::string> session = top_level ? EnvValue(env_, "AWS_ROLE_SESSION_NAME") : std::nullopt;
    ASSIGN_OR_RETURN(StsTarget sts, Sts(p));
    ASSIGN_OR_RETURN(AssumeRoleRequest request, RoleRequest(p, *role_arn->value, session));
    const std::string what = fmt::format("web identity ({} {}, role {})", token_file->source, *token_file->value,
                                         request.role_arn);
    const std::string path = *token_file->value;
    return CredentialProvider::Start(what, [sts, request, what, path]() -> Result<ExpiringCredentials> {
      // Read on every refresh: EKS rotates the projected token file.
      auto token = ReadWholeFile(path, kMaxConfigFileBytes);
      if (!token.ok()) return token.status().WithContext(fmt::format("{}: reading the token file", what));
      const std::string trimmed = TrimSpace(*token);
      if (trimmed.empty()) return Status::InvalidArgument(fmt::format("{}: the token file is empty", what));
      return StsAssumeRoleWithWebIdentity(sts, request, trimmed, what);
    });
  }

  Result<std::shared_ptr<CredentialProvider>> Sso(const Profile& p) {
    SsoProfile sso;
    sso.profile = p.name;
    const IniSection* settings = p.config;
    if (auto session = SectionValue(p.config, "sso_session")) {
      sso.session_name = *session;
      settings = ConfigNamedSection(*in_.config_file, "sso-session", *session);
      if (settings == nullptr) {
        return Status::InvalidArgument(fmt::format("{}: sso_session '{}' has no [sso-session {}] section in {}",
                                                   Describe(p), *session, *session, in_.config_file->path));
      }
    }
    for (const auto& [key, section, target] :
         {std::tuple{"sso_start_url", settings, &sso.start_url}, std::tuple{"sso_region", settings, &sso.region},
          std::tuple{"sso_account_id", p.config, &sso.account_id},
          std::tuple{"sso_role_name", p.config, &sso.role_name}}) {
      auto value = SectionValue(section, key);
      if (!value) {
        return Status::InvalidArgument(fmt::format("{}: SSO needs {} (in {})", Describe(p), key,
                                                   section == p.config ? "the profile" : "its [sso-session] section"));
      }
      *target = *value;
    }
    EnvLookup env = env_;
    std::optional<std::string> home = in_.home;
    std::shared_ptr<HttpTransport> transport = in_.transport;
    return CredentialProvider::Start(
        fmt::format("SSO profile '{}' (account {}, role {})", p.name, sso.account_id, sso.role_name),
        [sso, env, home, transport] { return FetchSsoCredentials(sso, env, home, *transport); });
  }

  // The provider a profile describes, or nullptr when it has no credential settings.
  Result<std::shared_ptr<CredentialProvider>> FromProfile(const std::string& name, std::set<std::string>& visited,
                                                          bool top_level) {
    visited.insert(name);
    const Profile p = Lookup(name);
    const bool has_role = p.Get("role_arn").has_value();
    if (has_role && (p.Get("source_profile") || p.Get("credential_source"))) return AssumeRole(p, visited);
    ASSIGN_OR_RETURN(std::shared_ptr<CredentialProvider> web, WebIdentity(p, top_level));
    if (web) return web;
    if (SectionValue(p.config, "sso_session") || SectionValue(p.config, "sso_start_url")) return Sso(p);
    ASSIGN_OR_RETURN(auto keys, KeysFromProfile(p.credentials, name, in_.credentials_file->path));
    if (keys) return CredentialProvider::Static(fmt::format("profile '{}' in {}", name, in_.credentials_file->path), *keys);
    if (auto command = p.Get("credential_process")) {
      const std::string what = fmt::format("profile '{}'", name);
      const std::string line = *command;
      return CredentialProvider::Start(what + " (credential_process)",
                                       [line, what] { return RunCredentialProcess(line, what); });
    }
    ASSIGN_OR_RETURN(keys, KeysFromProfile(p.config, name, in_.config_file->path));
    if (keys) return CredentialProvider::Static(fmt::format("profile '{}' in {}", name, in_.config_file->path), *keys);
    if (has_role) {
      return Status::InvalidArgument(fmt::format(
          "{} sets role_arn but not source_profile, credential_source or web_identity_token_file", Describe(p)));
    }
    return std::shared_ptr<CredentialProvider>();
  }

  const CredentialChainInput& in_;
  const EnvLookup& env_;
};

}  // namespace

Result<std::shared_ptr<CredentialProvider>> ResolveCredentialChain(const CredentialChainInput& input) {
  return ChainResolver(input).Resolve();
}

}  // namespace shardvec
