"""The shardvec exception hierarchy (mirrors shardyfusion's ``errors.py``; docs/architecture.md#errors).

Every class derives from :class:`ShardvecError` (also exported as ``ShardyfusionError`` so code
written against shardyfusion keeps working) and carries a class-level ``retryable`` flag:

* retryable errors (``PublishManifestError``, ``PublishCurrentError``, ``ManifestStoreError``, …)
  may succeed when the operation is run again — typically transient infrastructure failures;
* non-retryable errors (``ConfigValidationError``, ``ManifestParseError``, …) need a fix first.

Errors raised by the C++ engine arrive as a status code name plus a message;
:func:`error_from_engine` turns them into these classes, keeping the message verbatim.
"""

from __future__ import annotations

import re

__all__ = [
    "ShardvecError",
    "ShardyfusionError",
    "ConfigValidationError",
    "ShardAssignmentError",
    "ShardCoverageError",
    "DbAdapterError",
    "SlateDbApiError",
    "SqliteVecAdapterError",
    "SqliteAdapterError",
    "SidecarUnavailableError",
    "ManifestBuildError",
    "PublishManifestError",
    "PublishCurrentError",
    "PublishConflictError",
    "ManifestParseError",
    "ReaderStateError",
    "ManifestStoreError",
    "ShardWriteError",
    "PoolExhaustedError",
    "BridgeTimeoutError",
    "S3TransientError",
    "VectorIndexError",
    "VectorSearchError",
    "UnknownRoutingTokenError",
    "error_from_engine",
]


class ShardvecError(Exception):
    """Base class of every shardvec error.

    ``retryable`` tells callers whether running the operation again may help. It is a class
    attribute; :func:`error_from_engine` may override it on an instance when the engine's status
    code says more than the class does (for example a missing object is never worth retrying).
    ``engine_code`` is the engine's status code name when the error came from the engine.
    """

    retryable: bool = False
    engine_code: str | None = None


#: shardyfusion's name for the base class.
ShardyfusionError = ShardvecError


# --- configuration / programmer errors (never retryable) ------------------------------------------


class ConfigValidationError(ShardvecError):
    """A configuration value, record or query argument failed validation.

    The message names the field and the offending value.
    """

    retryable = False


class ShardAssignmentError(ShardvecError):
    """Rows could not be assigned to valid shard ids (a routing verification mismatch)."""

    retryable = False


class ShardCoverageError(ShardvecError):
    """Shard results did not cover the expected shard ids (KV writers only in the reference)."""

    retryable = False


# --- adapter errors -------------------------------------------------------------------------------


class DbAdapterError(ShardvecError):
    """A database adapter binding was unavailable or failed (KV adapters)."""

    retryable = False


#: Deprecated shardyfusion alias of :class:`DbAdapterError`.
SlateDbApiError = DbAdapterError


class SqliteVecAdapterError(ShardvecError):
    """Misuse of a sqlite-vec shard adapter or reader (write after seal, closed reader, …).

    As in the reference, this is *not* a subclass of :class:`DbAdapterError`.
    """

    retryable = False


class SqliteAdapterError(ShardvecError):
    """A SQLite shard adapter or sidecar operation failed."""

    retryable = False


class SidecarUnavailableError(SqliteAdapterError):
    """The optional page-cache sidecar could not be built or read."""

    retryable = False


# --- manifest and publish -------------------------------------------------------------------------


class ManifestBuildError(ShardvecError):
    """Building the manifest artifact failed."""

    retryable = False


class PublishManifestError(ShardvecError):
    """Uploading the manifest failed; usually transient, so retryable."""

    retryable = True


class PublishCurrentError(ShardvecError):
    """Writing the ``_CURRENT`` pointer failed after the manifest was published.

    ``manifest_ref`` names the already-published manifest, for recovery (for example a rollback
    that points ``_CURRENT`` at it).
    """

    retryable = True

    def __init__(self, message: str, *, manifest_ref: str | None = None) -> None:
        super().__init__(message)
        self.manifest_ref = manifest_ref


class PublishConflictError(PublishCurrentError):
    """``_CURRENT`` moved to a manifest published after this run started (shardvec only).

    The run's own manifest stays in history (``manifest_ref``) and can be made current with an
    explicit rollback. Running again would only race again, so this is not retryable.
    """

    retryable = False


class ManifestParseError(ShardvecError):
    """A manifest or ``_CURRENT`` pointer could not be parsed or is structurally invalid.

    At reader construction this triggers the fallback to older manifests.
    """

    retryable = False


class ReaderStateError(ShardvecError):
    """A reader was used in an invalid state: closed, no ``_CURRENT``, or no vector metadata."""

    retryable = False


class ManifestStoreError(ShardvecError):
    """The store holding manifests (and, in shardvec, every snapshot object) failed."""

    retryable = True


class ShardWriteError(ShardvecError):
    """Writing a shard failed with a possibly transient error."""

    retryable = True


# --- transient infrastructure ---------------------------------------------------------------------


class PoolExhaustedError(ShardvecError):
    """Every pooled reader was checked out and the checkout timed out."""

    retryable = True


class BridgeTimeoutError(ShardvecError):
    """A call across a sync/async bridge timed out."""

    retryable = True


