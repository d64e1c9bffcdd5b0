// shardvec._engine: the C++ writer and reader for the Python package. Arrays come in without a copy
// (nanobind ndarray views), the GIL is released while the engine works, and every engine Status
// becomes the shardvec.errors class its code and kind name (error_translation.cc).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <chrono>
#include <limits>
#include <mutex>
#include <span>

#include "common/sqlite/sqlite_setup.h"
#include "shard/sqlite_vec.h"
#include "engine_common.h"
#include "shardvec/reader.h"

namespace nb = nanobind;

namespace shardvec::py {
namespace {

// A Python RateLimiter (an object with acquire(tokens)) for the engine's writer threads: each call
// takes the GIL. The first exception it raises is kept and re-raised as itself after the write.
// Created and destroyed with the GIL held (it owns a Python object).
class PyRateLimiter final : public RateLimiter {
 public:
  explicit PyRateLimiter(nb::handle limiter) : acquire_(limiter.attr("acquire")) {}
  Status Acquire(int64_t tokens) override {
    nb::gil_scoped_acquire gil;
    try {
      acquire_(tokens);
      return Status::OK();
    } catch (nb::python_error& e) {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_.emplace(std::move(e));
      return Status::Internal("the write rate limiter raised an exception");  // replaced by that exception
    }
  }
  // Re-raises the limiter's own exception, if it raised one (with the GIL held).
  void RethrowError() {
    if (error_) {
      error_->restore();
      error_.reset();
      throw nb::python_error();
    }
  }

 private:
  nb::object acquire_;
  std::mutex mu_;
  std::optional<nb::python_error> error_;
};

BuildResult Write(const WriteConfig& config, std::optional<FloatMatrix> vectors, std::optional<Int64Vector> int_ids,
               std::vector<std::string> str_ids, std::vector<std::optional<std::string>> payloads,
               std::optional<Int64Vector> shard_ids, nb::object routing_contexts,
               std::optional<nb::callable> next_batch, std::optional<int64_t> size_hint, nb::object rate_limiter) {
  // A rate limit goes on a copy of the config, so the caller's config object stays as it was.
  std::shared_ptr<PyRateLimiter> limiter;
  std::optional<WriteConfig> limited;
  if (!rate_limiter.is_none()) {
    limiter = std::make_shared<PyRateLimiter>(rate_limiter);
    limited.emplace(config);
    limited->write_rate_limiter = limiter;
  }
  const WriteConfig& c = limited ? *limited : config;
  if (vectors.has_value() == next_batch.has_value()) {
    throw nb::value_error("give exactly one of vectors (arrays) and next_batch (a stream)");
  }
  Result<BuildResult> result = Status::Internal("not run");
  if (vectors) {
    const PyRecordBatch batch(*vectors, int_ids, std::move(str_ids), std::move(payloads), shard_ids,
                              ContextsFromPython(routing_contexts, static_cast<int64_t>(vectors->shape(0))));
    nb::gil_scoped_release release;
    result = WriteSharded(c, batch.view());
  } else {
    StreamSource source(std::move(*next_batch), size_hint);
    {
      nb::gil_scoped_release release;
      result = WriteSharded(c, source);
    }
    source.RethrowIteratorError();
  }
  if (limiter) limiter->RethrowError();
  return Unwrap(std::move(result));
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
                                nb::handle routing_context, std::optional<int64_t> sublist_probes,
                                std::optional<std::string> filter, std::optional<int64_t> max_extra_probes) {
  SearchOptions o;
  o.num_probes = num_probes;
  o.sublist_probes = sublist_probes;
  o.filter = std::move(filter);
  o.max_extra_probes = max_extra_probes;
  o.shard_ids = std::move(shard_ids);
  o.routing_context = QueryContext(routing_context);
  return o;
}

class Reader {
 public:
  explicit Reader(std::unique_ptr<ShardedVectorReader> reader) : reader_(std::move(reader)) {}

  nb::tuple Search(const FloatVector& query, int64_t top_k, std::optional<int64_t> num_probes,
                   std::optional<std::vector<int64_t>> shard_ids, nb::object routing_context,
                   std::optional<int64_t> sublist_probes, std::optional<std::string> filter,
                   std::optional<int64_t> max_extra_probes) {
    const SearchOptions o = MakeSearchOptions(num_probes, std::move(shard_ids), routing_context, sublist_probes,
                                              std::move(filter), max_extra_probes);
    Result<SearchResponse> r = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      r = reader_->Search(std::span<const float>(query.data(), query.size()), top_k, o);
    }
    return ResponseTuple(Unwrap(std::move(r)));
  }

