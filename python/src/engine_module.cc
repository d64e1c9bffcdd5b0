// shardvec._engine: the C++ writer and reader for the Python package. Arrays come in without a copy
// (nanobind ndarray views), the GIL is released while the engine works, and every engine Status
// becomes the exception class shardvec.errors.error_from_engine picks.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <limits>
#include <span>

#include "shardvec/reader.h"
#include "shardvec/writer.h"

namespace nb = nanobind;

namespace shardvec {
namespace {

using FloatMatrix = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using FloatVector = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Int64Vector = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

[[noreturn]] void Raise(const Status& status) {
  nb::object errors = nb::module_::import_("shardvec.errors");
  nb::object exc = errors.attr("error_from_engine")(std::string(StatusCodeName(status.code())), status.message());
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw nb::python_error();
}

template <typename T>
T Unwrap(Result<T> result) {
  if (!result.ok()) Raise(result.status());
  return std::move(result).value();
}

Matrix CopyMatrix(const FloatMatrix& m) {
  Matrix out{static_cast<int64_t>(m.shape(0)), static_cast<int64_t>(m.shape(1)), {}};
  out.data.assign(m.data(), m.data() + m.size());
  return out;
}

// In a shard_ids array: "this record has no shard_id" (shardvec.vector.writer.NO_SHARD_ID).
constexpr int64_t kNoShardId = std::numeric_limits<int64_t>::min();

// Rows of caller-owned arrays, read in place: only the current row is copied into a Record.
class ArraySource final : public RecordSource {
 public:
  ArraySource(const FloatMatrix& vectors, std::optional<Int64Vector> int_ids, std::vector<std::string> str_ids,
              std::vector<std::optional<std::string>> payloads, std::optional<Int64Vector> shard_ids)
      : vectors_(vectors.data()),
        rows_(static_cast<int64_t>(vectors.shape(0))),
        dim_(static_cast<int64_t>(vectors.shape(1))),
        int_ids_(int_ids ? int_ids->data() : nullptr),
        str_ids_(std::move(str_ids)),
        payloads_(std::move(payloads)),
        shard_ids_(shard_ids ? shard_ids->data() : nullptr) {}

  Result<bool> Next(Record* out) override {
    if (next_ >= rows_) return false;
    const int64_t i = next_++;
    if (int_ids_) {
      out->id = int_ids_[i];
    } else if (!str_ids_.empty()) {
      out->id = str_ids_[static_cast<size_t>(i)];
    } else {
      out->id = i;
    }
    out->vector.assign(vectors_ + i * dim_, vectors_ + (i + 1) * dim_);
    out->payload_json = payloads_.empty() ? std::nullopt : payloads_[static_cast<size_t>(i)];
    out->shard_id = shard_ids_ && shard_ids_[i] != kNoShardId ? std::optional<int64_t>(shard_ids_[i]) : std::nullopt;
    return true;
  }
  Status Rewind() override {
    next_ = 0;
    return Status::OK();
  }
  std::optional<int64_t> SizeHint() const override { return rows_; }

 private:
  const float* vectors_;
  int64_t rows_, dim_;
  const int64_t* int_ids_;
  std::vector<std::string> str_ids_;
  std::vector<std::optional<std::string>> payloads_;
  const int64_t* shard_ids_;
  int64_t next_ = 0;
};

// A one-shot stream of batches from Python: `next_batch()` returns (vectors, int_ids, str_ids, payloads,
// shard_ids) with the ArraySource shapes, or None at the end. Only the current batch is alive; the GIL is
// taken just to fetch the next one. An exception raised by `next_batch` is kept and re-raised as itself.
// Created and destroyed with the GIL held (it owns Python objects).
class StreamSource final : public RecordSource {
 public:
  StreamSource(nb::callable next_batch, std::optional<int64_t> size_hint)
      : next_batch_(std::move(next_batch)), size_hint_(size_hint) {}
  Result<bool> Next(Record* out) override {
    for (;;) {
      if (batch_) {
        Result<bool> more = batch_->rows.Next(out);
        if (!more.ok() || *more) return more;
      }
      if (done_) return false;
      started_ = true;
      nb::gil_scoped_acquire gil;
      batch_.reset();
      try {
        nb::object next = next_batch_();
        if (next.is_none()) {
          done_ = true;
          return false;
        }
        auto [vectors, int_ids, str_ids, payloads, shard_ids] =
            nb::cast<std::tuple<FloatMatrix, std::optional<Int64Vector>, std::vector<std::string>,
                                std::vector<std::optional<std::string>>, std::optional<Int64Vector>>>(next);
        batch_.emplace(vectors, int_ids, std::move(str_ids), std::move(payloads), shard_ids);
      } catch (nb::python_error& e) {
        error_.emplace(std::move(e));
        return Status::Internal("the record iterator raised an exception");  // replaced by that exception
      } catch (const std::exception& e) {
        return Status::InvalidArgument(std::string("a record batch has the wrong types: ") + e.what());
      }
    }
  }
  Status Rewind() override {
    if (started_) return Status::Internal("a Python record iterator cannot be rewound");
    return Status::OK();
  }
  bool CanRewind() const override { return false; }
  std::optional<int64_t> SizeHint() const override { return size_hint_; }
  // Re-raises the iterator's own exception, if it raised one.
  void RethrowIteratorError() {
    if (error_) {
      error_->restore();
      throw nb::python_error();
    }
  }

