#include "write/id_index.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/digest.h"
#include "common/status_macros.h"
#include "format/keys.h"
#include "shard/shard_builder.h"

namespace shardvec {
namespace {

constexpr std::string_view kMagic("SVIDX\x01\x00\x00", 8);
constexpr size_t kHeaderBytes = 16;
constexpr size_t kEntryBytes = 12;

template <typename T>
void PutLe(std::string& out, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

template <typename T>
T GetLe(const char* p) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(static_cast<unsigned char>(p[i])) << (8 * i);
  return value;
}

}  // namespace

uint64_t IdIndexHash(const RecordId& id) { return Xxh3_64(EncodeOriginalId(id)); }

IdIndex::IdIndex(std::vector<IdIndexEntry> entries) : entries_(std::move(entries)) {
  // An update hands in the base's entries (sorted) followed by its new rows': only those are sorted,
  // then merged in, instead of sorting every entry again.
  const auto sorted_end = std::is_sorted_until(entries_.begin(), entries_.end());
  std::sort(sorted_end, entries_.end());
  std::inplace_merge(entries_.begin(), sorted_end, entries_.end());
}

Result<IdIndex> IdIndex::Parse(std::string_view bytes, int64_t num_dbs, std::string_view what) {
  auto corrupt = [&](std::string why) {
    return Status::Corruption(fmt::format("id index '{}' is malformed: {}", what, why));
  };
  if (bytes.size() < kHeaderBytes || bytes.substr(0, kMagic.size()) != kMagic) {
    return corrupt("it does not start with the SVIDX version 1 header");
  }
  const uint64_t count = GetLe<uint64_t>(bytes.data() + 8);
  if (count > (bytes.size() - kHeaderBytes) / kEntryBytes || kHeaderBytes + count * kEntryBytes != bytes.size()) {
    return corrupt(fmt::format("{} bytes cannot hold the {} entries its header declares", bytes.size(), count));
  }
  IdIndex index;
  index.entries_.resize(count);
  const char* hashes = bytes.data() + kHeaderBytes;
  const char* shards = hashes + count * 8;
  for (uint64_t i = 0; i < count; ++i) {
    IdIndexEntry& e = index.entries_[i];
    e.hash = GetLe<uint64_t>(hashes + i * 8);
    e.db_id = GetLe<uint32_t>(shards + i * 4);
    if (static_cast<int64_t>(e.db_id) >= num_dbs) {
      return corrupt(fmt::format("entry {} names db_id {}, but the snapshot has {} shards", i, e.db_id, num_dbs));
    }
    if (i > 0 && e < index.entries_[i - 1]) return corrupt(fmt::format("entry {} is out of order", i));
  }
  return index;
}

std::string IdIndex::Encode() const {
  std::string out(kMagic);
  out.reserve(kHeaderBytes + entries_.size() * kEntryBytes);
  PutLe<uint64_t>(out, entries_.size());
  for (const IdIndexEntry& e : entries_) PutLe<uint64_t>(out, e.hash);
  for (const IdIndexEntry& e : entries_) PutLe<uint32_t>(out, e.db_id);
  return out;
}

std::vector<int64_t> IdIndex::ShardsOf(uint64_t hash) const {
  std::vector<int64_t> shards;
  auto it = std::lower_bound(entries_.begin(), entries_.end(), IdIndexEntry{hash, 0});
  for (; it != entries_.end() && it->hash == hash; ++it) {
    if (shards.empty() || shards.back() != it->db_id) shards.push_back(it->db_id);
  }
  return shards;
}

void AppendShardEntries(std::vector<IdIndexEntry>& entries, int64_t db_id, std::vector<uint64_t> hashes) {
  for (uint64_t hash : hashes) entries.push_back(IdIndexEntry{hash, static_cast<uint32_t>(db_id)});
}

int64_t IdIndexBytes(int64_t rows) { return static_cast<int64_t>(kHeaderBytes + kEntryBytes * rows); }

Status WriteIdIndex(ObjectStore& store, std::string_view run_id, std::vector<IdIndexEntry> entries,
                    Manifest& manifest) {
  const auto count = static_cast<int64_t>(entries.size());
  std::string bytes = IdIndex(std::move(entries)).Encode();  // the sorted entries go once encoded
  const std::string key = VectorMetaKey(run_id, kIdIndexFileName);
  RETURN_IF_ERROR(store.PutIfAbsent(key, bytes));
  manifest.custom["shardvec"]["id_index"] = {
      {"format", 1}, {"ref", store.Url(key)}, {"digest", Xxh3Digest(bytes)}, {"entries", count}};
  return Status::OK();
}

}  // namespace shardvec
