"""The shardvec exception hierarchy (mirrors shardyfusion's ``errors.py``; docs/architecture.md#errors).

Every class derives from :class:`ShardvecError` (also exported as ``ShardyfusionError`` so code
written against shardyfusion keeps working) and carries a class-level ``retryable`` flag:

* retryable errors (``PublishManifestError``, ``PublishCurrentError``, ``ManifestStoreError``, …)
  may succeed when the operation is run again — typically transient infrastructure failures;
* non-retryable errors (``ConfigValidationError``, ``ManifestParseError``, …) need a fix first.

Errors raised by the C++ engine carry a status code and an error kind; one table in the engine
binding maps (code, kind) to these classes, keeping the message verbatim (never reading it), and
:func:`error_from_engine` applies the same table to names.
"""

from __future__ import annotations

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
    ``engine_code`` and ``engine_kind`` are the engine's status code and error kind names when the
    error came from the engine (``engine_kind`` is ``"None"`` when the code says it all).
    """

    retryable: bool = False
    engine_code: str | None = None
    engine_kind: str | None = None


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


# --- engine statuses ------------------------------------------------------------------------------


def error_from_engine(code: str, kind: str, message: str, subject: str = "") -> Exception:
    """Builds the exception for an engine ``Status`` given by names, message verbatim.

    The class comes from the status code and error kind alone, through the engine binding's one
    table (``shardvec._engine.error_table()`` lists it); the message's wording never matters. A
    (code, kind) pair the table lacks falls back to the code's row without a kind; an unknown code
    gives :class:`ShardvecError`. The engine raises through the same table.

    - InvalidArgument -> ConfigValidationError; kind UnknownRoutingToken (a categorical CEL token
      missing from the snapshot's routing_values) -> UnknownRoutingTokenError, a ``ValueError``.
    - FailedPrecondition (e.g. kind ReaderClosed) -> ReaderStateError.
    - Conflict -> PublishCurrentError; kind PublishConflict -> PublishConflictError.
    - Corruption -> VectorSearchError (kind ShardVerification: a shard's size or digest differs);
      kind ManifestParse -> ManifestParseError; StoreResponse (a garbled store answer) ->
      ManifestStoreError; RouterUnavailable (centroids or hyperplanes unusable) -> ReaderStateError.
    - NotFound -> ManifestStoreError*; kind NoCurrentPointer -> ReaderStateError.
    - AlreadyExists -> ShardWriteError* (a local build directory or file exists, or a shard's key is
      taken); kind ManifestExists -> PublishManifestError.
    - PermissionDenied -> ManifestStoreError*; IOError -> ManifestStoreError.
    - Unavailable -> S3TransientError; kind ThreadLimit (a process or memory limit refused a thread)
      -> ShardvecError.
    - Internal (an engine bug) -> ShardvecError.

    ``*``: the instance's ``retryable`` is False although the class default is True, because running
    the same operation again cannot help. ``engine_code`` and ``engine_kind`` are set to the names.
    For the ``PublishCurrentError`` family, ``manifest_ref`` is ``subject`` (the run's own manifest,
    which stays in history) or None when it is empty.
    """
    from shardvec._native import _engine  # the engine holds the table

    error: Exception = _engine.error_from_status(code, kind, message, subject)
    return error
