// Shared pieces of the shardvec subcommands: exit codes, error printing, the progress line.
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "shardvec/metrics.h"
#include "shardvec/status.h"

namespace shardvec::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// Prints "shardvec <command>: error: <message>" to stderr and returns kExitError. Control
// characters and bytes that are not UTF-8 in the message (values quoted from inputs or a store) are
// escaped; line breaks stay. With JsonErrors() on, stderr gets one JSON object instead:
// {"error": {"code", "kind", "message", "command", "exit_code"}}.
int ReportError(std::string_view command, const Status& status);

// A usage error (a bad flag, value or combination) the same way, with "Run with --help for more
// information." in text; code and kind are "Usage" in JSON. Returns kExitUsage.
int ReportUsageError(std::string_view command, std::string_view message);

// Whether errors go to stderr as JSON: --json is on the command line. Run sets it before parsing.
bool& JsonErrors();

// `bytes` for people, in IEC units with one decimal ("512 B", "1.5 KiB", "215.7 MiB"), or, with
// `raw` (the --bytes flag), the whole number ("1536 bytes").
std::string SizeText(int64_t bytes, bool raw);

// `text` (a value read from a store or an input) with control characters and bytes that are not
// UTF-8 escaped, for printing.
std::string DisplayText(std::string_view text);

// `value` as compact JSON text that never throws: bytes that are not UTF-8 in a string come out as
// U+FFFD, so the text is always valid JSON.
std::string JsonText(const nlohmann::json& value);

// Prints `value` as one line of compact JSON on stdout. Never throws: bytes that are not UTF-8 in a
// string come out as U+FFFD, so the line is always valid JSON.
void PrintJson(const nlohmann::json& value);

// A single rewritten status line on stderr when it is a terminal and --quiet is off.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled);
  ~ProgressLine();
  // `detail`, when not empty, follows the count (e.g. "inertia 1.25e+05").
  void Update(std::string_view phase, int64_t done, int64_t total, std::string_view detail = {});
  void Finish();
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  bool dirty_ = false;
  std::string last_phase_;
  std::chrono::steady_clock::time_point last_{};
};

// The global --metrics-file: the path (empty when not given), the collector commands hand to the
// writer and reader (null when not given), and the atomic write of its exposition at exit.
std::string& MetricsFilePath();
std::shared_ptr<PrometheusCollector> CliMetrics();
Status WriteMetricsFile();

// True when stderr is a terminal.
bool StderrIsTty();

// `text` without leading and trailing spaces and tabs.
std::string_view TrimBlanks(std::string_view text);

// The number `text` spells with nothing before or after it (std::from_chars rules: no '+', no
// spaces), or nullopt: for flag values such as "3", "-7", "2.5".
template <typename T>
std::optional<T> ParseWhole(std::string_view text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace shardvec::cli
