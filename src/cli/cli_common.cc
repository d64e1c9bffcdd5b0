#include "cli/cli_common.h"

#include "cli/commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "shardvec/text.h"

namespace shardvec::cli {

namespace {

void PrintJsonError(std::string_view command, std::string_view code, std::string_view kind, std::string_view message,
                    int exit_code) {
  const nlohmann::json error = {{"error",
                                 {{"code", code},
                                  {"kind", kind},
                                  {"message", message},
                                  {"command", command},
                                  {"exit_code", exit_code}}}};
  std::fprintf(stderr, "%s\n", JsonText(error).c_str());
}

}  // namespace

bool& JsonErrors() {
  static bool on = false;
  return on;
}

int ReportUsageError(std::string_view command, std::string_view message) {
  if (JsonErrors()) {
    PrintJsonError(command, "Usage", "Usage", message, kExitUsage);
    return kExitUsage;
  }
  const std::string text = EscapeForDisplay(message);
  std::fprintf(stderr, "shardvec%s%.*s: error: %s\nRun with --help for more information.\n", command.empty() ? "" : " ",
               static_cast<int>(command.size()), command.data(), text.c_str());
  return kExitUsage;
}

std::string SizeText(int64_t bytes, bool raw) {
  if (raw) return fmt::format("{} bytes", bytes);
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024 && bytes > -1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  // 1023.95 KiB would print as "1024.0 KiB": the next unit reads better.
  while ((value >= 1023.95 || value <= -1023.95) && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  return fmt::format("{:.1f} {}", value, kUnits[unit]);
}

int ReportError(std::string_view command, const Status& status) {
  if (JsonErrors()) {
    PrintJsonError(command, StatusCodeName(status.code()), ErrorKindName(status.kind()), status.message(),
                   kExitError);
    return kExitError;
  }
  std::string message;
  std::string_view rest = status.message();
  while (true) {
    const size_t end = rest.find('\n');
    message += EscapeForDisplay(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    message += '\n';
    rest.remove_prefix(end + 1);
  }
  std::fprintf(stderr, "shardvec %.*s: error: %s\n", static_cast<int>(command.size()), command.data(),
               message.c_str());
  return kExitError;
}

std::string DisplayText(std::string_view text) { return EscapeForDisplay(text); }

std::string JsonText(const nlohmann::json& value) {
  return value.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}

void PrintJson(const nlohmann::json& value) { std::printf("%s\n", JsonText(value).c_str()); }

void AddStoreOption(CLI::App* cmd, std::string& store, StoreOptions& options) {
  cmd->add_option("--store", store, "Store prefix: a folder, file:///abs/path or s3://bucket/prefix")->required();
  AddS3Options(cmd, options, {{"--store", &store}});
}

void AddS3Options(CLI::App* cmd, StoreOptions& options, std::vector<NamedStore> stores) {
  cmd->add_option("--endpoint-url", options.endpoint_url,
                  "S3 endpoint, e.g. http://127.0.0.1:9000 (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, "
                  "the profile, then AWS)");
  cmd->add_option("--region", options.region, "S3 region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile)");
  cmd->add_option("--profile", options.profile, "AWS profile in ~/.aws/credentials and ~/.aws/config");
  cmd->add_option("--addressing-style", options.addressing_style, "S3 addressing: auto, path or virtual")
      ->check(CLI::IsMember({"auto", "path", "virtual"}));
  // The S3 flags take effect on s3:// stores only: with folder stores alone they are a usage error.
  cmd->parse_complete_callback([stores = std::move(stores), options = &options] {
    std::vector<std::string> folders;
    for (const auto& [name, store] : stores) {
      if (IsS3Prefix(*store)) return;
      folders.push_back(fmt::format("{} '{}'", name, *store));
    }
    std::vector<std::string> flags;
    for (std::string_view field : SetS3Options(*options)) {
      std::string flag = "--" + std::string(field);
      std::replace(flag.begin(), flag.end(), '_', '-');
      flags.push_back(std::move(flag));
    }
    if (flags.empty()) return;
    throw CLI::ValidationError(fmt::format("{} {} to s3:// stores only, and {} {}", fmt::join(flags, ", "),
                                           flags.size() == 1 ? "applies" : "apply", fmt::join(folders, " and "),
                                           folders.size() == 1 ? "is a folder" : "are folders"));
  });
}

void AddBytesFlag(CLI::App* cmd, bool& raw_bytes) {
  cmd->add_flag("--bytes", raw_bytes, "Print sizes as whole numbers of bytes (default: KiB, MiB, GiB)");
}

void AddManifestStoreOption(CLI::App* cmd, std::string& spec) {
  cmd->add_option("--manifest-store", spec,
                  "Where manifests and the current pointer live: a postgresql://user@host:port/db DSN (keep "
                  "the password in PGPASSWORD or ~/.pgpass); default: beside the shards in --store");
}

Result<std::shared_ptr<ManifestStore>> OpenCliManifestStore(const std::string& spec) {
  if (spec.empty()) return std::shared_ptr<ManifestStore>();
  auto opened = OpenManifestStore(spec, nullptr);
  if (!opened.ok()) return opened.status().WithContext("--manifest-store");
  return std::shared_ptr<ManifestStore>(std::move(opened).value());
}

std::string& MetricsFilePath() {
  static std::string path;
  return path;
}

std::shared_ptr<PrometheusCollector> CliMetrics() {
  static const std::shared_ptr<PrometheusCollector> collector = std::make_shared<PrometheusCollector>();
  return MetricsFilePath().empty() ? nullptr : collector;
}

Status WriteMetricsFile() {
  auto collector = CliMetrics();
  if (!collector) return Status::OK();
  return WriteExpositionFile(*collector, MetricsFilePath()).WithContext("--metrics-file");
}

bool StderrIsTty() { return ::isatty(STDERR_FILENO) == 1; }

ProgressLine::ProgressLine(bool enabled) : enabled_(enabled) {}

ProgressLine::~ProgressLine() { Finish(); }

void ProgressLine::Update(std::string_view phase, int64_t done, int64_t total, std::string_view detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  // Redraw at most ten times a second, but always show the start and the end of a phase.
  if (now - last_ < std::chrono::milliseconds(100) && done != total && phase == last_phase_) return;
  last_ = now;
  last_phase_ = phase;
  if (total > 0) {
    std::fprintf(stderr, "\r\033[K%.*s: %lld/%lld (%.0f%%)", static_cast<int>(phase.size()), phase.data(),
                 static_cast<long long>(done), static_cast<long long>(total), 100.0 * done / total);
  } else if (done > 0) {
    std::fprintf(stderr, "\r\033[K%.*s: %lld", static_cast<int>(phase.size()), phase.data(),
                 static_cast<long long>(done));
  } else {
    std::fprintf(stderr, "\r\033[K%.*s…", static_cast<int>(phase.size()), phase.data());
  }
  if (!detail.empty()) std::fprintf(stderr, ", %.*s", static_cast<int>(detail.size()), detail.data());
  std::fflush(stderr);
  dirty_ = true;
}

void ProgressLine::Finish() {
  if (enabled_ && dirty_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  dirty_ = false;
}

std::string_view TrimBlanks(std::string_view text) {
  const size_t b = text.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return text.substr(b, text.find_last_not_of(" \t") - b + 1);
}

}  // namespace shardvec::cli
