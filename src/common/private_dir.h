// The per-user private folders shardvec keeps local files in (the reader's shard cache, the
// writer's build folders), and the check that makes a folder trusted: shards in a folder someone
// else can write could be swapped for forged ones.
#pragma once

#include <filesystem>
#include <initializer_list>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

// The default root of this user's local files: $XDG_CACHE_HOME/shardvec when XDG_CACHE_HOME is an
// absolute path, else $HOME/.cache/shardvec, else <the user's home in the password database>/.cache/
// shardvec. The reader caches shards under <root>/shards, the writer builds under <root>/build.
Result<std::filesystem::path> DefaultPrivateRoot();

// Creates `dir` (missing folders 0700) and checks that it is private: a directory owned by this
// user that neither group nor others may write. `what` names the setting in the error, e.g.
// "shard cache folder (cache_dir)"; the error names the folder, its owner and mode, and the fix.
Status EnsurePrivateFolder(const std::filesystem::path& dir, std::string_view what);

// EnsurePrivateFolder for DefaultPrivateRoot()/<sub...>, checking every level from the root down (a
// level someone else owns could have its children swapped), and returns the innermost folder.
Result<std::filesystem::path> EnsureDefaultPrivateFolder(std::initializer_list<std::string_view> subfolders,
                                                        std::string_view what);

}  // namespace shardvec