 private:
  // The arrays stay referenced while ArraySource reads them in place.
  struct Batch {
    Batch(FloatMatrix v, std::optional<Int64Vector> i, std::vector<std::string> s,
          std::vector<std::optional<std::string>> p, std::optional<Int64Vector> sh)
        : vectors(std::move(v)), int_ids(std::move(i)), shard_ids(std::move(sh)),
          rows(vectors, int_ids, std::move(s), std::move(p), shard_ids) {}
    FloatMatrix vectors;
    std::optional<Int64Vector> int_ids;
    std::optional<Int64Vector> shard_ids;
    ArraySource rows;
  };

  nb::callable next_batch_;
  std::optional<int64_t> size_hint_;
  std::optional<Batch> batch_;
  std::optional<nb::python_error> error_;
  bool started_ = false;
  bool done_ = false;
};

StoreOptions ToStoreOptions(const std::map<std::string, std::string>& o) {
  StoreOptions s;
  auto get = [&](const char* key, std::string& field) {
    if (auto it = o.find(key); it != o.end()) field = it->second;
  };
  get("endpoint_url", s.endpoint_url);
  get("region", s.region);
  get("profile", s.profile);
  get("addressing_style", s.addressing_style);
  get("access_key_id", s.access_key_id);
  get("secret_access_key", s.secret_access_key);
  get("session_token", s.session_token);
  get("ca_bundle", s.ca_bundle);
  if (auto it = o.find("max_attempts"); it != o.end()) s.max_attempts = std::stoi(it->second);
  if (auto it = o.find("connect_timeout"); it != o.end()) s.connect_timeout_seconds = std::stod(it->second);
  if (auto it = o.find("read_timeout"); it != o.end()) s.request_timeout_seconds = std::stod(it->second);
  if (auto it = o.find("verify_tls"); it != o.end()) s.verify_tls = it->second != "false";
  return s;
}

nb::dict BuildResultDict(const BuildResult& r) {
  nb::dict d;
  d["run_id"] = r.run_id;
  d["manifest_ref"] = r.manifest_ref;
  d["num_dbs"] = r.num_dbs;
  d["total_vectors"] = r.total_vectors;
  d["elapsed_ms"] = r.elapsed_ms;
  nb::list shards;
  for (const ShardInfo& s : r.shards) {
    nb::dict sd;
    sd["db_id"] = s.db_id;
    sd["db_url"] = s.db_url;
    sd["row_count"] = s.row_count;
    sd["db_bytes"] = s.db_bytes;
    sd["checkpoint_id"] = s.checkpoint_id;
    sd["digest"] = s.digest;
    shards.append(sd);
  }
  d["shards"] = shards;
  return d;
}

nb::dict Write(const std::string& store, const std::map<std::string, std::string>& store_options, int64_t dim,
               const std::string& metric, const std::string& strategy, std::optional<int64_t> num_dbs,
               int64_t num_probes, bool train_centroids, std::optional<FloatMatrix> centroids,
               int64_t sample_size, std::optional<int64_t> num_hash_bits, std::optional<FloatMatrix> hyperplanes,
               std::optional<std::string> run_id, const std::string& local_root, int64_t batch_size,
               int64_t max_parallel_shards, bool last_writer_wins, const std::string& index_type,
               std::optional<std::string> quantization, const std::map<std::string, std::string>& custom_json,
               std::optional<FloatMatrix> vectors, std::optional<Int64Vector> int_ids,
               std::vector<std::string> str_ids, std::vector<std::optional<std::string>> payloads,
               std::optional<Int64Vector> shard_ids, std::optional<nb::callable> next_batch,
               std::optional<int64_t> size_hint) {
  WriteConfig c;
  c.store = store;
  c.store_options = ToStoreOptions(store_options);
  c.index.dim = dim;
  c.index.metric = Unwrap(ParseMetric(metric, "index_config.metric"));
  c.index.index_type = index_type;
  c.index.quantization = quantization;
  c.sharding.strategy = Unwrap(ParseStrategy(strategy, "sharding.strategy"));
  c.sharding.num_dbs = num_dbs;
  c.sharding.num_probes = num_probes;
  c.sharding.train_centroids = train_centroids;
  c.sharding.centroids_training_sample_size = sample_size;
  if (centroids) c.sharding.centroids = CopyMatrix(*centroids);
  c.sharding.num_hash_bits = num_hash_bits;
  if (hyperplanes) c.sharding.hyperplanes = CopyMatrix(*hyperplanes);
  c.run_id = run_id;
  c.local_root = local_root;
  c.batch_size = batch_size;
  c.max_parallel_shards = max_parallel_shards;
  c.publish_policy = last_writer_wins ? PublishPolicy::kLastWriterWins : PublishPolicy::kRejectIfNewer;
  c.custom_manifest_fields_json = custom_json;
  if (vectors.has_value() == next_batch.has_value()) {
    throw nb::value_error("give exactly one of vectors (arrays) and next_batch (a stream)");
  }
  Result<BuildResult> result = Status::Internal("not run");
  if (vectors) {
    ArraySource source(*vectors, int_ids, std::move(str_ids), std::move(payloads), shard_ids);
    nb::gil_scoped_release release;
    result = WriteSharded(c, source);
  } else {
    StreamSource source(std::move(*next_batch), size_hint);
    {
      nb::gil_scoped_release release;
      result = WriteSharded(c, source);
    }
    source.RethrowIteratorError();
  }
  return BuildResultDict(Unwrap(std::move(result)));
}

nb::object IdToPython(const RecordId& id) {
  if (const int64_t* i = std::get_if<int64_t>(&id)) return nb::int_(*i);
  return nb::str(std::get<std::string>(id).c_str());
}

nb::tuple ResponseTuple(const SearchResponse& r) {
  nb::list hits;
  for (const SearchHit& h : r.results) {
    nb::object payload = h.payload_json ? nb::object(nb::str(h.payload_json->c_str())) : nb::none();
    hits.append(nb::make_tuple(IdToPython(h.id), h.score, payload));
  }
  return nb::make_tuple(hits, r.num_shards_queried, r.latency_ms);
}

SearchOptions MakeSearchOptions(std::optional<int64_t> num_probes, std::optional<std::vector<int64_t>> shard_ids) {
  SearchOptions o;
  o.num_probes = num_probes;
  o.shard_ids = std::move(shard_ids);
  return o;
}

class Reader {
 public:
  Reader(const std::string& store, const std::map<std::string, std::string>& store_options,
         const std::string& cache_dir, int64_t max_workers, int64_t max_fallback_attempts,
         int64_t max_cached_shards, bool preload_shards) {
    ReaderOptions o;
    o.store = store;
    o.store_options = ToStoreOptions(store_options);
    o.cache_dir = cache_dir;
    o.max_workers = max_workers;
    o.max_fallback_attempts = max_fallback_attempts;
    o.max_cached_shards = max_cached_shards;
    o.preload_shards = preload_shards;
    Result<std::unique_ptr<ShardedVectorReader>> opened = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      opened = ShardedVectorReader::Open(o);
    }
    reader_ = Unwrap(std::move(opened));
  }

