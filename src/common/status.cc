#include "shardvec/status.h"

namespace shardvec {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "InvalidArgument";
    case StatusCode::kNotFound: return "NotFound";
    case StatusCode::kAlreadyExists: return "AlreadyExists";
    case StatusCode::kConflict: return "Conflict";
    case StatusCode::kCorruption: return "Corruption";
    case StatusCode::kIOError: return "IOError";
    case StatusCode::kUnavailable: return "Unavailable";
    case StatusCode::kPermissionDenied: return "PermissionDenied";
    case StatusCode::kInternal: return "Internal";
    case StatusCode::kFailedPrecondition: return "FailedPrecondition";
  }
  return "Unknown";
}

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "None";
    case ErrorKind::kReaderClosed: return "ReaderClosed";
    case ErrorKind::kNoCurrentPointer: return "NoCurrentPointer";
    case ErrorKind::kManifestParse: return "ManifestParse";
    case ErrorKind::kManifestExists: return "ManifestExists";
    case ErrorKind::kPublishConflict: return "PublishConflict";
    case ErrorKind::kRouterUnavailable: return "RouterUnavailable";
    case ErrorKind::kShardVerification: return "ShardVerification";
    case ErrorKind::kUnknownRoutingToken: return "UnknownRoutingToken";
    case ErrorKind::kStoreResponse: return "StoreResponse";
    case ErrorKind::kThreadLimit: return "ThreadLimit";
  }
  return "Unknown";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

Status Status::WithContext(std::string_view context) const {
  if (ok()) return *this;
  return WithMessage(std::string(context) + ": " + message_);
}

Status Status::WithMessage(std::string message) const {
  if (ok()) return *this;
  Status out = *this;
  out.message_ = std::move(message);
  return out;
}

Status Status::WithKind(ErrorKind kind) const {
  if (ok()) return *this;
  Status out = *this;
  out.kind_ = kind;
  return out;
}

Status Status::WithKindIf(StatusCode code, ErrorKind kind) const {
  return code_ == code && kind_ == ErrorKind::kNone ? WithKind(kind) : *this;
}

Status Status::WithSubject(std::string subject) const {
  if (ok()) return *this;
  Status out = *this;
  out.subject_ = std::move(subject);
  return out;
}

}  // namespace shardvec
