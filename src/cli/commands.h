// Each subcommand registers itself on the app and sets `exit_code` when it runs.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

#include "cli/run.h"
#include "shardvec/manifest_store.h"
#include "shardvec/object_store.h"

namespace shardvec::cli {

// The required --store option every subcommand takes.
// --store plus the S3 connection flags (--endpoint-url, --region, --profile, --addressing-style).
void AddStoreOption(CLI::App* cmd, std::string& store, StoreOptions& options);
// A store a command names, for messages: its flag or argument name and where its value is parsed to.
using NamedStore = std::pair<std::string, const std::string*>;
// The S3 connection flags alone; set while every one of `stores` is a folder, they are a usage error.
void AddS3Options(CLI::App* cmd, StoreOptions& options, std::vector<NamedStore> stores);
// --bytes: sizes printed as whole numbers of bytes instead of IEC units (SizeText).
void AddBytesFlag(CLI::App* cmd, bool& raw_bytes);
// --manifest-store: where manifests and the current pointer live (a postgresql:// DSN); empty keeps
// them beside the shards.
void AddManifestStoreOption(CLI::App* cmd, std::string& spec);
// The manifest store --manifest-store names, or null when it was not given (the object-store layout).
Result<std::shared_ptr<ManifestStore>> OpenCliManifestStore(const std::string& spec);

// `wrap_store`, when set, wraps the store build writes to.
void RegisterBuildCommand(CLI::App& app, int& exit_code, const StoreWrapper& wrap_store);
// update (src/cli/update_command.cc); `wrap_store`, when set, wraps the store it writes to.
void RegisterUpdateCommand(CLI::App& app, int& exit_code, const StoreWrapper& wrap_store);
// history, rollback, cleanup (src/cli/history_commands.cc)
void RegisterHistoryCommands(CLI::App& app, int& exit_code);
// search, info, shards, route, health, verify (src/cli/read_commands.cc)
void RegisterReadCommands(CLI::App& app, int& exit_code);
// copy (src/cli/copy_command.cc)
void RegisterCopyCommand(CLI::App& app, int& exit_code);
// serve (src/cli/serve_command.cc)
void RegisterServeCommand(CLI::App& app, int& exit_code);
// cache ls, cache prune (src/cli/cache_commands.cc)
void RegisterCacheCommands(CLI::App& app, int& exit_code);

}  // namespace shardvec::cli
