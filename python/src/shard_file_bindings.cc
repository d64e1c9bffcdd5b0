// shardvec._engine's single-shard classes for shardvec.sqlite_vec_adapter: ShardFile opens one shard
// file and searches it (the reader's ShardSearcher), ShardFileBuilder builds one (the writer's
// ShardBuilder, rows checked as the writer checks them), and two functions move one shard file
// between a store and a local path.
#include <fmt/format.h>

#include "common/private_dir.h"
#include "engine_common.h"
#include "shard/shard_builder.h"
#include "shard/shard_searcher.h"
#include "shard/sqlite_vec.h"
#include "write/record_check.h"

namespace shardvec::py {
namespace {

class ShardFile {
 public:
  explicit ShardFile(const std::string& path) {
    Result<std::unique_ptr<ShardSearcher>> opened = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      opened = [&]() -> Result<std::unique_ptr<ShardSearcher>> {
        RETURN_IF_ERROR(EnsureSqliteVecLoaded());
        return ShardSearcher::OpenDeclared(path, path);
      }();
    }
    searcher_ = Unwrap(std::move(opened));
  }

  // The k nearest rows as (id, score, payload text or None), nearest first.
  nb::list Search(const FloatVector& query, int64_t k) {
    ShardSearcher& searcher = Open();
    if (static_cast<int64_t>(query.size()) != searcher.dim()) {
      Raise(Status::InvalidArgument(fmt::format("query has {} values, expected dim={}", query.size(), searcher.dim())));
    }
    Result<std::vector<ShardHit>> hits = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      hits = searcher.Search(query.data(), k);
    }
    nb::list out;
    for (const ShardHit& h : Unwrap(std::move(hits))) {
      nb::object payload = h.payload_json ? nb::object(TextToPython(*h.payload_json)) : nb::none();
      out.append(nb::make_tuple(IdToPython(h.id), h.score, payload));
    }
    return out;
  }

  std::optional<nb::bytes> Get(const nb::bytes& key) {
    ShardSearcher& searcher = Open();
    const std::string k(key.c_str(), key.size());
    Result<std::optional<std::string>> value = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      value = searcher.GetKv(k);
    }
    std::optional<std::string> v = Unwrap(std::move(value));
    if (!v) return std::nullopt;
    return nb::bytes(v->data(), v->size());
  }

  int64_t Dim() { return Open().dim(); }
  std::string MetricText() { return std::string(MetricName(Open().metric())); }
  void Close() { searcher_.reset(); }

 private:
  ShardSearcher& Open() {
    if (!searcher_) Raise(Status::FailedPrecondition("the shard file is closed").WithKind(ErrorKind::kReaderClosed));
    return *searcher_;
  }
  std::unique_ptr<ShardSearcher> searcher_;
};

class ShardFileBuilder {
 public:
  ShardFileBuilder(const std::string& path, int64_t dim, Metric metric, int64_t page_size)
      : dim_(dim), metric_(metric) {
    ShardBuildOptions options;
    options.dim = dim;
    options.metric = metric;
    options.page_size = page_size;
    Result<std::unique_ptr<ShardBuilder>> made = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      made = [&]() -> Result<std::unique_ptr<ShardBuilder>> {
        if (dim <= 0) return Status::InvalidArgument(fmt::format("dim must be > 0 (got {})", dim));
        RETURN_IF_ERROR(EnsureSqliteVecLoaded());
        return ShardBuilder::Create(path, options);
      }();
    }
    builder_ = Unwrap(std::move(made));
  }

  // Adds rows as the writer does: each vector, id and payload checked (errors name the row), the
  // payload stored in its canonical form.
  void Add(const FloatMatrix& vectors, std::optional<Int64Vector> int_ids, std::vector<std::string> str_ids,
           std::vector<std::optional<std::string>> payloads) {
    ShardBuilder& builder = Open();
    if (static_cast<int64_t>(vectors.shape(1)) != dim_) {
      Raise(Status::InvalidArgument(fmt::format("vectors have {} columns, expected dim={}", vectors.shape(1), dim_)));
    }
    const PyRecordBatch batch(vectors, int_ids, std::move(str_ids), std::move(payloads), std::nullopt);
    Status added;
    {
      nb::gil_scoped_release release;
      added = [&]() -> Status {
        RecordBatchSource rows(batch.view());
        Record record;
        for (;;) {
          ASSIGN_OR_RETURN(bool more, rows.Next(&record));
          if (!more) return Status::OK();
          const int64_t row = rows_++;
          RETURN_IF_ERROR(CheckRecordVector(record, record.vector, dim_, metric_, row));
          ASSIGN_OR_RETURN(std::optional<std::string> payload, CanonicalPayload(record, row));
          RETURN_IF_ERROR(builder.Add(record.id, record.vector.data(), payload));
        }
      }();
    }
    if (!added.ok()) Raise(added);
  }

  // Commits and closes the file; returns its size in bytes.
  int64_t Seal() {
    ShardBuilder& builder = Open();
    Result<int64_t> size = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      size = builder.Seal();
    }
    builder_.reset();
    return Unwrap(std::move(size));
  }

  int64_t RowCount() const { return rows_; }

 private:
  ShardBuilder& Open() {
    if (!builder_) Raise(Status::FailedPrecondition("the shard file is sealed"));
    return *builder_;
  }
  int64_t dim_;
  Metric metric_;
  int64_t rows_ = 0;
  std::unique_ptr<ShardBuilder> builder_;
};