  nb::list BatchSearch(const FloatMatrix& queries, int64_t top_k, std::optional<int64_t> num_probes,
                       std::optional<std::vector<int64_t>> shard_ids, nb::object routing_context,
                       std::optional<int64_t> sublist_probes, std::optional<std::string> filter,
                   std::optional<int64_t> max_extra_probes) {
    const SearchOptions o = MakeSearchOptions(num_probes, std::move(shard_ids), routing_context, sublist_probes,
                                              std::move(filter), max_extra_probes);
    Result<std::vector<SearchResponse>> r = Status::Internal("not run");
    {
      nb::gil_scoped_release release;
      // Read in place: the array stays referenced by `queries` for the whole call.
      r = reader_->BatchSearch(MatrixView(queries.data(), static_cast<int64_t>(queries.shape(0)),
                                          static_cast<int64_t>(queries.shape(1))),
                               top_k, o);
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

  // Called without the GIL (call guards); a Python metrics sink takes it itself.
  Result<bool> Refresh() { return reader_->Refresh(); }
  void Close() { reader_->Close(); }
  SnapshotInfo Info() const { return reader_->Info(); }
  std::vector<ShardDetail> ShardDetails() const { return reader_->ShardDetails(); }
  ReadStats Stats() const { return reader_->Stats(); }
  ReaderHealth Health(std::optional<double> staleness_seconds) const {
    std::optional<std::chrono::seconds> threshold;
    if (staleness_seconds) threshold = std::chrono::seconds(static_cast<int64_t>(*staleness_seconds));
    return reader_->Health(threshold);
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
  BindManifestStore(m);
  BindConfigTypes(m);
  // The package passes the vec0.so of its sqlite-vec wheel; SHARDVEC_VEC0_PATH, when set, still wins.
  m.def("set_default_vec0_path", &SetDefaultSqliteVecPath, nb::arg("path"));
  m.def("write", &Write, nb::arg("config"), nb::arg("vectors").none() = nb::none(),
        nb::arg("int_ids").none() = nb::none(), nb::arg("str_ids") = std::vector<std::string>(),
        nb::arg("payloads") = std::vector<std::optional<std::string>>(), nb::arg("shard_ids").none() = nb::none(),
        nb::arg("routing_contexts").none() = nb::none(), nb::arg("next_batch").none() = nb::none(),
        nb::arg("size_hint").none() = nb::none(), nb::arg("rate_limiter").none() = nb::none(),
        "Builds and publishes one snapshot from arrays (read in place) or from a stream of array batches "
        "(next_batch() -> (vectors, int_ids, str_ids, payloads, shard_ids, routing_contexts) | None); "
        "routing_contexts is None or one dict (or None) per row; rate_limiter.acquire(1) runs before each "
        "config.batch_size rows of a shard. The GIL is released.");
  BindErrors(m);
  BindDistributed(m);
  BindUpdate(m);
  BindCel(m);
  BindAdmin(m);
  BindRouting(m);
  BindShardFiles(m);
  BindPostgres(m);
  BindMetrics(m);
  using NoGil = nb::call_guard<nb::gil_scoped_release>;
  nb::class_<Reader>(m, "Reader")
      .def(
          "__init__",
          [](Reader* self, const ReaderOptions& options) {
            Result<std::unique_ptr<ShardedVectorReader>> opened = Status::Internal("not run");
            {
              nb::gil_scoped_release release;
              opened = ShardedVectorReader::Open(options);
            }
            new (self) Reader(Unwrap(std::move(opened)));
          },
          nb::arg("options"), "Opens the snapshot options.store's _CURRENT names (without the GIL).")
      .def("search", &Reader::Search, nb::arg("query"), nb::arg("top_k"), nb::arg("num_probes").none(),
           nb::arg("shard_ids").none(), nb::arg("routing_context").none() = nb::none(),
           nb::arg("sublist_probes").none() = nb::none(), nb::arg("filter").none() = nb::none(),
           nb::arg("max_extra_probes").none() = nb::none())
      .def("batch_search", &Reader::BatchSearch, nb::arg("queries"), nb::arg("top_k"),
           nb::arg("num_probes").none(), nb::arg("shard_ids").none(), nb::arg("routing_context").none() = nb::none(),
           nb::arg("sublist_probes").none() = nb::none(), nb::arg("filter").none() = nb::none(),
           nb::arg("max_extra_probes").none() = nb::none(),
           "Searches every row of a C-contiguous float32 (n, dim) array, read in place (without the GIL).")
      .def("route", &Reader::Route, nb::arg("query"), nb::arg("num_probes").none(),
           nb::arg("routing_context").none() = nb::none())
      .def("refresh", &Reader::Refresh, NoGil())
      .def("close", &Reader::Close, NoGil())
      .def("info", &Reader::Info, NoGil())
      .def("shard_details", &Reader::ShardDetails, NoGil())
      .def("stats", &Reader::Stats, NoGil())
      .def("health", &Reader::Health, nb::arg("staleness_seconds").none(), NoGil());
}
