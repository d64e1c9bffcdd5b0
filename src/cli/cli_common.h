// Shared pieces of the shardvec subcommands: exit codes, error printing, the progress line.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;
inline constexpr int kExitUsage = 2;

// Prints "shardvec <command>: error: <message>" to stderr and returns kExitError.
int ReportError(std::string_view command, const Status& status);

// A single rewritten status line on stderr when it is a terminal and --quiet is off.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled);
  ~ProgressLine();
  void Update(std::string_view phase, int64_t done, int64_t total);
  void Finish();
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_{};
};

// True when stderr is a terminal.
bool StderrIsTty();

}  // namespace shardvec::cli
