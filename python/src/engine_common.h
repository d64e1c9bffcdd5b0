// Shared pieces of the shardvec._engine bindings: array types, Status -> Python exception, record
// sources over NumPy arrays and Python batch streams, and dict conversions.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status_macros.h"
#include "error_translation.h"
#include "metrics_bindings.h"
#include "routing_context.h"
#include "shardvec/distributed.h"
#include "shardvec/writer.h"

namespace nb = nanobind;

namespace shardvec::py {


using FloatMatrix = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using FloatVector = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Int64Vector = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// The registered translator (error_translation.cc) raises the shardvec.errors class for the status's
// code and kind.
[[noreturn]] inline void Raise(const Status& status) { throw EngineError(status); }

template <typename T>
T Unwrap(Result<T> result) {
  if (!result.ok()) Raise(result.status());
  return std::move(result).value();
}

inline Matrix CopyMatrix(const FloatMatrix& m) {
  Matrix out{static_cast<int64_t>(m.shape(0)), static_cast<int64_t>(m.shape(1)), {}};
  out.data.assign(m.data(), m.data() + m.size());
  return out;
}

// d[key] as categorical tokens (int, str or bytes each), or nullopt when absent or None.
inline std::optional<std::vector<RoutingValue>> RoutingValuesFromPython(const nb::dict& d, const char* key,
                                                                        std::string_view field) {
  if (!d.contains(key) || d[key].is_none()) return std::nullopt;
  std::vector<RoutingValue> tokens;
  for (nb::handle token : nb::borrow<nb::sequence>(d[key])) {
    tokens.push_back(RoutingValueFromPython(token, std::string(field) + "[" + std::to_string(tokens.size()) + "]"));
  }
  return tokens;
}

inline nb::object RoutingValuesToPython(const std::optional<std::vector<RoutingValue>>& tokens) {
  if (!tokens) return nb::none();
  nb::list out;
  for (const RoutingValue& v : *tokens) out.append(RoutingValueToPython(v));
  return out;
}

using RoutingContexts = std::vector<std::optional<RoutingContext>>;

// Per-row routing contexts from Python: None (no contexts), or a sequence of dict-or-None, one per
// row. Converted while the GIL is held, so the engine can read them without it.
inline RoutingContexts ContextsFromPython(nb::handle contexts, int64_t rows, int64_t first_row = 0) {
  RoutingContexts out;
  if (contexts.is_none()) return out;
  const nb::sequence seq = nb::borrow<nb::sequence>(contexts);
  if (static_cast<int64_t>(nb::len(seq)) != rows) {
    throw nb::value_error(("routing_contexts has " + std::to_string(nb::len(seq)) + " entries for " +
                           std::to_string(rows) + " vectors").c_str());
  }
  out.reserve(static_cast<size_t>(rows));
  int64_t row = first_row;
  for (nb::handle item : seq) {
    if (item.is_none()) {
      out.emplace_back();
    } else {
      out.emplace_back(RoutingContextFromPython(item, "routing_context of row " + std::to_string(row)));
    }
    ++row;
  }
  return out;
}

// Caller-owned arrays as one RecordBatch: the vectors, int ids and shard ids are read in place (the
// arrays stay referenced here); string ids, payloads and contexts arrive converted and are kept here.
// Not movable: the batch views this object's members.
class PyRecordBatch {
 public:
  PyRecordBatch(FloatMatrix vectors, std::optional<Int64Vector> int_ids, std::vector<std::string> str_ids,
                std::vector<std::optional<std::string>> payloads, std::optional<Int64Vector> shard_ids,
                RoutingContexts contexts = {})
      : vectors_(std::move(vectors)),
        int_ids_(std::move(int_ids)),
        shard_ids_(std::move(shard_ids)),
        payloads_(std::move(payloads)),
        contexts_(std::move(contexts)) {
    ids_.reserve(str_ids.size());
    for (std::string& id : str_ids) ids_.emplace_back(std::move(id));
    batch_.rows = static_cast<int64_t>(vectors_.shape(0));
    batch_.dim = static_cast<int64_t>(vectors_.shape(1));
    batch_.vectors = vectors_.data();
    if (int_ids_) batch_.int_ids = {int_ids_->data(), int_ids_->shape(0)};
    batch_.ids = ids_;
    batch_.payloads = payloads_;
    if (shard_ids_) batch_.shard_ids = {shard_ids_->data(), shard_ids_->shape(0)};
    batch_.routing_contexts = contexts_;
  }
  PyRecordBatch(const PyRecordBatch&) = delete;
  PyRecordBatch& operator=(const PyRecordBatch&) = delete;

  const RecordBatch& view() const { return batch_; }

