// The early-return macros live in the public API; engine code includes them from here.
#pragma once

#include "shardvec/status_macros.h"
