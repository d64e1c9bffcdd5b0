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
#include "metrics_bindings.h"
#include "routing_context.h"
#include "shardvec/distributed.h"
#include "shardvec/writer.h"

namespace nb = nanobind;

namespace shardvec::py {


using FloatMatrix = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;
using FloatVector = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Int64Vector = nb::ndarray<const int64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

[[noreturn]] inline void Raise(const Status& status) {
  nb::object errors = nb::module_::import_("shardvec.errors");
  nb::object exc =
      errors.attr("error_from_engine")(std::string(StatusCodeName(status.code())), TextToPython(status.message()));
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  throw nb::python_error();
}

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

// Rows of caller-owned arrays, read in place: the writer reads vectors where they are (VectorAt), and
// Next copies only the current row into a Record.
class ArraySource final : public RecordSource {
 public:
  ArraySource(const FloatMatrix& vectors, std::optional<Int64Vector> int_ids, std::vector<std::string> str_ids,
              std::vector<std::optional<std::string>> payloads, std::optional<Int64Vector> shard_ids,
              RoutingContexts contexts = {})
      : vectors_(vectors.data()),
        rows_(static_cast<int64_t>(vectors.shape(0))),
        dim_(static_cast<int64_t>(vectors.shape(1))),
        int_ids_(int_ids ? int_ids->data() : nullptr),
        str_ids_(std::move(str_ids)),
        payloads_(std::move(payloads)),
        shard_ids_(shard_ids ? shard_ids->data() : nullptr),
        contexts_(std::move(contexts)) {}

  Result<bool> Next(Record* out) override {
    if (next_ >= rows_) return false;
    RETURN_IF_ERROR(ReadAt(next_++, out));
    return true;
  }
  bool CanReadAt() const override { return true; }
  // Reads only the caller's arrays and this object's own copies: safe from several threads.
  Status ReadFieldsAt(int64_t i, Record* out) const override {
    if (i < 0 || i >= rows_) return Status::Internal("array row out of range");
    if (int_ids_) {
      out->id = int_ids_[i];
    } else if (!str_ids_.empty()) {
      out->id = str_ids_[static_cast<size_t>(i)];
    } else {
      out->id = i;
    }
    out->payload_json = payloads_.empty() ? std::nullopt : payloads_[static_cast<size_t>(i)];
    out->shard_id = shard_ids_ && shard_ids_[i] != kNoShardId ? std::optional<int64_t>(shard_ids_[i]) : std::nullopt;
    out->routing_context = contexts_.empty() ? std::nullopt : contexts_[static_cast<size_t>(i)];
    return Status::OK();
  }
  std::span<const float> VectorAt(int64_t i) const override {
    return {vectors_ + i * dim_, static_cast<size_t>(dim_)};
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
  RoutingContexts contexts_;
  int64_t next_ = 0;
};

// A one-shot stream of batches from Python: `next_batch()` returns (vectors, int_ids, str_ids, payloads,
// shard_ids, routing_contexts) with the ArraySource shapes (routing_contexts as ContextsFromPython
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
  // The arrays stay referenced while ArraySource reads them in place.
  struct Batch {
    Batch(FloatMatrix v, std::optional<Int64Vector> i, std::vector<std::string> s,
          std::vector<std::optional<std::string>> p, std::optional<Int64Vector> sh, RoutingContexts c)
        : vectors(std::move(v)), int_ids(std::move(i)), shard_ids(std::move(sh)),
          rows(vectors, int_ids, std::move(s), std::move(p), shard_ids, std::move(c)) {}
    FloatMatrix vectors;
    std::optional<Int64Vector> int_ids;
    std::optional<Int64Vector> shard_ids;
    ArraySource rows;
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
// cel_bindings.cc: cel_evaluate (the differential tests' entry) and shard_hash.
void BindCel(nb::module_& m);

}  // namespace shardvec::py
