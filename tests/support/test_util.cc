#include "support/test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "routing/distance.h"
#include "shard/shard_builder.h"

namespace shardvec::testing {

namespace {

// VmSize of this process, in bytes (0 when unknown).
int64_t VirtualSize() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoll(line.substr(7)) * 1024;
  }
  return 0;
}

}  // namespace

bool SanitizedBuild() {
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

std::string RunWithAddressSpaceCap(int64_t headroom_bytes, const std::function<std::string()>& body) {
  int out[2];
  if (::pipe(out) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::close(out[0]);
    const auto cap = static_cast<rlim_t>(VirtualSize() + headroom_bytes);
    const struct rlimit limit{cap, cap};
    std::string result = ::setrlimit(RLIMIT_AS, &limit) == 0 ? body() : "setrlimit failed";
    if (::write(out[1], result.data(), result.size()) < 0) ::_exit(3);
    ::_exit(0);
  }
  ::close(out[1]);
  std::string result;
  char buffer[4096];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) result.append(buffer, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return "the child was killed by signal " + std::to_string(WTERMSIG(status)) + ": " + result;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "the child exited with " + std::to_string(WEXITSTATUS(status));
  return result;
}

ScopedEnv::ScopedEnv(const char* name, const std::string& value) : name_(name) {
  if (const char* old = std::getenv(name)) old_ = old;
  ::setenv(name, value.c_str(), 1);
}

ScopedEnv::~ScopedEnv() {
  if (old_) {
    ::setenv(name_, old_->c_str(), 1);
  } else {
    ::unsetenv(name_);
  }
}

LockHolder::LockHolder(const std::filesystem::path& path, bool shared) {
  int ready[2], release[2];
  if (::pipe(ready) != 0 || ::pipe(release) != 0) {
    ADD_FAILURE() << "pipe failed";
    return;
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    ::close(ready[0]);
    ::close(release[1]);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0600);
    const char ok = fd >= 0 && ::flock(fd, shared ? LOCK_SH : LOCK_EX) == 0 ? '1' : '0';
    if (::write(ready[1], &ok, 1) < 0) ::_exit(1);
    char byte;
    while (::read(release[0], &byte, 1) > 0) {
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  ::close(release[0]);
  release_fd_ = release[1];
  char ok = '0';
  if (::read(ready[0], &ok, 1) != 1 || ok != '1') ADD_FAILURE() << "the child could not lock " << path;
  ::close(ready[0]);
}

LockHolder::~LockHolder() {
  if (release_fd_ >= 0) ::close(release_fd_);
  if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
}

std::vector<Record> MakeRecords(const Matrix& m, bool string_ids, int64_t num_dbs) {
  std::vector<Record> records;
  for (int64_t i = 0; i < m.rows; ++i) {
    Record r;
    r.id = string_ids ? RecordId("doc-" + std::to_string(i)) : RecordId(i * 3);
    r.vector.assign(m.row(i), m.row(i) + m.cols);
    r.payload_json = "{\"row\": " + std::to_string(i) + "}";
    if (num_dbs > 0) r.shard_id = i % num_dbs;
    records.push_back(std::move(r));
  }
  return records;
}

std::vector<std::pair<double, int64_t>> BruteForce(const Matrix& data, const float* q, Metric metric, int64_t k) {
  std::vector<std::pair<double, int64_t>> all;
  for (int64_t i = 0; i < data.rows; ++i) {
    double d = RoutingDistance(metric, data.row(i), q, data.cols);
    if (metric == Metric::kL2) d = std::sqrt(d);
    all.emplace_back(d, i);
  }
  k = std::min<int64_t>(k, static_cast<int64_t>(all.size()));
  std::partial_sort(all.begin(), all.begin() + k, all.end());
  all.resize(static_cast<size_t>(k));
  return all;
}
namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::mt19937_64 rng{std::random_device{}()};
  path_ = fs::temp_directory_path() / ("shardvec-test-" + std::to_string(rng()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Matrix RandomMatrix(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix m{rows, cols, std::vector<float>(static_cast<size_t>(rows * cols))};
  for (float& v : m.data) v = normal(rng);
  return m;
}

Matrix ClusteredMatrix(int64_t rows, int64_t cols, int64_t clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix centers = RandomMatrix(clusters, cols, seed + 1);
  for (float& v : centers.data) v *= 20.0f;
  Matrix m{rows, cols, std::vector<float>(static_cast<size_t>(rows * cols))};
  for (int64_t i = 0; i < rows; ++i) {
    const float* c = centers.row(i % clusters);
    for (int64_t j = 0; j < cols; ++j) m.row(i)[j] = c[j] + normal(rng);
  }
  return m;
}

Matrix MakeMatrix(int64_t rows, int64_t cols, std::vector<float> data) {
  Matrix m;
  m.rows = rows;
  m.cols = cols;
  m.data = std::move(data);
  return m;
}

std::string MakeNpy(std::string_view dict, std::string_view data) {
  std::string out("\x93NUMPY\x01\x00", 8);
  size_t length = dict.size() + 1;
  out.push_back(static_cast<char>(length & 0xff));
  out.push_back(static_cast<char>(length >> 8));
  out.append(dict);
  out.push_back('\n');
  out.append(data);
  return out;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

CommandResult RunCommand(const std::string& command_line) {
  TempDir tmp;
  const fs::path out = tmp / "stdout";
  const fs::path err = tmp / "stderr";
  const std::string full = command_line + " >" + ShellQuote(out.string()) + " 2>" + ShellQuote(err.string()) + " </dev/null";
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadText(out);
  r.err = ReadText(err);
  return r;
}

CommandResult RunCli(const std::string& args) {
  return RunCommand(ShellQuote(SHARDVEC_CLI_PATH) + " " + args);
}

void WriteNpy(const fs::path& path, const Matrix& m) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(m.rows) +
                       ", " + std::to_string(m.cols) + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  f.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.write(reinterpret_cast<const char*>(&len), 2);
  f.write(header.data(), static_cast<std::streamsize>(header.size()));
  f.write(reinterpret_cast<const char*>(m.data.data()), static_cast<std::streamsize>(m.data.size() * 4));
}

std::vector<std::string> ListFiles(const fs::path& root) {
  std::vector<std::string> files;
  for (auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files.push_back(e.path().lexically_relative(root).generic_string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

std::string ReadText(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> QuotedIncludes(const fs::path& source) {
  static const std::regex kInclude(R"re(^\s*#\s*include\s*"([^"]+)")re");
  std::ifstream in(source);
  std::vector<std::string> out;
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, kInclude)) out.push_back(m[1].str());
  }
  return out;
}

void BuildVec0Shard(const fs::path& path, const Matrix& vectors, Metric metric, int64_t chunk_size, bool int8_codes) {
  ShardBuildOptions options{vectors.cols, metric};
  options.chunk_size = chunk_size;
  options.int8_codes = int8_codes;
  auto builder = ShardBuilder::Create(path, options);
  ASSERT_TRUE(builder.ok()) << builder.status().ToString();
  for (int64_t row = 0; row < vectors.rows; ++row) {
    ASSERT_TRUE((*builder)->Add(RecordId(row), vectors.row(row), std::nullopt).ok());
  }
  ASSERT_TRUE((*builder)->Seal().ok());
}

sqlite3* OpenWithVec0(const fs::path& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    throw std::runtime_error("cannot open " + path.string());
  }
  sqlite3_enable_load_extension(db, 1);
  char* err = nullptr;
  if (sqlite3_load_extension(db, SHARDVEC_VEC0_PATH, "sqlite3_vec_init", &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error("cannot load vec0: " + msg);
  }
  return db;
}

void ExecSql(const fs::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

std::vector<std::vector<std::string>> QueryRows(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    throw std::runtime_error("bad SQL '" + sql + "': " + sqlite3_errmsg(db));
  }
  std::vector<std::vector<std::string>> rows;
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
      const auto* t = sqlite3_column_text(stmt, i);
      row.push_back(t ? reinterpret_cast<const char*>(t) : "<null>");
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(stmt);
  return rows;
}

sqlite3* OpenBytes(const std::string& bytes) {
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  auto* copy = static_cast<unsigned char*>(sqlite3_malloc64(bytes.size()));
  std::memcpy(copy, bytes.data(), bytes.size());
  sqlite3_deserialize(db, "main", copy, bytes.size(), bytes.size(),
                      SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY);
  return db;
}

}  // namespace shardvec::testing
