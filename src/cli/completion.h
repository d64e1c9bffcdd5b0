// `shardvec completion bash|zsh|fish`: shell completion scripts generated from the app's own
// subcommands and flags, so they never drift from the CLI.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>

namespace shardvec::cli {

// The completion script for `shell` (bash, zsh or fish) over every subcommand and flag of `app`.
std::string CompletionScript(const CLI::App& app, std::string_view shell);

// Adds the `completion` subcommand; its script covers `app` as registered when it runs.
void RegisterCompletionCommand(CLI::App& app, int& exit_code);

}  // namespace shardvec::cli