 private:
  FloatMatrix vectors_;
  std::optional<Int64Vector> int_ids_, shard_ids_;
  std::vector<RecordId> ids_;
  std::vector<std::optional<std::string>> payloads_;
  RoutingContexts contexts_;
  RecordBatch batch_;
};

// A one-shot stream of batches from Python: `next_batch()` returns (vectors, int_ids, str_ids, payloads,
// shard_ids, routing_contexts) with the PyRecordBatch shapes (routing_contexts as ContextsFromPython
// takes them), or None at the end. Only the current batch is alive; the GIL is
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
        auto [vectors, int_ids, str_ids, payloads, shard_ids, contexts] =
            nb::cast<std::tuple<FloatMatrix, std::optional<Int64Vector>, std::vector<std::string>,
                                std::vector<std::optional<std::string>>, std::optional<Int64Vector>, nb::object>>(
                next);
        const auto rows = static_cast<int64_t>(vectors.shape(0));
        batch_.emplace(vectors, int_ids, std::move(str_ids), std::move(payloads), shard_ids,
                       ContextsFromPython(contexts, rows, rows_fetched_));
        rows_fetched_ += rows;
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
  // The current batch and its rows as a stream.
  struct Batch {
    template <typename... Args>
    explicit Batch(Args&&... args) : arrays(std::forward<Args>(args)...), rows(arrays.view()) {}
    PyRecordBatch arrays;
    RecordBatchSource rows;
  };

  nb::callable next_batch_;
  std::optional<int64_t> size_hint_;
  std::optional<Batch> batch_;
  std::optional<nb::python_error> error_;
  int64_t rows_fetched_ = 0;
  bool started_ = false;
  bool done_ = false;
};

inline StoreOptions ToStoreOptions(const std::map<std::string, std::string>& o) {
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

inline nb::dict ShardInfoDict(const ShardInfo& s) {
  nb::dict d;
  d["db_id"] = s.db_id;
  d["db_url"] = s.db_url;
  d["row_count"] = s.row_count;
  d["db_bytes"] = s.db_bytes;
  d["checkpoint_id"] = s.checkpoint_id;
  d["digest"] = s.digest;
  d["attempt"] = s.attempt;
  return d;
}

inline nb::dict BuildResultDict(const BuildResult& r) {
  nb::dict d;
  d["run_id"] = r.run_id;
  d["manifest_ref"] = r.manifest_ref;
  d["num_dbs"] = r.num_dbs;
  d["total_vectors"] = r.total_vectors;
  d["elapsed_ms"] = r.elapsed_ms;
  nb::list shards;
  for (const ShardInfo& s : r.shards) shards.append(ShardInfoDict(s));
  d["shards"] = shards;
  return d;
}

// The WriteConfig for the settings dict shardvec.vector.writer._engine_settings builds.
inline WriteConfig ConfigFromSettings(const nb::dict& s) {
  auto get = [&s]<typename T>(const char* key, T* out) {
    if (s.contains(key) && !s[key].is_none()) *out = nb::cast<T>(s[key]);
  };
  WriteConfig c;
  std::string metric = "cosine", strategy = "cluster";
  std::map<std::string, std::string> store_options;
  std::optional<FloatMatrix> centroids, hyperplanes;
  bool last_writer_wins = false;
  get("store", &c.store);
  get("store_options", &store_options);
  c.store_options = ToStoreOptions(store_options);
  get("dim", &c.index.dim);
  get("metric", &metric);
  c.index.metric = Unwrap(ParseMetric(metric, "index_config.metric"));
  get("index_type", &c.index.index_type);
  get("quantization", &c.index.quantization);
  get("strategy", &strategy);
  c.sharding.strategy = Unwrap(ParseStrategy(strategy, "sharding.strategy"));
  get("num_dbs", &c.sharding.num_dbs);
  get("num_probes", &c.sharding.num_probes);
  get("train_centroids", &c.sharding.train_centroids);
  get("sample_size", &c.sharding.centroids_training_sample_size);
  get("centroids", &centroids);
  if (centroids) c.sharding.centroids = CopyMatrix(*centroids);
  get("num_hash_bits", &c.sharding.num_hash_bits);
  get("hyperplanes", &hyperplanes);
  if (hyperplanes) c.sharding.hyperplanes = CopyMatrix(*hyperplanes);
  get("cel_expr", &c.sharding.cel_expr);
  get("cel_columns", &c.sharding.cel_columns);
  c.sharding.routing_values = RoutingValuesFromPython(s, "routing_values", "sharding.routing_values");
  get("run_id", &c.run_id);
  get("local_root", &c.local_root);
  get("batch_size", &c.batch_size);
  get("max_parallel_shards", &c.max_parallel_shards);
  get("last_writer_wins", &last_writer_wins);
  c.publish_policy = last_writer_wins ? PublishPolicy::kLastWriterWins : PublishPolicy::kRejectIfNewer;
  get("custom_json", &c.custom_manifest_fields_json);
  if (s.contains("metrics")) c.metrics = SinkFromPython(s["metrics"]);
  return c;
}

void BindDistributed(nb::module_& m);
// cel_bindings.cc: cel_evaluate (the differential tests' entry) and shard_hash.
void BindCel(nb::module_& m);
// admin_bindings.cc: history, current, rollback and cleanup (shardvec/admin.h).
void BindAdmin(nb::module_& m);

}  // namespace shardvec::py
