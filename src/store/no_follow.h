// Reaching files beneath a folder without ever following a symlink or opening a special file: each
// folder on the way is opened relative to the previous one with O_NOFOLLOW, and a file is checked to
// be regular (lstat, then fstat of what was opened) before a byte of it is read. A folder store is
// built on these, so a symlink, FIFO, device or folder planted in it can neither leak a file from
// outside nor hang a read.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/file_util.h"
#include "shardvec/status.h"

namespace shardvec {

// The folder named by `parts` (plain names) beneath the open folder `base_fd`. A symlink or a
// non-folder on the way is Corruption naming it (as `shown_base`/parts...), a missing one NotFound
// unless `create` makes it (mode 0755).
Result<ScopedFd> OpenFolderBeneath(int base_fd, const std::vector<std::string>& parts, bool create,
                                   std::string_view shown_base);

// lstat of `name` in `dir_fd`: NotFound when absent.
Result<struct stat> StatNoFollow(int dir_fd, const std::string& name, std::string_view shown);

// Opens the regular file `name` in `dir_fd` for reading (never waiting on a FIFO); anything else is
// Corruption naming `shown` and its kind. `info` receives its fstat.
Result<ScopedFd> OpenRegularFileAt(int dir_fd, const std::string& name, std::string_view shown,
                                   struct stat* info);

// Calls `visit(name, lstat)` for each entry of the open folder `dir_fd` except "." and "..".
Status ForEachEntry(int dir_fd, std::string_view shown,
                    const std::function<Status(const std::string&, const struct stat&)>& visit);

}  // namespace shardvec