  nb::tuple Search(const FloatVector& query, int64_t top_k, std::optional<int64_t> num_probes,
                   std::optional<std::vector<int64_t>> shard_ids) {
    const SearchOptions o = MakeSearchOptions(num_probes, std::move(shard_ids));
    Result<SearchResponse> r = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      r = reader_->Search(std::span<const float>(query.data(), query.size()), top_k, o);
    }
    return ResponseTuple(Unwrap(std::move(r)));
  }

  nb::list BatchSearch(const FloatMatrix& queries, int64_t top_k, std::optional<int64_t> num_probes,
                       std::optional<std::vector<int64_t>> shard_ids) {
    const SearchOptions o = MakeSearchOptions(num_probes, std::move(shard_ids));
    Result<std::vector<SearchResponse>> r = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      r = reader_->BatchSearch(CopyMatrix(queries), top_k, o);
    }
    nb::list out;
    for (const SearchResponse& one : Unwrap(std::move(r))) out.append(ResponseTuple(one));
    return out;
  }

  std::vector<int64_t> Route(const FloatVector& query, std::optional<int64_t> num_probes) {
    return Unwrap(reader_->Route(std::span<const float>(query.data(), query.size()), num_probes));
  }

  bool Refresh() {
    Result<bool> r = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      r = reader_->Refresh();
    }
    return Unwrap(std::move(r));
  }

  void Close() { reader_->Close(); }

  nb::dict Info() const {
    const SnapshotInfo i = reader_->Info();
    nb::dict d;
    d["run_id"] = i.run_id;
    d["num_dbs"] = i.num_dbs;
    d["dim"] = i.dim;
    d["metric"] = std::string(MetricName(i.metric));
    d["sharding"] = std::string(StrategyName(i.strategy));
    d["num_probes"] = i.num_probes;
    d["manifest_ref"] = i.manifest_ref;
    d["total_vectors"] = i.total_vectors;
    d["created_at"] = i.created_at;
    d["published_at"] = i.published_at;
    return d;
  }

  nb::list ShardDetails() const {
    nb::list out;
    for (const ShardDetail& s : reader_->ShardDetails()) {
      nb::dict d;
      d["db_id"] = s.db_id;
      d["db_url"] = s.db_url;
      d["vector_count"] = s.vector_count;
      d["db_bytes"] = s.db_bytes;
      d["checkpoint_id"] = s.checkpoint_id;
      d["digest"] = s.digest;
      out.append(d);
    }
    return out;
  }

  nb::dict Health(std::optional<double> staleness_seconds) const {
    std::optional<std::chrono::seconds> threshold;
    if (staleness_seconds) threshold = std::chrono::seconds(static_cast<int64_t>(*staleness_seconds));
    const ReaderHealth h = reader_->Health(threshold);
    nb::dict d;
    d["status"] = h.status;
    d["manifest_ref"] = h.manifest_ref;
    d["manifest_age_seconds"] = h.manifest_age_seconds;
    d["num_shards"] = h.num_shards;
    d["is_closed"] = h.is_closed;
    return d;
  }

 private:
  std::unique_ptr<ShardedVectorReader> reader_;
};

}  // namespace
}  // namespace shardvec