class S3TransientError(ShardvecError):
    """A transient S3 failure (throttling, 5xx, timeout) that may succeed on retry."""

    retryable = True


# --- vector index and search ----------------------------------------------------------------------


class VectorIndexError(ShardvecError):
    """Building or serializing a vector index failed."""

    retryable = False


class VectorSearchError(ShardvecError):
    """A per-shard search or the merge failed, or a shard's bytes failed verification."""

    retryable = False


class UnknownRoutingTokenError(ValueError):
    """A categorical CEL routing token is not present in this snapshot's ``routing_values``.

    Like the reference, this is a ``ValueError``, not a :class:`ShardvecError`.
    """


# --- engine status codes --------------------------------------------------------------------------


# How the engine's publish conflicts name the run's own (already published) manifest.
_KEPT_MANIFEST = re.compile(r"manifest '([^']+)' stays in history")


def _message_has(message: str, *needles: str) -> bool:
    lowered = message.lower()
    return any(needle in lowered for needle in needles)


def _classify(code: str, message: str) -> tuple[type[ShardvecError], bool | None]:
    """Returns the class for an engine status and an instance ``retryable`` override (or None)."""
    if code == "InvalidArgument":
        if _message_has(message, "reader is closed"):
            return ReaderStateError, None
        return ConfigValidationError, None
    if code == "Conflict":
        if "PublishConflictError" in message:
            return PublishConflictError, None
        return PublishCurrentError, None
    if code == "Corruption":
        if _message_has(message, "manifest", "current pointer"):
            return ManifestParseError, None
        if message.startswith("S3 "):
            return ManifestStoreError, None
        if _message_has(message, "centroids", "hyperplanes"):
            return ReaderStateError, None
        return VectorSearchError, None
    if code == "NotFound":
        if "No CURRENT pointer" in message:
            return ReaderStateError, None
        return ManifestStoreError, False
    if code == "AlreadyExists":
        if _message_has(message, "manifest"):
            return PublishManifestError, None
        return ShardWriteError, False
    if code == "PermissionDenied":
        return ManifestStoreError, False
    if code == "IOError":
        return ManifestStoreError, None
    if code == "Unavailable":
        if _message_has(message, "cannot start a thread"):
            return ShardvecError, None
        return S3TransientError, None
    return ShardvecError, None  # Internal (a bug in the engine) and unknown codes


# How the engine names a categorical CEL token missing from routing_values.
_UNKNOWN_TOKEN = "is not in routing_values"


def error_from_engine(code: str, message: str) -> Exception:
    """Builds the exception for an engine ``Status`` (code name + message), message verbatim.

    Mapping (first matching rule wins; "mentions" is case-insensitive; ``*`` see below):

    - InvalidArgument: mentions "reader is closed" -> ReaderStateError;
      otherwise -> ConfigValidationError.
    - Conflict: contains "PublishConflictError" -> PublishConflictError (not retryable);
      otherwise (lost compare-and-swap on _CURRENT, rollback race, ...) -> PublishCurrentError.
    - Corruption: mentions "manifest" or "current pointer" -> ManifestParseError;
      starts with "S3 " (a garbled store answer) -> ManifestStoreError;
      mentions "centroids" or "hyperplanes" -> ReaderStateError;
      otherwise (a shard failed verification, a bad id map, ...) -> VectorSearchError.
    - NotFound: contains "No CURRENT pointer" -> ReaderStateError;
      otherwise (a missing object, manifest or file) -> ManifestStoreError*.
    - AlreadyExists: mentions "manifest" (put-if-absent key taken) -> PublishManifestError;
      otherwise (the local build directory or file exists, or a shard's key in the store is taken:
      uploads never replace an object) -> ShardWriteError*.
    - PermissionDenied (credentials refused, access denied) -> ManifestStoreError*.
    - IOError (the filesystem or the network failed) -> ManifestStoreError.
    - Unavailable: mentions "cannot start a thread" (a process or memory limit refused a thread;
      ask for fewer) -> ShardvecError; otherwise (transient; the engine's
      retries ran out) -> S3TransientError.
    - Internal (an engine bug) and unknown codes -> ShardvecError.

    Before these: an InvalidArgument saying a token "is not in routing_values" (a categorical CEL
    token missing from the snapshot's list, on write or on query) -> UnknownRoutingTokenError, a
    ``ValueError`` as in the reference.

    For the ``PublishCurrentError`` family, ``manifest_ref`` is the run's own manifest when the
    message names it ("manifest '<ref>' stays in history"), else None.

    ``*``: the instance's ``retryable`` is set to False although the class default is True,
    because running the same operation again cannot help. ``engine_code`` is set to ``code``.
    """
    if code == "InvalidArgument" and _UNKNOWN_TOKEN in message:
        return UnknownRoutingTokenError(message)
    cls, retryable = _classify(code, message)
    if issubclass(cls, PublishCurrentError):
        kept = _KEPT_MANIFEST.search(message)
        error: ShardvecError = cls(message, manifest_ref=kept.group(1) if kept else None)
    else:
        error = cls(message)
    error.engine_code = code
    if retryable is not None:
        error.retryable = retryable
    return error
