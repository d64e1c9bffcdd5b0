// Status and Result<T>: errors are values. Every message names the field and the value at fault.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace shardvec {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // a bad config field, record, query or CLI input
  kNotFound,         // a missing object, file or snapshot
  kAlreadyExists,    // put-if-absent found the key taken
  kConflict,         // compare-and-swap lost, or another writer published first
  kCorruption,       // bytes that do not parse or do not match their digest
  kIOError,          // the filesystem or the network failed
  kUnavailable,      // a transient failure worth retrying
  kPermissionDenied, // the store refused our credentials or denied access
  kInternal,         // a bug: an invariant of ours did not hold
  kFailedPrecondition,  // the object is not in the state the call needs (e.g. a closed reader)
};

std::string_view StatusCodeName(StatusCode code);

// What a caller branches on beyond the code: a small, stable list (values are never renumbered).
// Set where the error is made; messages stay free to change wording. kNone: the code says it all.
enum class ErrorKind {
  kNone = 0,
  kReaderClosed,         // the reader was closed (FailedPrecondition)
  kNoCurrentPointer,     // the store has no _CURRENT: nothing was published there yet (NotFound)
  kManifestParse,        // a manifest or _CURRENT pointer does not parse or is invalid (Corruption)
  kManifestExists,       // publishing found the manifest's key already taken (AlreadyExists)
  kPublishConflict,      // _CURRENT names a manifest published after this run started (Conflict)
  kRouterUnavailable,    // the snapshot's centroids or hyperplanes are missing or unusable (Corruption)
  kShardVerification,    // a shard's bytes do not match the manifest's size or digest (Corruption)
  kUnknownRoutingToken,  // a categorical CEL token is not in routing_values (InvalidArgument)
  kStoreResponse,        // the store answered with something that does not parse (Corruption)
  kThreadLimit,          // a process or memory limit refused a thread (Unavailable)
};

// "ReaderClosed", ..., "None".
std::string_view ErrorKindName(ErrorKind kind);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) { return {StatusCode::kInvalidArgument, std::move(msg)}; }
  static Status NotFound(std::string msg) { return {StatusCode::kNotFound, std::move(msg)}; }
  static Status AlreadyExists(std::string msg) { return {StatusCode::kAlreadyExists, std::move(msg)}; }
  static Status Conflict(std::string msg) { return {StatusCode::kConflict, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {StatusCode::kCorruption, std::move(msg)}; }
  static Status IOError(std::string msg) { return {StatusCode::kIOError, std::move(msg)}; }
  static Status Unavailable(std::string msg) { return {StatusCode::kUnavailable, std::move(msg)}; }
  static Status PermissionDenied(std::string msg) {
    return {StatusCode::kPermissionDenied, std::move(msg)};
  }
  static Status Internal(std::string msg) { return {StatusCode::kInternal, std::move(msg)}; }

  static Status FailedPrecondition(std::string msg) {
    return {StatusCode::kFailedPrecondition, std::move(msg)};
  }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // What the error leaves behind for recovery, when there is one: for kPublishConflict, the URL of
  // this run's manifest that stays in history. Empty otherwise.
  const std::string& subject() const { return subject_; }
  // "InvalidArgument: dim must be > 0 (got 0)"
  std::string ToString() const;

  // Returns a copy whose message is prefixed with `context: ` (code, kind and subject kept).
  Status WithContext(std::string_view context) const;
  // Returns a copy whose message is `message` (code, kind and subject kept).
  Status WithMessage(std::string message) const;
  // Returns a copy with this kind (an OK status stays OK and kind-less).
  Status WithKind(ErrorKind kind) const;
  // Returns a copy with `kind` when this is a `code` error that has no kind yet; else this status.
  Status WithKindIf(StatusCode code, ErrorKind kind) const;
  // Returns a copy with this subject (an OK status stays OK).
  Status WithSubject(std::string subject) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  ErrorKind kind_ = ErrorKind::kNone;
  std::string message_;
  std::string subject_;
};

// Holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : data_(std::move(status)) {  // NOLINT
    if (std::get<Status>(data_).ok()) data_ = Status::Internal("Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(data_);
  }
  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace shardvec