NB_MODULE(_engine, m) {
  using namespace shardvec;
  m.doc() = "shardvec's C++ engine (writer and reader); use the shardvec package API instead.";
  m.attr("version") = SHARDVEC_VERSION;
  m.def("write", &Write, nb::arg("store"), nb::arg("store_options"), nb::arg("dim"), nb::arg("metric"),
        nb::arg("strategy"), nb::arg("num_dbs").none(), nb::arg("num_probes"), nb::arg("train_centroids"),
        nb::arg("centroids").none(), nb::arg("sample_size"), nb::arg("num_hash_bits").none(),
        nb::arg("hyperplanes").none(), nb::arg("run_id").none(), nb::arg("local_root"), nb::arg("batch_size"),
        nb::arg("max_parallel_shards"), nb::arg("last_writer_wins"), nb::arg("index_type"),
        nb::arg("quantization").none(), nb::arg("custom_json"), nb::arg("vectors").none() = nb::none(),
        nb::arg("int_ids").none() = nb::none(), nb::arg("str_ids") = std::vector<std::string>(),
        nb::arg("payloads") = std::vector<std::optional<std::string>>(), nb::arg("shard_ids").none() = nb::none(),
        nb::arg("next_batch").none() = nb::none(), nb::arg("size_hint").none() = nb::none(),
        "Builds and publishes one snapshot from arrays (read in place) or from a stream of array batches "
        "(next_batch() -> (vectors, int_ids, str_ids, payloads, shard_ids) | None); the GIL is released.");
  nb::class_<Reader>(m, "Reader")
      .def(nb::init<const std::string&, const std::map<std::string, std::string>&, const std::string&, int64_t,
                    int64_t, int64_t, bool>(),
           nb::arg("store"), nb::arg("store_options"), nb::arg("cache_dir"), nb::arg("max_workers"),
           nb::arg("max_fallback_attempts"), nb::arg("max_cached_shards"), nb::arg("preload_shards"))
      .def("search", &Reader::Search, nb::arg("query"), nb::arg("top_k"), nb::arg("num_probes").none(),
           nb::arg("shard_ids").none())
      .def("batch_search", &Reader::BatchSearch, nb::arg("queries"), nb::arg("top_k"),
           nb::arg("num_probes").none(), nb::arg("shard_ids").none())
      .def("route", &Reader::Route, nb::arg("query"), nb::arg("num_probes").none())
      .def("refresh", &Reader::Refresh)
      .def("close", &Reader::Close)
      .def("info", &Reader::Info)
      .def("shard_details", &Reader::ShardDetails)
      .def("health", &Reader::Health, nb::arg("staleness_seconds").none());
}
