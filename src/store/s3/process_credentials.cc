#include "store/s3/process_credentials.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/status_macros.h"

extern char** environ;

namespace shardvec {

namespace {

constexpr size_t kMaxProcessOutputBytes = size_t{64} << 10;

const CredentialJsonFields kProcessFields{nullptr, "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"};

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

Result<std::vector<std::string>> SplitCommandLine(const std::string& command, const std::string& what) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < command.size(); ++i) {
    const char c = command[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (++i < command.size()) word += command[i];
    } else if (c == '\'') {
      const size_t close = command.find('\'', i + 1);
      if (close == std::string::npos) {
        return Status::InvalidArgument(fmt::format("{}: credential_process has an unclosed ' quote", what));
      }
      word += command.substr(i + 1, close - i - 1);
      i = close;
    } else if (c == '"') {
      for (++i;; ++i) {
        if (i >= command.size()) {
          return Status::InvalidArgument(fmt::format("{}: credential_process has an unclosed \" quote", what));
        }
        if (command[i] == '"') break;
        if (command[i] == '\\' && i + 1 < command.size() &&
            std::strchr("\"\\$`\n", command[i + 1]) != nullptr) {
          ++i;
        }
        word += command[i];
      }
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return Status::InvalidArgument(fmt::format("{}: credential_process is empty", what));
  return words;
}

Result<ExpiringCredentials> RunCredentialProcess(const std::string& command, const std::string& what,
                                                 double timeout_seconds) {
  const std::string shown = fmt::format("{}: credential_process '{}'", what, command);
  ASSIGN_OR_RETURN(std::vector<std::string> words, SplitCommandLine(command, what));
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Status::IOError(fmt::format("{}: pipe: {}", shown, std::strerror(errno)));
  Fd read_end{pipe_fds[0]};
  Fd write_end{pipe_fds[1]};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.fd, STDOUT_FILENO);
  pid_t pid = -1;
  const int spawn_error = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawn_error != 0) {
    return Status::InvalidArgument(fmt::format("{} could not be started: {}", shown, std::strerror(spawn_error)));
  }
  close(write_end.fd);
  write_end.fd = -1;

  std::string output;
  bool timed_out = false;
  bool too_long = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{read_end.fd, POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;  // the deadline check above ends the loop
    char buffer[4096];
    const ssize_t n = read(read_end.fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of output
    output.append(buffer, static_cast<size_t>(n));
    if (output.size() > kMaxProcessOutputBytes) {
      too_long = true;
      break;
    }
  }
  if (timed_out || too_long) kill(pid, SIGKILL);
  int wait_status = 0;
  while (waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status::Unavailable(fmt::format("{} did not finish within {} s and was stopped", shown, timeout_seconds));
  }
  if (too_long) {
    return Status::InvalidArgument(fmt::format("{} printed more than {} bytes", shown, kMaxProcessOutputBytes));
  }
  if (!WIFEXITED(wait_status) || WEXITSTATUS(wait_status) != 0) {
    const std::string how = WIFEXITED(wait_status) ? fmt::format("exited with status {}", WEXITSTATUS(wait_status))
                                                   : fmt::format("was killed by signal {}", WTERMSIG(wait_status));
    return Status::InvalidArgument(fmt::format("{} {}", shown, how));
  }
  const nlohmann::json doc = nlohmann::json::parse(output, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return Status::InvalidArgument(fmt::format("{} did not print a JSON object", shown));
  auto version = doc.find("Version");
  if (version == doc.end() || !version->is_number_integer() || version->get<int64_t>() != 1) {
    return Status::InvalidArgument(fmt::format("{} printed JSON without \"Version\": 1", shown));
  }
  return CredentialsFromJson(output, kProcessFields, shown);
}

}  // namespace shardvec
