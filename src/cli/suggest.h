// "Did you mean": the subcommand or flag a mistyped name was probably meant to be.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardvec::cli {

// Edit distance counting an insertion, a deletion, a substitution or a swap of two neighbouring
// characters as one step ("serach" is 1 from "search").
size_t EditDistance(std::string_view a, std::string_view b);

// The names in `candidates` closest to `typed`, when close: at most 1 step for names of up to 4
// characters, else at most a third of the name's length (at most 3); nearest first, ties in
// candidate order. Empty when none is that close.
std::vector<std::string> NearestNames(std::string_view typed, const std::vector<std::string>& candidates);

// A name on the command line that is neither a subcommand nor a flag where it stands.
struct UnknownName {
  std::string command;  // the subcommand path it was typed under ("", "search", "cache ls")
  std::string name;     // as typed ("serach", "--num-probe")
  bool is_flag = false;
  std::vector<std::string> suggestions;  // NearestNames among the names valid there
};

// Walks `args` (argv without the program name) through `root`'s subcommands and flags (a flag of a
// parent app is valid under its subcommands, as with fallthrough) and returns the first unknown
// subcommand or flag, or nullopt when every name is known.
std::optional<UnknownName> FindUnknownName(const CLI::App& root, const std::vector<std::string>& args);

// "'serach' is not a shardvec subcommand; did you mean 'search'?" or "unknown flag '--num-probe';
// did you mean '--num-probes'?".
std::string UnknownNameMessage(const UnknownName& unknown);

// The subcommand path (as in UnknownName::command) `args` names under `root`, for messages.
std::string CommandPath(const CLI::App& root, const std::vector<std::string>& args);

}  // namespace shardvec::cli
