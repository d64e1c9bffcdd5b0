#include "error_translation.h"

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <fmt/format.h>

#include "routing_context.h"

namespace nb = nanobind;

namespace shardvec::py {
namespace {

struct Row {
  StatusCode code;
  ErrorKind kind;
  const char* cls;           // a class of shardvec.errors
  bool never_retryable;      // the instance's retryable is False although the class says True
};

// The whole mapping. A (code, kind) pair missing here falls back to its code's kNone row; a code
// missing here (OK, unknown) gives ShardvecError.
constexpr Row kTable[] = {
    {StatusCode::kInvalidArgument, ErrorKind::kNone, "ConfigValidationError", false},
    // A ValueError, as in the reference.
    {StatusCode::kInvalidArgument, ErrorKind::kUnknownRoutingToken, "UnknownRoutingTokenError", false},
    {StatusCode::kFailedPrecondition, ErrorKind::kNone, "ReaderStateError", false},
    {StatusCode::kFailedPrecondition, ErrorKind::kReaderClosed, "ReaderStateError", false},
    // A lost compare-and-swap on _CURRENT, a rollback race, ...
    {StatusCode::kConflict, ErrorKind::kNone, "PublishCurrentError", false},
    {StatusCode::kConflict, ErrorKind::kPublishConflict, "PublishConflictError", false},
    // Bytes of a shard or an id map that do not parse.
    {StatusCode::kCorruption, ErrorKind::kNone, "VectorSearchError", false},
    {StatusCode::kCorruption, ErrorKind::kShardVerification, "VectorSearchError", false},
    {StatusCode::kCorruption, ErrorKind::kManifestParse, "ManifestParseError", false},
    {StatusCode::kCorruption, ErrorKind::kStoreResponse, "ManifestStoreError", false},
    {StatusCode::kCorruption, ErrorKind::kRouterUnavailable, "ReaderStateError", false},
    // A missing object, manifest or file: asking again finds nothing more.
    {StatusCode::kNotFound, ErrorKind::kNone, "ManifestStoreError", true},
    {StatusCode::kNotFound, ErrorKind::kNoCurrentPointer, "ReaderStateError", false},
    // The local build directory or file exists, or a shard's key is taken (uploads never replace).
    {StatusCode::kAlreadyExists, ErrorKind::kNone, "ShardWriteError", true},
    {StatusCode::kAlreadyExists, ErrorKind::kManifestExists, "PublishManifestError", false},
    {StatusCode::kPermissionDenied, ErrorKind::kNone, "ManifestStoreError", true},
    {StatusCode::kIOError, ErrorKind::kNone, "ManifestStoreError", false},
    // Transient; the engine's retries ran out.
    {StatusCode::kUnavailable, ErrorKind::kNone, "S3TransientError", false},
    // Ask for fewer threads: running again as is would not help.
    {StatusCode::kUnavailable, ErrorKind::kThreadLimit, "ShardvecError", false},
    {StatusCode::kInternal, ErrorKind::kNone, "ShardvecError", false},
};

// The row for a code and kind, given by name (so Python can ask with the names it was given).
const Row* FindRow(std::string_view code, std::string_view kind) {
  const Row* by_code = nullptr;
  for (const Row& row : kTable) {
    if (StatusCodeName(row.code) != code) continue;
    if (ErrorKindName(row.kind) == kind) return &row;
    if (row.kind == ErrorKind::kNone) by_code = &row;
  }
  return by_code;
}

// The exception object: message verbatim, engine_code and engine_kind set, and for the
// PublishCurrentError family manifest_ref = the subject (None when there is none).
nb::object MakeError(std::string_view code, std::string_view kind, std::string_view message,
                     std::string_view subject) {
  const Row* row = FindRow(code, kind);
  nb::module_ errors = nb::module_::import_("shardvec.errors");
  nb::object cls = errors.attr(row ? row->cls : "ShardvecError");
  nb::object error = cls(TextToPython(message));
  error.attr("engine_code") = nb::str(code.data(), code.size());
  error.attr("engine_kind") = nb::str(kind.data(), kind.size());
  if (row && row->never_retryable) error.attr("retryable") = false;
  const int publish = PyObject_IsSubclass(cls.ptr(), errors.attr("PublishCurrentError").ptr());
  if (publish < 0) throw nb::python_error();
  if (publish == 1) {
    error.attr("manifest_ref") = subject.empty() ? nb::object(nb::none()) : nb::object(TextToPython(subject));
  }
  return error;
}

// Python exceptions waiting for their status to reach Python, by token (touched with the GIL held).
// Bounded: a status the engine drops never reaches the translator, so the oldest go first.
constexpr std::string_view kPythonErrorTag = "python-exception:";
constexpr size_t kMaxKeptPythonErrors = 64;
std::map<uint64_t, nb::object>& KeptPythonErrors() {
  static auto* kept = new std::map<uint64_t, nb::object>();  // never destroyed: outlives the interpreter
  return *kept;
}

std::optional<nb::object> TakePythonError(const std::string& subject) {
  if (subject.rfind(kPythonErrorTag, 0) != 0) return std::nullopt;
  const uint64_t token = std::stoull(subject.substr(kPythonErrorTag.size()));
  auto& kept = KeptPythonErrors();
  auto it = kept.find(token);
  if (it == kept.end()) return std::nullopt;
  nb::object error = std::move(it->second);
  kept.erase(it);
  return error;
}

void TranslateEngineError(const std::exception_ptr& thrown, void*) {
  try {
    std::rethrow_exception(thrown);
  } catch (const EngineError& e) {
    const Status& s = e.status();
    if (std::optional<nb::object> original = TakePythonError(s.subject())) {
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(original->ptr())), original->ptr());
      return;
    }
    try {
      nb::object error = MakeError(StatusCodeName(s.code()), ErrorKindName(s.kind()), s.message(), s.subject());
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
    } catch (nb::python_error& failed) {
      failed.restore();  // building the exception failed: raise why
    }
  }
}

}  // namespace

