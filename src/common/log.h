// Structured logs: named events with fields, one line each on stderr through spdlog.
//
// SHARDVEC_LOG_FORMAT=json prints one JSON object per line: {"ts":…,"level":…,"event":…, fields…};
// the default (text) prints "shardvec: <level>: <event>: <message> key=value …" for people.
// SHARDVEC_LOG=debug|info|warning|error sets the lowest level printed (default: warning for text,
// info for json, so a JSON log carries the completion events and a terminal stays quiet).
// Event names follow the reference's structured logs (docs/architecture.md#observability) where one applies.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace shardvec {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kText, kJson };

// An event's fields: a JSON object, e.g. {{"run_id", id}, {"num_shards", 4}}.
using LogFields = nlohmann::json;

// True when an event at `level` would be printed (lets a caller skip building costly fields).
bool LogEnabled(LogLevel level);
void LogEvent(LogLevel level, std::string_view event, const LogFields& fields = LogFields::object());

// One rendered line without the newline (pure; what LogEvent prints). `ts` is an RFC 3339 UTC time.
// A field named like a fixed key (ts, level, event) is written as "field.<name>" so it cannot hide it.
std::string FormatLogLine(LogFormat format, std::string_view ts, LogLevel level, std::string_view event,
                          const LogFields& fields);
std::string_view LogLevelName(LogLevel level);

// Unnamed messages from older call sites: event "warning" / "debug" with a "message" field.
void LogWarning(std::string_view message);
void LogDebug(std::string_view message);

}  // namespace shardvec
