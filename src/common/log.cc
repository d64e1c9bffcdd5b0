#include "common/log.h"

#include <spdlog/logger.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <memory>
#include <optional>

#include "common/time_util.h"

namespace shardvec {
namespace {

struct LogSettings {
  LogFormat format = LogFormat::kText;
  LogLevel min_level = LogLevel::kWarning;
  std::string problem;  // an unrecognised variable value, reported once with the first line
};

std::optional<LogLevel> ParseLevel(std::string_view text) {
  if (text == "debug") return LogLevel::kDebug;
  if (text == "info") return LogLevel::kInfo;
  if (text == "warning" || text == "warn") return LogLevel::kWarning;
  if (text == "error") return LogLevel::kError;
  return std::nullopt;
}

LogSettings ReadSettings() {
  LogSettings s;
  if (const char* f = std::getenv("SHARDVEC_LOG_FORMAT"); f != nullptr && *f != '\0') {
    const std::string_view v(f);
    if (v == "json") s.format = LogFormat::kJson;
    else if (v != "text") s.problem = "SHARDVEC_LOG_FORMAT='" + std::string(v) + "' is not json or text; using text";
  }
  s.min_level = s.format == LogFormat::kJson ? LogLevel::kInfo : LogLevel::kWarning;
  if (const char* l = std::getenv("SHARDVEC_LOG"); l != nullptr && *l != '\0') {
    if (auto level = ParseLevel(l)) s.min_level = *level;
    else s.problem = "SHARDVEC_LOG='" + std::string(l) + "' is not debug, info, warning or error";
  }
  return s;
}

const LogSettings& Settings() {
  static const LogSettings settings = ReadSettings();
  return settings;
}

// spdlog's stderr sink serialises lines from many threads; the line is already formatted.
spdlog::logger& Logger() {
  static spdlog::logger* logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto* l = new spdlog::logger("shardvec", std::move(sink));  // never destroyed: logs at exit work
    l->set_pattern("%v");
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);
    if (!Settings().problem.empty()) {
      const std::string line = FormatLogLine(Settings().format, FormatTimestamp(NowUtc()), LogLevel::kWarning,
                                             "log_settings_invalid", {{"message", Settings().problem}});
      l->log(spdlog::level::warn, spdlog::string_view_t(line.data(), line.size()));
    }
    return l;
  }();
  return *logger;
}

spdlog::level::level_enum SpdLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarning: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::err;
}

bool IsFixedKey(const std::string& key) { return key == "ts" || key == "level" || key == "event"; }

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "error";
}

std::string FormatLogLine(LogFormat format, std::string_view ts, LogLevel level, std::string_view event,
                          const LogFields& fields) {
  using json = nlohmann::json;
  // dump() with replace: bytes that are not UTF-8 must not throw out of a log call.
  auto quoted = [](std::string_view s) {
    return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
  };
  std::string line;
  if (format == LogFormat::kJson) {
    line = "{\"ts\":" + quoted(ts) + ",\"level\":" + quoted(LogLevelName(level)) + ",\"event\":" + quoted(event);
    if (fields.is_object()) {
      for (const auto& [key, value] : fields.items()) {
        line += "," + quoted(IsFixedKey(key) ? "field." + key : key) + ":" +
                value.dump(-1, ' ', false, json::error_handler_t::replace);
      }
    }
    line += "}";
    return line;
  }
  line = "shardvec: " + std::string(LogLevelName(level)) + ": ";
  const bool legacy = event == "warning" || event == "debug";  // LogWarning/LogDebug: the message alone
  if (!legacy) line += std::string(event) + ":";
  if (fields.is_object()) {
    if (auto it = fields.find("message"); it != fields.end() && it->is_string()) {
      if (!legacy) line += " ";
      line += it->get<std::string>();
    }
    for (const auto& [key, value] : fields.items()) {
      if (key == "message") continue;
      line += " " + key + "=" +
              (value.is_string() ? value.get<std::string>() : value.dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
  return line;
}

bool LogEnabled(LogLevel level) { return level >= Settings().min_level; }

void LogEvent(LogLevel level, std::string_view event, const LogFields& fields) {
  if (!LogEnabled(level)) return;
  const std::string line = FormatLogLine(Settings().format, FormatTimestamp(NowUtc()), level, event, fields);
  Logger().log(SpdLevel(level), spdlog::string_view_t(line.data(), line.size()));
}

void LogWarning(std::string_view message) {
  LogEvent(LogLevel::kWarning, "warning", {{"message", std::string(message)}});
}

void LogDebug(std::string_view message) {
  if (!LogEnabled(LogLevel::kDebug)) return;
  LogEvent(LogLevel::kDebug, "debug", {{"message", std::string(message)}});
}

}  // namespace shardvec