Status StatusFromPythonError(nb::python_error& error, std::string_view where) {
  static uint64_t next_token = 0;
  nb::object value = nb::borrow(error.value());
  nb::module_ errors = nb::module_::import_("shardvec.errors");
  std::string type_name = nb::cast<std::string>(nb::handle(error.type()).attr("__name__"));
  std::string text = nb::cast<std::string>(nb::str(value));
  Status status = Status::IOError(fmt::format("{}: {}: {}", where, type_name, text));
  if (nb::isinstance(value, errors.attr("PublishConflictError"))) {
    status = Status::Conflict(status.message()).WithKind(ErrorKind::kPublishConflict);
  } else if (nb::isinstance(value, errors.attr("ManifestParseError"))) {
    status = Status::Corruption(status.message()).WithKind(ErrorKind::kManifestParse);
  } else if (error.matches(PyExc_KeyError) || error.matches(PyExc_FileNotFoundError)) {
    status = Status::NotFound(status.message());
  }
  auto& kept = KeptPythonErrors();
  while (kept.size() >= kMaxKeptPythonErrors) kept.erase(kept.begin());
  const uint64_t token = next_token++;
  kept.emplace(token, std::move(value));
  return status.WithSubject(fmt::format("{}{}", kPythonErrorTag, token));
}

void BindErrors(nb::module_& m) {
  nb::register_exception_translator(&TranslateEngineError);
  m.def("error_from_status", &MakeError, nb::arg("code"), nb::arg("kind"), nb::arg("message"),
        nb::arg("subject") = "",
        "The shardvec.errors exception for an engine status (code and kind names), message verbatim.");
  m.def(
      "error_table",
      [] {
        std::vector<std::tuple<std::string, std::string, std::string, std::optional<bool>>> rows;
        for (const Row& row : kTable) {
          rows.emplace_back(std::string(StatusCodeName(row.code)), std::string(ErrorKindName(row.kind)), row.cls,
                            row.never_retryable ? std::optional<bool>(false) : std::nullopt);
        }
        return rows;
      },
      "The (code, kind) -> exception class table as (code, kind, class name, retryable override) rows.");
}

}  // namespace shardvec::py
