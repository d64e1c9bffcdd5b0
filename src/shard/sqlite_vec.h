// Loads the sqlite-vec 0.1.9 extension (vec0.so) once per process and registers it for every new
// SQLite connection. Which file: the first of
//   1. a `vec0_path` option (WriteConfig::vec0_path, ReaderOptions::vec0_path) passed to UseSqliteVec,
//   2. the SHARDVEC_VEC0_PATH environment variable,
//   3. the process default set by SetDefaultSqliteVecPath (the Python package: its sqlite-vec wheel),
//   4. the path the library was configured with (CMake's SHARDVEC_VEC0_PATH).
#pragma once

#include <string>
#include <string_view>

#include "shardvec/status.h"

namespace shardvec {

// Loads vec0 from the default path (2-4 above) unless it is loaded already.
Status EnsureSqliteVecLoaded();
// Loads vec0 from `path` when not empty (else as EnsureSqliteVecLoaded). InvalidArgument naming
// `field` and the path when the file does not exist, or when this process already loaded vec0 from
// another file (it loads once per process).
Status UseSqliteVec(std::string_view field, const std::string& path);
// The default for every later load without an explicit path (3 above); empty restores 4.
void SetDefaultSqliteVecPath(std::string path);
// The vec0.so path in use (after a load succeeded) or the one that would be tried.
std::string SqliteVecPath();

}  // namespace shardvec
