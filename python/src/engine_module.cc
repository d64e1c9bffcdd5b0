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

#include "common/sqlite_setup.h"
#include "shard/sqlite_vec.h"
#include "engine_common.h"
#include "shardvec/reader.h"

namespace nb = nanobind;

namespace shardvec::py {
namespace {

nb::dict Write(const nb::dict& settings, std::optional<FloatMatrix> vectors, std::optional<Int64Vector> int_ids,
               std::vector<std::string> str_ids, std::vector<std::optional<std::string>> payloads,
               std::optional<Int64Vector> shard_ids, nb::object routing_contexts,
               std::optional<nb::callable> next_batch, std::optional<int64_t> size_hint) {
  const WriteConfig c = ConfigFromSettings(settings);
  if (vectors.has_value() == next_batch.has_value()) {
    throw nb::value_error("give exactly one of vectors (arrays) and next_batch (a stream)");
  }
  Result<BuildResult> result = Status::Internal("not run");
  if (vectors) {
    ArraySource source(*vectors, int_ids, std::move(str_ids), std::move(payloads), shard_ids,
                       ContextsFromPython(routing_contexts, static_cast<int64_t>(vectors->shape(0))));
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
  return TextToPython(std::get<std::string>(id));
}

nb::tuple ResponseTuple(const SearchResponse& r) {
  nb::list hits;
  for (const SearchHit& h : r.results) {
    // Always a JSON object of bounded depth: the reader replaces a stored text that is not one by
    // {"__raw_payload__": "<text>"}.
    nb::object payload = h.payload_json ? nb::object(TextToPython(*h.payload_json)) : nb::none();
    hits.append(nb::make_tuple(IdToPython(h.id), h.score, payload));
  }
  return nb::make_tuple(hits, r.num_shards_queried, r.latency_ms);
}

std::optional<RoutingContext> QueryContext(nb::handle routing_context) {
  if (routing_context.is_none()) return std::nullopt;
  return RoutingContextFromPython(routing_context, "routing_context");
}

SearchOptions MakeSearchOptions(std::optional<int64_t> num_probes, std::optional<std::vector<int64_t>> shard_ids,
                                nb::handle routing_context) {
  SearchOptions o;
  o.num_probes = num_probes;
  o.shard_ids = std::move(shard_ids);
  o.routing_context = QueryContext(routing_context);
  return o;
}

class Reader {
 public:
  Reader(const std::string& store, const std::map<std::string, std::string>& store_options,
         const std::string& cache_dir, int64_t max_workers, int64_t max_fallback_attempts,
         int64_t max_cached_shards, bool preload_shards, nb::object metrics) {
    ReaderOptions o;
    o.store = store;
    o.store_options = ToStoreOptions(store_options);
    o.cache_dir = cache_dir;
    o.max_workers = max_workers;
    o.max_fallback_attempts = max_fallback_attempts;
    o.max_cached_shards = max_cached_shards;
    o.preload_shards = preload_shards;
    o.metrics = SinkFromPython(metrics);
    Result<std::unique_ptr<ShardedVectorReader>> opened = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      opened = ShardedVectorReader::Open(o);
    }
    reader_ = Unwrap(std::move(opened));
  }

  nb::tuple Search(const FloatVector& query, int64_t top_k, std::optional<int64_t> num_probes,
                   std::optional<std::vector<int64_t>> shard_ids, nb::object routing_context) {
    const SearchOptions o = MakeSearchOptions(num_probes, std::move(shard_ids), routing_context);
    Result<SearchResponse> r = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      r = reader_->Search(std::span<const float>(query.data(), query.size()), top_k, o);
    }
    return ResponseTuple(Unwrap(std::move(r)));
  }