// Uploads the local file `path` to `key` under the store prefix `store`.
void PutShardFile(const std::string& store, const StoreOptions& options, const std::string& key,
                  const std::string& path) {
  Status put;
  {
    nb::gil_scoped_release release;
    put = [&]() -> Status {
      ASSIGN_OR_RETURN(std::shared_ptr<ObjectStore> opened, OpenStore(store, options));
      return opened->PutFile(key, path);
    }();
  }
  if (!put.ok()) Raise(put);
}

// Downloads `key` under the store prefix `store` to `dest` (written whole, then renamed into place;
// never more bytes than the object's size when the download started).
void GetShardFile(const std::string& store, const StoreOptions& options, const std::string& key,
                  const std::string& dest) {
  Status got;
  {
    nb::gil_scoped_release release;
    got = [&]() -> Status {
      ASSIGN_OR_RETURN(std::shared_ptr<ObjectStore> opened, OpenStore(store, options));
      ASSIGN_OR_RETURN(ObjectInfo head, opened->Head(key));
      return opened->GetToFile(key, dest, head.size);
    }();
  }
  if (!got.ok()) Raise(got);
}

// Creates `path` (missing folders 0700) and refuses it unless this user owns it and no one else may
// write it: files in it are trusted once fetched or built.
void EnsurePrivate(const std::string& path, const std::string& what) {
  if (Status s = EnsurePrivateFolder(path, what); !s.ok()) Raise(s);
}

}  // namespace

void BindShardFiles(nb::module_& m) {
  m.def("ensure_private_folder", &EnsurePrivate, nb::arg("path"), nb::arg("what"),
        "Creates path (0700) if missing and refuses a folder another user owns or may write; `what` names it.");
  nb::class_<ShardFile>(m, "ShardFile", "One shard file opened read-only on its own (its declared dim and metric).")
      .def(nb::init<const std::string&>(), nb::arg("path"))
      .def("search", &ShardFile::Search, nb::arg("query"), nb::arg("k"),
           "The k nearest rows as (id, score, payload text or None), nearest first (without the GIL).")
      .def("get", &ShardFile::Get, nb::arg("key"), "The kv table's value for key, or None.")
      .def_prop_ro("dim", &ShardFile::Dim)
      .def_prop_ro("metric", &ShardFile::MetricText)
      .def("close", &ShardFile::Close);
  nb::class_<ShardFileBuilder>(m, "ShardFileBuilder", "Builds one shard file (fails if the path exists).")
      .def(nb::init<const std::string&, int64_t, Metric, int64_t>(), nb::arg("path"), nb::arg("dim"),
           nb::arg("metric"), nb::arg("page_size"))
      .def("add", &ShardFileBuilder::Add, nb::arg("vectors"), nb::arg("int_ids").none(), nb::arg("str_ids"),
           nb::arg("payloads"), "Adds rows (checked as the writer checks them; errors name the row).")
      .def("seal", &ShardFileBuilder::Seal, "Commits and closes the file; returns its size in bytes.")
      .def_prop_ro("row_count", &ShardFileBuilder::RowCount);
  m.def("put_shard_file", &PutShardFile, nb::arg("store"), nb::arg("store_options"), nb::arg("key"), nb::arg("path"),
        "Uploads a local file to key under the store prefix.");
  m.def("get_shard_file", &GetShardFile, nb::arg("store"), nb::arg("store_options"), nb::arg("key"),
        nb::arg("dest"), "Downloads key under the store prefix to dest (written whole, then renamed into place).");
}

}  // namespace shardvec::py
