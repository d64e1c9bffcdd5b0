#include "cli/suggest.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>

namespace shardvec::cli {
namespace {

// The option `name` ("--x") of `app` or of an app above it.
const CLI::Option* FindFlag(const CLI::App* app, const std::string& name) {
  for (; app != nullptr; app = app->get_parent()) {
    if (const CLI::Option* option = app->get_option_no_throw(name)) return option;
  }
  return nullptr;
}

// Every long flag valid under `app`: its own, then its parents'.
std::vector<std::string> FlagNames(const CLI::App* app) {
  std::vector<std::string> names;
  for (; app != nullptr; app = app->get_parent()) {
    for (const CLI::Option* option : app->get_options()) {
      for (const std::string& name : option->get_lnames()) names.push_back("--" + name);
    }
  }
  return names;
}

std::vector<std::string> SubcommandNames(const CLI::App* app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

// Walks `args` like the parser: the app each name stands under, and the first unknown name.
struct Walk {
  const CLI::App* app;
  std::string command;
  std::optional<UnknownName> unknown;
};

Walk WalkArgs(const CLI::App& root, const std::vector<std::string>& args) {
  Walk walk{&root, "", std::nullopt};
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.starts_with("--")) {
      const std::string name = arg.substr(0, arg.find('='));
      const CLI::Option* option = FindFlag(walk.app, name);
      if (option == nullptr) {
        walk.unknown = UnknownName{walk.command, name, true, NearestNames(name, FlagNames(walk.app))};
        return walk;
      }
      // A value follows unless given as --flag=value or the option is a flag.
      if (name.size() == arg.size() && option->get_expected_min() > 0) ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;  // -h, or a negative number as a value
    const std::vector<std::string> subs = SubcommandNames(walk.app);
    if (subs.empty()) continue;  // a positional argument (copy SRC DST)
    if (std::find(subs.begin(), subs.end(), arg) == subs.end()) {
      walk.unknown = UnknownName{walk.command, arg, false, NearestNames(arg, subs)};
      return walk;
    }
    walk.app = walk.app->get_subcommand(arg);
    walk.command += (walk.command.empty() ? "" : " ") + arg;
  }
  return walk;
}

}  // namespace

size_t EditDistance(std::string_view a, std::string_view b) {
  // Optimal string alignment distance over three rows of the table.
  std::vector<size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  std::iota(previous.begin(), previous.end(), size_t{0});
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::vector<std::string> NearestNames(std::string_view typed, const std::vector<std::string>& candidates) {
  // Flags compare without their dashes, so that "--ab" is not "close" to every two-letter flag.
  const auto bare = [](std::string_view name) {
    while (name.starts_with('-')) name.remove_prefix(1);
    return name;
  };
  const std::string_view word = bare(typed);
  const size_t limit = word.size() <= 4 ? 1 : std::min<size_t>(3, word.size() / 3);
  size_t best = limit + 1;
  std::vector<std::string> nearest;
  for (const std::string& candidate : candidates) {
    const size_t distance = EditDistance(word, bare(candidate));
    if (distance > limit || distance > best) continue;
    if (distance < best) nearest.clear();
    best = distance;
    if (std::find(nearest.begin(), nearest.end(), candidate) == nearest.end()) nearest.push_back(candidate);
  }
  return nearest;
}

std::optional<UnknownName> FindUnknownName(const CLI::App& root, const std::vector<std::string>& args) {
  return WalkArgs(root, args).unknown;
}

std::string CommandPath(const CLI::App& root, const std::vector<std::string>& args) {
  return WalkArgs(root, args).command;
}

std::string UnknownNameMessage(const UnknownName& unknown) {
  std::vector<std::string> quoted;
  for (const std::string& name : unknown.suggestions) quoted.push_back(fmt::format("'{}'", name));
  const std::string hint =
      quoted.empty() ? "" : fmt::format("; did you mean {}?", fmt::join(quoted, " or "));
  if (unknown.is_flag) return fmt::format("unknown flag '{}'{}", unknown.name, hint);
  return fmt::format("'{}' is not a {} subcommand{}", unknown.name,
                     unknown.command.empty() ? "shardvec" : fmt::format("'{}'", unknown.command), hint);
}

}  // namespace shardvec::cli
