// credential_process: runs the helper a profile names (split into words like botocore's shlex.split,
// started without a shell, with a timeout) and reads its JSON (Version 1) answer.
#pragma once

#include <string>
#include <vector>

#include "shardvec/status.h"
#include "store/s3/credential_provider.h"

namespace shardvec {

inline constexpr double kCredentialProcessTimeoutSeconds = 60;

// POSIX shell-like word splitting without any expansion: blanks separate words, '…' is literal, "…"
// allows \" \\ \$ \` escapes, and a backslash outside quotes escapes the next character.
Result<std::vector<std::string>> SplitCommandLine(const std::string& command, const std::string& what);

// Runs `command` (stdin from /dev/null, stderr passed through) and parses its output. `what` names the
// profile; errors name it and the command, never the output (it holds secrets).
Result<ExpiringCredentials> RunCredentialProcess(const std::string& command, const std::string& what,
                                                 double timeout_seconds = kCredentialProcessTimeoutSeconds);

}  // namespace shardvec
