// Engine Status -> shardvec.errors exception: one table keyed by (status code, error kind), applied by a
// registered nanobind exception translator. The class never depends on the message's wording.
#pragma once

#include <nanobind/nanobind.h>

#include <string_view>
#include <utility>

#include "shardvec/status.h"

namespace shardvec::py {

// Thrown by Raise(); the translator turns it into the shardvec.errors class the table names. Not a
// std::exception on purpose: a generic `catch (const std::exception&)` must not swallow it.
class EngineError {
 public:
  explicit EngineError(Status status) : status_(std::move(status)) {}
  const Status& status() const { return status_; }

 private:
  Status status_;
};

// A Python exception raised inside an engine callback (a Python manifest store, ...), as a Status the
// engine can carry: the exception is kept (the GIL must be held) and the status's subject names it,
// so when that status reaches Python the translator raises the same exception object again. The code
// follows the exception's class (PublishConflictError: Conflict; ManifestParseError: Corruption;
// KeyError/FileNotFoundError: NotFound; else IOError); the message is "<where>: <class>: <text>".
Status StatusFromPythonError(nanobind::python_error& error, std::string_view where);

// Registers the translator and binds error_from_status(code, kind, message, subject) and
// error_table() on the module (for shardvec.errors.error_from_engine and the tests).
void BindErrors(nanobind::module_& m);

}  // namespace shardvec::py
