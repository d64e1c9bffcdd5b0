#include "shard/row_spool.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace shardvec {
namespace fs = std::filesystem;

namespace {

// A record: id kind (0 int, 1 str), the id (8 bytes, or a length and the bytes), then payload
// presence (0/1) and, when present, its length and bytes.
void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), sizeof(v)); }

bool GetU64(const std::string& in, size_t* pos, uint64_t* v) {
  if (in.size() - *pos < sizeof(*v)) return false;
  std::memcpy(v, in.data() + *pos, sizeof(*v));
  *pos += sizeof(*v);
  return true;
}

bool GetBytes(const std::string& in, size_t* pos, std::string* out) {
  uint64_t n = 0;
  if (!GetU64(in, pos, &n) || in.size() - *pos < n) return false;
  out->assign(in.data() + *pos, static_cast<size_t>(n));
  *pos += static_cast<size_t>(n);
  return true;
}

}  // namespace

Result<std::unique_ptr<RowSpool>> RowSpool::Create(const fs::path& base, int64_t dim) {
  std::unique_ptr<RowSpool> spool(new RowSpool(base.string() + ".vectors", base.string() + ".records", dim));
  for (const auto& [path, file] : {std::pair{&spool->vectors_path_, &spool->vectors_},
                                   std::pair{&spool->records_path_, &spool->records_}}) {
    *file = std::fopen(path->c_str(), "wbx");
    if (*file == nullptr) {
      return Status::IOError(fmt::format("cannot create row spool '{}': {}", path->string(), std::strerror(errno)));
    }
  }
  return spool;
}

RowSpool::~RowSpool() {
  if (vectors_ != nullptr) std::fclose(vectors_);
  if (records_ != nullptr) std::fclose(records_);
  if (mapped_ != nullptr) munmap(const_cast<float*>(mapped_), mapped_bytes_);
  if (records_fd_ >= 0) close(records_fd_);
  std::error_code ec;
  fs::remove(vectors_path_, ec);
  fs::remove(records_path_, ec);
}

Status RowSpool::WriteError(const fs::path& path) const {
  return Status::IOError(fmt::format("cannot write row spool '{}': {}", path.string(), std::strerror(errno)));
}

Status RowSpool::Add(const RecordId& id, const float* vector, const std::optional<std::string>& payload_json) {
  buffer_.clear();
  if (const auto* i = std::get_if<int64_t>(&id)) {
    buffer_ += '\0';
    PutU64(&buffer_, static_cast<uint64_t>(*i));
  } else {
    const std::string& s = std::get<std::string>(id);
    buffer_ += '\1';
    PutU64(&buffer_, s.size());
    buffer_ += s;
  }
  buffer_ += payload_json ? '\1' : '\0';
  if (payload_json) {
    PutU64(&buffer_, payload_json->size());
    buffer_ += *payload_json;
  }
  const size_t floats = static_cast<size_t>(dim_);
  if (std::fwrite(vector, sizeof(float), floats, vectors_) != floats) return WriteError(vectors_path_);
  if (std::fwrite(buffer_.data(), 1, buffer_.size(), records_) != buffer_.size()) return WriteError(records_path_);
  offsets_.push_back(records_bytes_);
  records_bytes_ += static_cast<int64_t>(buffer_.size());
  return Status::OK();
}

Status RowSpool::Finish() {
  const bool vectors_ok = std::fclose(vectors_) == 0;
  vectors_ = nullptr;
  if (!vectors_ok) return WriteError(vectors_path_);
  const bool records_ok = std::fclose(records_) == 0;
  records_ = nullptr;
  if (!records_ok) return WriteError(records_path_);
  records_fd_ = open(records_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (records_fd_ < 0) {
    return Status::IOError(fmt::format("cannot read row spool '{}': {}", records_path_.string(), std::strerror(errno)));
  }
  mapped_bytes_ = static_cast<size_t>(rows() * dim_) * sizeof(float);
  if (mapped_bytes_ == 0) return Status::OK();
  const int fd = open(vectors_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::IOError(fmt::format("cannot read row spool '{}': {}", vectors_path_.string(), std::strerror(errno)));
  }
  void* p = mmap(nullptr, mapped_bytes_, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    return Status::IOError(fmt::format("cannot map row spool '{}': {}", vectors_path_.string(), std::strerror(errno)));
  }
  mapped_ = static_cast<const float*>(p);
  return Status::OK();
}

Status RowSpool::Read(int64_t i, RecordId* id, std::optional<std::string>* payload_json) {
  const int64_t begin = offsets_[static_cast<size_t>(i)];
  const int64_t end = i + 1 < rows() ? offsets_[static_cast<size_t>(i + 1)] : records_bytes_;
  buffer_.resize(static_cast<size_t>(end - begin));
  for (size_t done = 0; done < buffer_.size();) {
    const ssize_t n = pread(records_fd_, buffer_.data() + done, buffer_.size() - done, begin + static_cast<off_t>(done));
    if (n <= 0) {
      return Status::IOError(fmt::format("cannot read row spool '{}' (row {}): {}", records_path_.string(), i,
                                         n == 0 ? "file too short" : std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  size_t pos = 1;
  bool ok = !buffer_.empty();
  if (ok && buffer_[0] == '\0') {
    uint64_t v = 0;
    ok = GetU64(buffer_, &pos, &v);
    *id = static_cast<int64_t>(v);
  } else if (ok) {
    std::string s;
    ok = GetBytes(buffer_, &pos, &s);
    *id = std::move(s);
  }
  ok = ok && pos < buffer_.size();
  payload_json->reset();
  if (ok && buffer_[pos++] == '\1') {
    std::string s;
    ok = GetBytes(buffer_, &pos, &s);
    *payload_json = std::move(s);
  }
  if (!ok) return Status::Internal(fmt::format("row spool '{}': row {} is malformed", records_path_.string(), i));
  return Status::OK();
}

}  // namespace shardvec
