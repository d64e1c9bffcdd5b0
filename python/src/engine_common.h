// Shared pieces of the shardvec._engine bindings: array types, Status -> Python exception, and record
// sources over NumPy arrays and Python batch streams.
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
#include "shardvec/manifest.h"
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

}  // namespace shardvec::py

namespace nanobind::detail {

// A Result<T> returned to Python: its value, or the Status raised as shardvec.errors's exception.
// Converted after a call guard has taken the GIL back, so an engine call can run without the GIL and
// still return its error.
template <typename T>
struct type_caster<shardvec::Result<T>> {
  static constexpr auto Name = make_caster<T>::Name;
  static handle from_cpp(shardvec::Result<T>&& result, rv_policy policy, cleanup_list* cleanup) {
    if (!result.ok()) shardvec::py::Raise(result.status());
    return make_caster<T>::from_cpp(std::move(result).value(), policy, cleanup);
  }
};

}  // namespace nanobind::detail

namespace shardvec::py {

// A record id as Python sees it: an int, or a str.
inline nb::object IdToPython(const RecordId& id) {
  if (const int64_t* i = std::get_if<int64_t>(&id)) return nb::int_(*i);
  return TextToPython(std::get<std::string>(id));
}

inline Matrix CopyMatrix(const FloatMatrix& m) {
  Matrix out{static_cast<int64_t>(m.shape(0)), static_cast<int64_t>(m.shape(1)), {}};
  out.data.assign(m.data(), m.data() + m.size());
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

// config_bindings.cc: the engine's value types (WriteConfig, RoutingPlan, ShardInfo, ...) as classes.
void BindConfigTypes(nb::module_& m);
void BindDistributed(nb::module_& m);
void BindUpdate(nb::module_& m);  // update_bindings.cc
// cel_bindings.cc: cel_evaluate (the differential tests' entry) and shard_hash.
void BindCel(nb::module_& m);
// admin_bindings.cc: history, current, rollback and cleanup (shardvec/admin.h).
void BindAdmin(nb::module_& m);
void BindManifestStore(nb::module_& m);
// routing_bindings.cc: the router, LSH and k-means functions of shardvec.vector.sharding.
void BindRouting(nb::module_& m);
// shard_file_bindings.cc: one shard file read or built on its own (shardvec.sqlite_vec_adapter).
void BindShardFiles(nb::module_& m);
// A manifest in shardvec.manifest's JSON form, checked as a stored one is (Corruption,
// ErrorKind::kManifestParse, when it does not validate); manifest_store_bindings.cc.
Result<Manifest> ManifestFromJson(const std::string& text);
// shardvec._engine.postgres_manifest_sql (python/src/postgres_bindings.cc).
void BindPostgres(nb::module_& m);

}  // namespace shardvec::py
