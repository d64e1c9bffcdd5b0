// CopySnapshots (shardvec/copy.h): the objects of the plan (snapshot/copy_plan.h) in parallel, each
// verified against its manifest on the way through a private staging folder; then the rewritten
// manifests; then DST's _CURRENT.
#include "shardvec/copy.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <future>
#include <mutex>
#include <system_error>

#include "common/digest.h"
#include "common/private_dir.h"
#include "common/random_id.h"
#include "common/status_macros.h"
#include "common/thread_pool.h"
#include "format/keys.h"
#include "format/manifest.h"
#include "shardvec/manifest_store.h"
#include "snapshot/copy_plan.h"

namespace shardvec {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kDefaultCopyWorkers = 8;

// A folder of this copy's own inside the staging folder, removed with everything in it at the end.
class StagingFolder {
 public:
  static Result<std::unique_ptr<StagingFolder>> Create(const std::string& staging_dir) {
    fs::path base;
    if (staging_dir.empty()) {
      ASSIGN_OR_RETURN(base, EnsureDefaultPrivateFolder({"copy"}, "copy staging folder (staging_dir)"));
    } else {
      base = staging_dir;
      RETURN_IF_ERROR(EnsurePrivateFolder(base, "copy staging folder (staging_dir)"));
    }
    const fs::path path = base / ("copy-" + NewUuidHex());
    RETURN_IF_ERROR(EnsurePrivateFolder(path, "copy staging folder (staging_dir)"));
    return std::unique_ptr<StagingFolder>(new StagingFolder(path));
  }
  ~StagingFolder() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  explicit StagingFolder(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

// Removes a staged file when it goes out of scope.
struct StagedFile {
  fs::path path;
  ~StagedFile() {
    std::error_code ignored;
    fs::remove(path, ignored);
  }
};

struct Outcome {
  bool copied = false;
  int64_t bytes = 0;
};

class ObjectCopier {
 public:
  ObjectCopier(ObjectStore& src, ObjectStore& dst, const fs::path& staging) : src_(src), dst_(dst), staging_(staging) {}

  Result<Outcome> Copy(const CopyObject& object, size_t index) {
    auto head = dst_.Head(object.dst_key);
    if (head.ok()) return KeepExisting(object, index, head->size);
    if (head.status().code() != StatusCode::kNotFound) return head.status().WithContext("DST");
    StagedFile staged{staging_ / fmt::format("{}.src", index)};
    ASSIGN_OR_RETURN(FileDigest got, FetchVerified(object, staged.path));
    Status put = dst_.PutFile(object.dst_key, staged.path);
    // Another copy wrote it meanwhile: kept only when it is the same object.
    if (put.code() == StatusCode::kAlreadyExists) return KeepExisting(object, index, std::nullopt);
    RETURN_IF_ERROR(put.WithContext(fmt::format("writing '{}'", dst_.Url(object.dst_key))));
    return Outcome{true, got.size};
  }

 private:
  // SRC's object staged at `path`, checked against the size and digest its manifest records.
  Result<FileDigest> FetchVerified(const CopyObject& object, const fs::path& path) {
    const std::string url = src_.Url(object.src_key);
    RETURN_IF_ERROR(src_.GetToScratchFile(object.src_key, path, object.max_bytes).WithContext(fmt::format("SRC object '{}'", url)));
    ASSIGN_OR_RETURN(FileDigest got, DigestFile(path));
    if (object.size && got.size != *object.size) {
      return Status::Corruption(fmt::format("SRC object '{}' has {} bytes, but its manifest records {}; nothing of "
                                            "it was copied", url, got.size, *object.size));
    }
    if (object.digest && got.digest != *object.digest) {
      return Status::Corruption(fmt::format("SRC object '{}' has digest {}, but its manifest records {}; nothing "
                                            "of it was copied", url, got.digest, *object.digest));
    }
    return got;
  }

  // DST already holds the key (a resumed copy): kept when it is the same object, never overwritten.
  Result<Outcome> KeepExisting(const CopyObject& object, size_t index, std::optional<int64_t> dst_size) {
    const std::string url = dst_.Url(object.dst_key);
    auto differs = [&](std::string what) {
      return Status::Conflict(fmt::format("DST object '{}' differs from SRC's '{}' ({}); the copy never overwrites: "
                                          "delete it, or copy into another prefix",
                                          url, src_.Url(object.src_key), what));
    };
    if (dst_size && object.size && *dst_size != *object.size) {
      return differs(fmt::format("{} bytes, not {}", *dst_size, *object.size));
    }
    StagedFile there{staging_ / fmt::format("{}.dst", index)};
    RETURN_IF_ERROR(dst_.GetToScratchFile(object.dst_key, there.path, object.max_bytes).WithContext(fmt::format("DST object '{}'", url)));
    ASSIGN_OR_RETURN(FileDigest have, DigestFile(there.path));
    FileDigest want{object.digest.value_or(""), object.size.value_or(have.size)};
    if (!object.digest) {
      // Nothing recorded: SRC's bytes are the reference.
      StagedFile staged{staging_ / fmt::format("{}.src", index)};
      ASSIGN_OR_RETURN(want, FetchVerified(object, staged.path));
    }
    if (have.size != want.size || have.digest != want.digest) {
      return differs(fmt::format("{} bytes with digest {}, not {} bytes with digest {}", have.size, have.digest,
                                 want.size, want.digest));
    }
    return Outcome{false, have.size};
  }

  ObjectStore& src_;
  ObjectStore& dst_;
  const fs::path& staging_;
};

// Copies every object on `workers` threads; the first failure (in key order) is the result, and no
// object starts after one failed.
Status CopyObjects(ObjectStore& src, ObjectStore& dst, const std::vector<CopyObject>& objects, int64_t workers,
                   const fs::path& staging, const CopyOptions& options, CopyReport& report) {
  if (objects.empty()) return Status::OK();
  ASSIGN_OR_RETURN(std::unique_ptr<ThreadPool> pool,
                   ThreadPool::Create(static_cast<size_t>(std::min<int64_t>(workers, objects.size())), "copy workers"));
  ObjectCopier copier(src, dst, staging);
  std::atomic<bool> failed{false};
  std::mutex mu;
  CopyProgress progress{0, static_cast<int64_t>(objects.size()), 0};
  std::vector<std::future<Status>> done;
  done.reserve(objects.size());
  for (size_t i = 0; i < objects.size(); ++i) {
    done.push_back(pool->Submit([&, i]() -> Status {
      if (failed.load()) return Status::OK();
      auto outcome = copier.Copy(objects[i], i);
      if (!outcome.ok()) {
        failed.store(true);
        return outcome.status();
      }
      std::lock_guard<std::mutex> lock(mu);
      (outcome->copied ? report.objects_copied : report.objects_skipped) += 1;
      (outcome->copied ? report.bytes_copied : report.bytes_skipped) += outcome->bytes;
      progress.objects_done += 1;
      progress.bytes_done += outcome->bytes;
      if (options.progress) options.progress(progress);
      return Status::OK();
    }));
  }
  Status first;
  for (std::future<Status>& f : done) {
    Status st = f.get();
    if (first.ok() && !st.ok()) first = std::move(st);
  }
  return first;
}

// The manifest in DST (put-if-absent); one already there must be the same manifest.
Status PutManifest(ObjectStore& dst, const CopyManifest& m) {
  ASSIGN_OR_RETURN(std::string bytes, SerializeManifest(m.rewritten));
  Status put = dst.PutIfAbsent(m.key, bytes);
  if (put.code() != StatusCode::kAlreadyExists) return put.WithContext(fmt::format("writing '{}'", dst.Url(m.key)));
  ASSIGN_OR_RETURN(std::string there, dst.Get(m.key, kMaxManifestBytes));
  auto parsed = ParseManifest(there);
  if (parsed.ok()) {
    ASSIGN_OR_RETURN(std::string again, SerializeManifest(*parsed));
    if (again == bytes) return Status::OK();
  }
  return Status::Conflict(fmt::format("DST manifest '{}' differs from the one the copy writes; the copy never "
                                      "overwrites: delete it, or copy into another prefix", dst.Url(m.key)));
}

// DST's pointer may name nothing, or a manifest SRC holds too (an earlier copy): anything else is
// another store's live snapshot, which a copy must not replace.
Status CheckDstPointer(const ObjectStore& dst, const std::optional<ManifestRef>& current, const CopyPlan& plan) {
  if (!current) return Status::OK();
  const auto dir = ParseManifestRef(current->ref);
  const std::string key = dir ? ManifestKey(dir->timestamp, dir->run_id) : std::string();
  if (std::find(plan.src_manifest_keys.begin(), plan.src_manifest_keys.end(), key) != plan.src_manifest_keys.end()) {
    return Status::OK();
  }
  return Status::Conflict(fmt::format(
      "DST '{}' already serves snapshot '{}', which SRC does not hold; copy into an empty prefix (or one an "
      "earlier copy of SRC wrote)", dst.PrefixUrl(), current->ref));
}

}  // namespace

Result<CopyReport> CopySnapshots(ObjectStore& src, ObjectStore& dst, const CopyOptions& options) {
  if (options.max_workers < 0 || options.max_workers > kMaxPoolThreads) {
    return Status::InvalidArgument(fmt::format("max_workers must be in 0..{} (0 = {}), got {}", kMaxPoolThreads,
                                               kDefaultCopyWorkers, options.max_workers));
  }
  if (TrimTrailingSlashes(src.PrefixUrl()) == TrimTrailingSlashes(dst.PrefixUrl())) {
    return Status::InvalidArgument(fmt::format("SRC and DST are the same store '{}'", src.PrefixUrl()));
  }
  ASSIGN_OR_RETURN(CopyPlan plan, PlanCopy(src, dst, options));
  auto dst_manifests = MakeObjectManifestStore(dst);
  auto dst_current = dst_manifests->LoadCurrent();
  if (!dst_current.ok()) return dst_current.status().WithContext(fmt::format("DST '{}': _CURRENT", dst.PrefixUrl()));
  RETURN_IF_ERROR(CheckDstPointer(dst, *dst_current, plan));

  CopyReport report;
  ASSIGN_OR_RETURN(std::unique_ptr<StagingFolder> staging, StagingFolder::Create(options.staging_dir));
  const int64_t workers = options.max_workers > 0 ? options.max_workers : kDefaultCopyWorkers;
  RETURN_IF_ERROR(CopyObjects(src, dst, plan.objects, workers, staging->path(), options, report));
  for (const CopyManifest& m : plan.manifests) {
    RETURN_IF_ERROR(PutManifest(dst, m));
    report.manifests.push_back(dst.Url(m.key));
  }
  if (!plan.current) return report;
  const CopyManifest& target = plan.manifests[*plan.current];
  report.current_ref = dst.Url(target.key);
  report.run_id = target.run_id;
  if (*dst_current && (*dst_current)->ref == report.current_ref) return report;
  Status swapped = dst_manifests->SetCurrent(report.current_ref, dst_current->value_or(ManifestRef{}));
  if (!swapped.ok()) return swapped.WithContext(fmt::format("DST '{}': moving _CURRENT", dst.PrefixUrl()));
  return report;
}

}  // namespace shardvec
