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
void SetLe(char* p, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<char>((value >> (8 * i)) & 0xff);
}

template <typename T>
T GetLe(const char* p) {
  T value = 0;
  for (size_t i = 0; i < sizeof(T); ++i) value |= static_cast<T>(static_cast<unsigned char>(p[i])) << (8 * i);
  return value;
}

// An artifact of `count` entries, the header written and both sections zeroed.
std::string EmptyArtifact(int64_t count) {
  std::string out(kHeaderBytes + kEntryBytes * static_cast<size_t>(count), '\0');
  std::memcpy(out.data(), kMagic.data(), kMagic.size());
  SetLe<uint64_t>(out.data() + 8, static_cast<uint64_t>(count));
  return out;
}

}  // namespace

uint64_t IdIndexHash(const RecordId& id) { return Xxh3_64(EncodeOriginalId(id)); }

IdIndex::IdIndex() : bytes_(EmptyArtifact(0)) {}

IdIndex::IdIndex(std::vector<IdIndexEntry> entries) {
  // An update hands in the base's entries (sorted) followed by its new rows': only those are sorted,
  // then merged in, instead of sorting every entry again.
  const auto sorted_end = std::is_sorted_until(entries.begin(), entries.end());
  std::sort(sorted_end, entries.end());
  std::inplace_merge(entries.begin(), sorted_end, entries.end());
  count_ = static_cast<int64_t>(entries.size());
  bytes_ = EmptyArtifact(count_);
  char* hashes = bytes_.data() + kHeaderBytes;
  char* shards = hashes + 8 * entries.size();
  for (size_t i = 0; i < entries.size(); ++i) {
    SetLe<uint64_t>(hashes + 8 * i, entries[i].hash);
    SetLe<uint32_t>(shards + 4 * i, entries[i].db_id);
  }
}

Result<IdIndex> IdIndex::Parse(std::string bytes, int64_t num_dbs, std::string_view what) {
  auto corrupt = [&](std::string why) {
    return Status::Corruption(fmt::format("id index '{}' is malformed: {}", what, why));
  };
  if (bytes.size() < kHeaderBytes || std::string_view(bytes).substr(0, kMagic.size()) != kMagic) {
    return corrupt("it does not start with the SVIDX version 1 header");
  }
  const uint64_t count = GetLe<uint64_t>(bytes.data() + 8);
  if (count > (bytes.size() - kHeaderBytes) / kEntryBytes || kHeaderBytes + count * kEntryBytes != bytes.size()) {
    return corrupt(fmt::format("{} bytes cannot hold the {} entries its header declares", bytes.size(), count));
  }
  IdIndex index(std::move(bytes), static_cast<int64_t>(count));
  IdIndexEntry previous;
  for (int64_t i = 0; i < index.count_; ++i) {
    const IdIndexEntry e = index.entry(i);
    if (static_cast<int64_t>(e.db_id) >= num_dbs) {
      return corrupt(fmt::format("entry {} names db_id {}, but the snapshot has {} shards", i, e.db_id, num_dbs));
    }
    if (i > 0 && e < previous) return corrupt(fmt::format("entry {} is out of order", i));
    previous = e;
  }
  return index;
}

IdIndex IdIndex::Merged(const IdIndex& base, const std::vector<bool>& keep, std::vector<IdIndexEntry> added) {
  std::sort(added.begin(), added.end());
  int64_t count = static_cast<int64_t>(added.size());
  for (int64_t i = 0; i < base.count_; ++i) count += keep[static_cast<size_t>(i)] ? 1 : 0;
  std::string out = EmptyArtifact(count);
  char* hashes = out.data() + kHeaderBytes;
  char* shards = hashes + 8 * static_cast<size_t>(count);
  size_t n = 0;
  const auto put = [&](const IdIndexEntry& e) {
    SetLe<uint64_t>(hashes + 8 * n, e.hash);
    SetLe<uint32_t>(shards + 4 * n, e.db_id);
    ++n;
  };
  size_t a = 0;
  for (int64_t i = 0; i < base.count_; ++i) {
    if (!keep[static_cast<size_t>(i)]) continue;
    const IdIndexEntry e = base.entry(i);
    for (; a < added.size() && added[a] < e; ++a) put(added[a]);
    put(e);
  }
  for (; a < added.size(); ++a) put(added[a]);
  return IdIndex(std::move(out), count);
}

uint64_t IdIndex::hash(int64_t i) const {
  return GetLe<uint64_t>(bytes_.data() + kHeaderBytes + 8 * static_cast<size_t>(i));
}

IdIndexEntry IdIndex::entry(int64_t i) const {
  const char* shards = bytes_.data() + kHeaderBytes + 8 * static_cast<size_t>(count_);
  return IdIndexEntry{hash(i), GetLe<uint32_t>(shards + 4 * static_cast<size_t>(i))};
}

std::vector<IdIndexEntry> IdIndex::entries() const {
  std::vector<IdIndexEntry> out;
  out.reserve(static_cast<size_t>(count_));
  for (int64_t i = 0; i < count_; ++i) out.push_back(entry(i));
  return out;
}

std::vector<int64_t> IdIndex::ShardsOf(uint64_t hash_value) const {
  std::vector<int64_t> shards;
  int64_t lo = 0, hi = count_;  // the first entry whose hash is >= hash_value
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (hash(mid) < hash_value) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  for (int64_t i = lo; i < count_ && hash(i) == hash_value; ++i) {
    const int64_t db = entry(i).db_id;
    if (shards.empty() || shards.back() != db) shards.push_back(db);
  }
  return shards;
}

void AppendShardEntries(std::vector<IdIndexEntry>& entries, int64_t db_id, std::vector<uint64_t> hashes) {
  for (uint64_t hash : hashes) entries.push_back(IdIndexEntry{hash, static_cast<uint32_t>(db_id)});
}

int64_t IdIndexBytes(int64_t rows) { return static_cast<int64_t>(kHeaderBytes + kEntryBytes * rows); }

Status WriteIdIndex(ObjectStore& store, std::string_view run_id, const IdIndex& index, Manifest& manifest) {
  const std::string key = VectorMetaKey(run_id, kIdIndexFileName);
  RETURN_IF_ERROR(store.PutIfAbsent(key, index.bytes()));
  manifest.custom["shardvec"]["id_index"] = {
      {"format", 1}, {"ref", store.Url(key)}, {"digest", Xxh3Digest(index.bytes())}, {"entries", index.size()}};
  return Status::OK();
}

Status WriteIdIndex(ObjectStore& store, std::string_view run_id, std::vector<IdIndexEntry> entries,
                    Manifest& manifest) {
  return WriteIdIndex(store, run_id, IdIndex(std::move(entries)), manifest);  // the sorted entries go once encoded
}

}  // namespace shardvec