  nb::list BatchSearch(const FloatMatrix& queries, int64_t top_k, std::optional<int64_t> num_probes,
                       std::optional<std::vector<int64_t>> shard_ids, nb::object routing_context) {
    const SearchOptions o = MakeSearchOptions(num_probes, std::move(shard_ids), routing_context);
    Result<std::vector<SearchResponse>> r = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      r = reader_->BatchSearch(CopyMatrix(queries), top_k, o);
    }
    nb::list out;
    for (const SearchResponse& one : Unwrap(std::move(r))) out.append(ResponseTuple(one));
    return out;
  }

  std::vector<int64_t> Route(const FloatVector& query, std::optional<int64_t> num_probes,
                             nb::object routing_context) {
    return Unwrap(reader_->Route(std::span<const float>(query.data(), query.size()), num_probes,
                                 QueryContext(routing_context)));
  }

  bool Refresh() {
    Result<bool> r = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      r = reader_->Refresh();
    }
    return Unwrap(std::move(r));
  }

  void Close() {
    nb::gil_scoped_release release;  // a Python metrics sink takes the GIL itself
    reader_->Close();
  }

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
    d["cel_expr"] = i.cel_expr;
    d["cel_columns"] = i.cel_columns;
    d["routing_values"] = RoutingValuesToPython(i.routing_values);
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
}  // namespace shardvec::py

NB_MODULE(_engine, m) {
  using namespace shardvec;
  using namespace shardvec::py;
  m.doc() = "shardvec's C++ engine (writer and reader); use the shardvec package API instead.";
  m.attr("version") = SHARDVEC_VERSION;
  ConfigureSqliteOnce();  // at import, before anything else in the process may initialise SQLite
  // The package passes the vec0.so of its sqlite-vec wheel; SHARDVEC_VEC0_PATH, when set, still wins.
  m.def("set_default_vec0_path", &SetDefaultSqliteVecPath, nb::arg("path"));
  m.def("write", &Write, nb::arg("settings"), nb::arg("vectors").none() = nb::none(),
        nb::arg("int_ids").none() = nb::none(), nb::arg("str_ids") = std::vector<std::string>(),
        nb::arg("payloads") = std::vector<std::optional<std::string>>(), nb::arg("shard_ids").none() = nb::none(),
        nb::arg("routing_contexts").none() = nb::none(), nb::arg("next_batch").none() = nb::none(),
        nb::arg("size_hint").none() = nb::none(),
        "Builds and publishes one snapshot from arrays (read in place) or from a stream of array batches "
        "(next_batch() -> (vectors, int_ids, str_ids, payloads, shard_ids, routing_contexts) | None); "
        "routing_contexts is None or one dict (or None) per row. The GIL is released.");
  BindDistributed(m);
  BindCel(m);
  BindMetrics(m);
  nb::class_<Reader>(m, "Reader")
      .def(nb::init<const std::string&, const std::map<std::string, std::string>&, const std::string&, int64_t,
                    int64_t, int64_t, bool, nb::object>(),
           nb::arg("store"), nb::arg("store_options"), nb::arg("cache_dir"), nb::arg("max_workers"),
           nb::arg("max_fallback_attempts"), nb::arg("max_cached_shards"), nb::arg("preload_shards"),
           nb::arg("metrics").none() = nb::none())
      .def("search", &Reader::Search, nb::arg("query"), nb::arg("top_k"), nb::arg("num_probes").none(),
           nb::arg("shard_ids").none(), nb::arg("routing_context").none() = nb::none())
      .def("batch_search", &Reader::BatchSearch, nb::arg("queries"), nb::arg("top_k"),
           nb::arg("num_probes").none(), nb::arg("shard_ids").none(), nb::arg("routing_context").none() = nb::none())
      .def("route", &Reader::Route, nb::arg("query"), nb::arg("num_probes").none(),
           nb::arg("routing_context").none() = nb::none())
      .def("refresh", &Reader::Refresh)
      .def("close", &Reader::Close)
      .def("info", &Reader::Info)
      .def("shard_details", &Reader::ShardDetails)
      .def("health", &Reader::Health, nb::arg("staleness_seconds").none());
}
