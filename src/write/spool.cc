#include "write/spool.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/status_macros.h"

namespace shardvec {
namespace {

// Record layout: u8 id kind (0 int, 1 string), i64 | (u32 len + bytes), dim x f32,
// u8 has payload, (u32 len + bytes). Native endianness: spools never leave this process.
template <typename T>
void AppendPod(std::string& buf, const T& value) {
  buf.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

void AppendBytes(std::string& buf, std::string_view bytes) {
  AppendPod(buf, static_cast<uint32_t>(bytes.size()));
  buf.append(bytes);
}

}  // namespace

SpoolWriter::SpoolWriter(std::filesystem::path path, size_t flush_bytes)
    : path_(std::move(path)), flush_bytes_(flush_bytes) {}

Status SpoolWriter::Append(const RecordId& id, const std::vector<float>& vector,
                           const std::optional<std::string>& payload_json) {
  if (const auto* i = std::get_if<int64_t>(&id)) {
    AppendPod(buffer_, uint8_t{0});
    AppendPod(buffer_, *i);
  } else {
    AppendPod(buffer_, uint8_t{1});
    AppendBytes(buffer_, std::get<std::string>(id));
  }
  buffer_.append(reinterpret_cast<const char*>(vector.data()), vector.size() * sizeof(float));
  AppendPod(buffer_, static_cast<uint8_t>(payload_json ? 1 : 0));
  if (payload_json) AppendBytes(buffer_, *payload_json);
  ++rows_;
  if (buffer_.size() >= flush_bytes_) return Flush();
  return Status::OK();
}

Status SpoolWriter::Flush() {
  if (buffer_.empty()) return Status::OK();
  // Opened per flush so thousands of shards never hold thousands of descriptors.
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IOError(fmt::format("cannot open spool '{}': {}", path_.string(), std::strerror(errno)));
  }
  const char* p = buffer_.data();
  size_t left = buffer_.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Status::IOError(fmt::format("cannot write spool '{}': {}", path_.string(), std::strerror(err)));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  ::close(fd);
  buffer_.clear();
  return Status::OK();
}

SpoolReader::SpoolReader(std::FILE* file, std::filesystem::path path, int64_t dim)
    : file_(file), path_(std::move(path)), dim_(dim) {}

SpoolReader::SpoolReader(SpoolReader&& other) noexcept
    : file_(std::exchange(other.file_, nullptr)), path_(std::move(other.path_)), dim_(other.dim_) {}

SpoolReader::~SpoolReader() {
  if (file_ != nullptr) std::fclose(file_);
}

Result<SpoolReader> SpoolReader::Open(const std::filesystem::path& path, int64_t dim) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status::IOError(fmt::format("cannot open spool '{}': {}", path.string(), std::strerror(errno)));
  }
  std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
  return SpoolReader(f, path, dim);
}

Status SpoolReader::ReadExact(void* dst, size_t size) {
  if (size == 0) return Status::OK();
  if (std::fread(dst, 1, size, file_) != size) {
    return Status::Corruption(fmt::format("spool '{}' is truncated", path_.string()));
  }
  return Status::OK();
}

Result<bool> SpoolReader::Next(RecordId* id, std::vector<float>* vector,
                               std::optional<std::string>* payload_json) {
  uint8_t kind;
  if (std::fread(&kind, 1, 1, file_) != 1) {
    if (std::feof(file_)) return false;
    return Status::IOError(fmt::format("cannot read spool '{}'", path_.string()));
  }
  auto read_string = [this](std::string* out) -> Status {
    uint32_t len;
    Status st = ReadExact(&len, sizeof(len));
    if (!st.ok()) return st;
    out->resize(len);
    return ReadExact(out->data(), len);
  };
  Status st;
  if (kind == 0) {
    int64_t value;
    st = ReadExact(&value, sizeof(value));
    *id = value;
  } else {
    std::string text;
    st = read_string(&text);
    *id = std::move(text);
  }
  if (!st.ok()) return st;
  vector->resize(static_cast<size_t>(dim_));
  st = ReadExact(vector->data(), vector->size() * sizeof(float));
  if (!st.ok()) return st;
  uint8_t has_payload;
  st = ReadExact(&has_payload, 1);
  if (!st.ok()) return st;
  if (has_payload) {
    std::string text;
    st = read_string(&text);
    if (!st.ok()) return st;
    *payload_json = std::move(text);
  } else {
    payload_json->reset();
  }
  return true;
}

ReplayableSource::ReplayableSource(RecordSource& stream, std::filesystem::path spool_path, int64_t dim)
    : stream_(stream), copy_(std::move(spool_path), 4u << 20), dim_(dim) {}

ReplayableSource::~ReplayableSource() {
  replay_.reset();
  std::error_code ec;
  std::filesystem::remove(copy_.path(), ec);
}

Result<bool> ReplayableSource::Next(Record* out) {
  if (replay_) {
    out->shard_id.reset();
    return replay_->Next(&out->id, &out->vector, &out->payload_json);
  }
  started_ = true;
  ASSIGN_OR_RETURN(bool more, stream_.Next(out));
  if (!more) {
    stream_done_ = true;
    return false;
  }
  RETURN_IF_ERROR(copy_.Append(out->id, out->vector, out->payload_json));
  return true;
}

Status ReplayableSource::Rewind() {
  if (!started_) return stream_.Rewind();
  if (!stream_done_) {
    return Status::Internal("a one-shot record stream cannot rewind before its first pass has ended");
  }
  RETURN_IF_ERROR(copy_.Flush());
  if (copy_.rows() == 0) std::ofstream(copy_.path(), std::ios::app);  // an empty stream replays as empty
  replay_.reset();
  ASSIGN_OR_RETURN(SpoolReader reader, SpoolReader::Open(copy_.path(), dim_));
  replay_.emplace(std::move(reader));
  return Status::OK();
}

std::optional<int64_t> ReplayableSource::SizeHint() const {
  if (stream_done_) return copy_.rows();
  return stream_.SizeHint();
}

}  // namespace shardvec
