#include "format/run_record.h"

#include <fmt/format.h>

#include <map>
#include <sstream>

namespace shardvec {
namespace {

// Single-quoted YAML scalars are always read back as strings; '' escapes a quote.
std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "''";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out + "'";
}

std::string OptionalScalar(const std::optional<std::string>& v) { return v ? Quote(*v) : "null"; }

std::string Unquote(std::string_view v) {
  if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'') {
    std::string out;
    for (size_t i = 1; i + 1 < v.size(); ++i) {
      out += v[i];
      if (v[i] == '\'' && i + 2 < v.size() && v[i + 1] == '\'') ++i;
    }
    return out;
  }
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') return std::string(v.substr(1, v.size() - 2));
  return std::string(v);
}

}  // namespace

std::string EncodeRunRecord(const RunRecord& r) {
  // Keys in sorted order, as yaml.safe_dump(sort_keys=True) writes them.
  std::string out;
  out += fmt::format("db_path_template: {}\n", Quote(r.db_path_template));
  out += fmt::format("error_message: {}\n", OptionalScalar(r.error_message));
  out += fmt::format("error_type: {}\n", OptionalScalar(r.error_type));
  out += fmt::format("format_version: {}\n", r.format_version);
  out += fmt::format("lease_expires_at: {}\n", Quote(r.lease_expires_at));
  out += fmt::format("manifest_ref: {}\n", OptionalScalar(r.manifest_ref));
  out += fmt::format("run_id: {}\n", Quote(r.run_id));
  out += fmt::format("s3_prefix: {}\n", Quote(r.s3_prefix));
  out += fmt::format("shard_prefix: {}\n", Quote(r.shard_prefix));
  out += fmt::format("started_at: {}\n", Quote(r.started_at));
  out += fmt::format("status: {}\n", r.status);
  out += fmt::format("updated_at: {}\n", Quote(r.updated_at));
  out += fmt::format("writer_type: {}\n", r.writer_type);
  return out;
}

Result<RunRecord> ParseRunRecord(std::string_view yaml) {
  std::map<std::string, std::string> fields;
  std::istringstream in{std::string(yaml)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(": ");
    if (colon == std::string::npos) {
      if (!line.empty() && line.back() == ':') fields[line.substr(0, line.size() - 1)] = "null";
      continue;
    }
    fields[line.substr(0, colon)] = line.substr(colon + 2);
  }
  if (!fields.count("run_id") || !fields.count("status")) {
    return Status::Corruption("run record: fields 'run_id' and 'status' are required");
  }
  auto get = [&](const std::string& k) { return fields.count(k) ? Unquote(fields[k]) : std::string(); };
  auto get_opt = [&](const std::string& k) -> std::optional<std::string> {
    if (!fields.count(k) || fields[k] == "null" || fields[k] == "~") return std::nullopt;
    return Unquote(fields[k]);
  };
  RunRecord r;
  r.run_id = get("run_id");
  r.status = get("status");
  r.writer_type = get("writer_type");
  r.started_at = get("started_at");
  r.updated_at = get("updated_at");
  r.lease_expires_at = get("lease_expires_at");
  r.s3_prefix = get("s3_prefix");
  r.shard_prefix = get("shard_prefix");
  r.db_path_template = get("db_path_template");
  r.manifest_ref = get_opt("manifest_ref");
  r.error_type = get_opt("error_type");
  r.error_message = get_opt("error_message");
  return r;
}

}  // namespace shardvec
