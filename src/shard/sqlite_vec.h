// Loads the sqlite-vec 0.1.9 extension (vec0.so) once per process and registers it for every new
// SQLite connection. The path is fixed at build time; SHARDVEC_VEC0_PATH overrides it.
#pragma once

#include <string>

#include "shardvec/status.h"

namespace shardvec {

Status EnsureSqliteVecLoaded();
// The vec0.so path in use (after EnsureSqliteVecLoaded succeeded) or the one that would be tried.
std::string SqliteVecPath();

}  // namespace shardvec
