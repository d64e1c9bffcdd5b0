// An SQLite VFS that opens a file this process already holds open, by its /proc/self/fd/N name.
// The default unix VFS resolves symbolic links in a database's name, so /proc/self/fd/N would be
// turned back into the path the file had, and a file swapped in at that path since would be opened
// instead. This VFS is the default one with that resolution left out: the name is opened as given,
// so the kernel reopens the very file behind the descriptor. The unix VFS also opens every file
// O_NOFOLLOW, so its `open` system call is replaced (once, for the whole process) by one that drops
// that flag for /proc/self/fd/ names only.
#pragma once

#include <string>

#include "shardvec/status.h"

namespace shardvec {

// Registers the VFS (once; SQLite must be usable) and returns its name for a URI's `vfs=` parameter.
Result<std::string> PinnedFileVfsName();

// "/proc/self/fd/<fd>": the name under which PinnedFileVfsName() opens the file behind `fd`.
std::string PinnedFileName(int fd);

}  // namespace shardvec
