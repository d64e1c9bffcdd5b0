"""Writer sub-configs, store settings and ``VectorSpec`` (mirrors shardyfusion ``config.py``).

The grouped writer settings (``WriterStorageConfig``, ``WriterOutputConfig``, …) validate
themselves; ``VectorShardedWriteConfig`` in :mod:`shardvec.vector.config` composes them.
Every rule raises :class:`~shardvec.errors.ConfigValidationError` with a message naming the field.

Differences from the reference, on purpose:

* ``s3_prefix`` is a *store prefix*: ``s3://bucket/prefix``, ``file:///abs/path`` or a local
  folder path (see :func:`validate_store_prefix`).
* ``credential_provider`` may be a zero-argument callable returning a dict (or None), or a
  shardyfusion-style object with ``resolve()``; ``s3_connection_options`` keys are checked.
* :func:`engine_store_options` turns both into the engine's store options.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn, Protocol, TypeAlias, TypedDict

from ._vector_types import (
    DistanceMetric,
    VectorIndexConfig,
    VectorShardingSpec,
    VectorShardingStrategy,
    VectorSpecSharding,
)
from .errors import ConfigValidationError

__all__ = [
    "CredentialProvider",
    "S3ConnectionOptions",
    "ValidatableConfig",
    "refuse_unsupported",
    "validate_configs",
    "require_utf8",
    "validate_store_prefix",
    "validate_s3_connection_options",
    "resolve_credentials",
    "engine_store_options",
    "WriterStorageConfig",
    "WriterOutputConfig",
    "WriterManifestConfig",
    "VectorWriteRateLimitConfig",
    "WriterObservabilityConfig",
    "WriterLifecycleConfig",
    "VectorColumnInput",
    "VectorMetricLiteral",
    "vector_metric_to_str",
    "VectorSpec",
]

_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")



class _ResolvingCredentialProvider(Protocol):
    """shardyfusion's provider shape: ``resolve()`` returns an object with credential attributes."""

    def resolve(self) -> Any: ...


#: A zero-argument callable returning ``{"access_key_id", "secret_access_key", "session_token"}``
#: (any subset, or None), or an object whose ``resolve()`` returns such a mapping or an object with
#: those attributes (shardyfusion's ``CredentialProvider``).
CredentialProvider: TypeAlias = (
    Callable[[], Mapping[str, str | None] | None] | _ResolvingCredentialProvider
)


class S3ConnectionOptions(TypedDict, total=False):
    """How to reach an ``s3://`` store. Every key is optional.

    ``region_name``, ``verify_ssl`` are shardyfusion's spellings of ``region`` and ``verify``.
    ``connect_timeout`` / ``read_timeout`` are seconds (read: per request attempt); ``verify`` is
    ``False`` (accept any certificate) or a CA bundle path. The engine always signs with SigV4, so
    ``signature_version`` may only be ``"s3v4"``.
    """

    endpoint_url: str
    region: str
    region_name: str
    profile: str
    addressing_style: Literal["auto", "path", "virtual"]
    signature_version: str
    max_attempts: int
    connect_timeout: float
    read_timeout: float
    verify: bool | str
    verify_ssl: bool | str


class ValidatableConfig(Protocol):
    """A config object that checks its own invariants."""

    def validate(self) -> None:
        """Raises ConfigValidationError when the configuration is invalid."""


def validate_configs(*configs: ValidatableConfig) -> None:
    """Validates several config objects in order; the first failure propagates."""
    for config in configs:
        config.validate()


# --- store prefix, connection options, credentials ------------------------------------------------


def require_utf8(value: str, field_name: str) -> str:
    """Returns ``value`` when it encodes as UTF-8; refuses a str holding a lone surrogate (what
    ``os.fsdecode`` makes of a file name that is not UTF-8) with a :class:`ConfigValidationError`
    naming the field: the engine keeps text as UTF-8 (ids, payloads and manifests are JSON)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ConfigValidationError(
            f"{field_name} is not valid UTF-8 text ({error.reason} at index {error.start}): {value!r}"
        ) from None
    return value


def validate_store_prefix(value: object, *, field_name: str = "s3_prefix") -> None:
    """Checks a store prefix: ``s3://bucket/prefix``, ``file:///abs/path`` or a folder path.

    Rejects non-strings, the empty string, ``s3://`` without a bucket or key prefix, ``file://``
    not followed by an absolute path, and any other ``scheme://``. Folder paths may be relative.
    """
    if not isinstance(value, str):
        raise ConfigValidationError(f"{field_name} must be a string, got {value!r}")
    require_utf8(value, field_name)
    if not value:
        raise ConfigValidationError(
            f"{field_name} must be non-empty: s3://bucket/prefix, file:///abs/path or a folder path"
        )
    scheme = _SCHEME.match(value)
    if scheme is None:
        if value.lower().startswith("s3:"):
            raise ConfigValidationError(
                f"{field_name} must be parseable as s3://bucket/prefix, got {value!r}"
            )
        if "://" in value:
            raise ConfigValidationError(f"{field_name} has no valid scheme: {value!r}")
        return  # a local folder path
    name, rest = scheme.group(1), value[scheme.end() :]
    if name == "s3":
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ConfigValidationError(
                f"{field_name} must be parseable as s3://bucket/prefix, got {value!r}"
            )
        if not key.strip("/"):
            raise ConfigValidationError(
                f"{field_name} must include a non-empty key prefix, e.g. s3://bucket/prefix, "
                f"got {value!r}"
            )
    elif name == "file":
        if not rest.startswith("/"):
            raise ConfigValidationError(
                f"{field_name} {value!r} is not a valid file:// URL; use file:///absolute/path"
            )
    else:
        raise ConfigValidationError(
            f"{field_name} has unsupported scheme {name!r} in {value!r}; use s3://bucket/prefix, "
            "file:///abs/path or a folder path"
        )


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_positive_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _is_bool_or_str(value: object) -> bool:
    return isinstance(value, (bool, str))


_OPTION_CHECKS: dict[str, tuple[Callable[[object], bool], str]] = {
    "endpoint_url": (_is_str, "a string"),
    "region": (_is_str, "a string"),
    "region_name": (_is_str, "a string"),
    "profile": (_is_str, "a string"),
    "addressing_style": (lambda v: v in ("auto", "path", "virtual"), "'auto', 'path' or 'virtual'"),
    "signature_version": (lambda v: v in ("s3v4", "v4"), "'s3v4' (the engine signs with SigV4 only)"),
    "max_attempts": (_is_positive_int, "an int >= 1"),
    "connect_timeout": (_is_positive_number, "a number > 0"),
    "read_timeout": (_is_positive_number, "a number > 0"),
    "verify": (_is_bool_or_str, "a bool or a CA bundle path"),
    "verify_ssl": (_is_bool_or_str, "a bool or a CA bundle path"),
}


def validate_s3_connection_options(
    options: object, *, field_name: str = "s3_connection_options"
) -> None:
    """Checks ``s3_connection_options``: a mapping with known keys and well-typed values."""
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise ConfigValidationError(f"{field_name} must be a dict, got {options!r}")
    unknown = sorted(str(k) for k in options if k not in _OPTION_CHECKS)
    if unknown:
        raise ConfigValidationError(
            f"{field_name} has unknown key(s) {unknown}; known keys: {sorted(_OPTION_CHECKS)}"
        )
    for key, value in options.items():
        check, expected = _OPTION_CHECKS[key]
        if not check(value):
            raise ConfigValidationError(f"{field_name}[{key!r}] must be {expected}, got {value!r}")
    region, region_name = options.get("region"), options.get("region_name")
    if region is not None and region_name is not None and region != region_name:
        raise ConfigValidationError(
            f"{field_name} sets region {region!r} and region_name {region_name!r}; give one"
        )
    verify, verify_ssl = options.get("verify"), options.get("verify_ssl")
    if verify is not None and verify_ssl is not None and verify != verify_ssl:
        raise ConfigValidationError(
            f"{field_name} sets verify {verify!r} and verify_ssl {verify_ssl!r}; give one"
        )


def _validate_credential_provider(provider: object, *, field_name: str) -> None:
    if provider is None or callable(getattr(provider, "resolve", None)) or callable(provider):
        return
    raise ConfigValidationError(
        f"{field_name} must be a callable returning a dict, or an object with resolve(); "
        f"got {provider!r}"
    )


_CREDENTIAL_KEYS = ("access_key_id", "secret_access_key", "session_token")


def resolve_credentials(
    provider: CredentialProvider | None, *, field_name: str = "credential_provider"
) -> dict[str, str]:
    """Calls a credential provider and returns its non-empty credentials.

    Returns a dict with any of ``access_key_id``, ``secret_access_key``, ``session_token``.
    The access key and the secret must come together; a session token needs both.
    """
    if provider is None:
        return {}
    resolve = getattr(provider, "resolve", None)
    raw = resolve() if callable(resolve) else provider()
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        unknown = sorted(str(k) for k in raw if k not in _CREDENTIAL_KEYS)
        if unknown:
            raise ConfigValidationError(
                f"{field_name} returned unknown key(s) {unknown}; known keys: "
                f"{list(_CREDENTIAL_KEYS)}"
            )
        values = {key: raw.get(key) for key in _CREDENTIAL_KEYS}
    else:
        values = {key: getattr(raw, key, None) for key in _CREDENTIAL_KEYS}
    creds: dict[str, str] = {}
    for key, value in values.items():
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ConfigValidationError(
                f"{field_name} returned a non-string {key}: {type(value).__name__}"
            )
        creds[key] = value
    if ("access_key_id" in creds) != ("secret_access_key" in creds):
        missing = "secret_access_key" if "access_key_id" in creds else "access_key_id"
        raise ConfigValidationError(f"{field_name} returned credentials without {missing}")
    if "session_token" in creds and "access_key_id" not in creds:
        raise ConfigValidationError(
            f"{field_name} returned a session_token without access_key_id and secret_access_key"
        )
    return creds


def engine_store_options(
    credential_provider: CredentialProvider | None = None,
    s3_connection_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Merges credentials and connection options into the engine's store options.

    Returns only the keys that are set, among ``endpoint_url``, ``region`` (from ``region`` or
    ``region_name``), ``profile``, ``addressing_style``, ``access_key_id``,
    ``secret_access_key``, ``session_token``, ``max_attempts``, ``connect_timeout``,
    ``read_timeout``, ``verify_tls`` and ``ca_bundle`` (from ``verify``/``verify_ssl``). The
    provider is called on each use, so rotated credentials are picked up.
    """
    validate_s3_connection_options(s3_connection_options)
    _validate_credential_provider(credential_provider, field_name="credential_provider")
    opts = dict(s3_connection_options or {})
    out: dict[str, Any] = {}
    region = opts.get("region", opts.get("region_name"))
    for key, value in (
        ("endpoint_url", opts.get("endpoint_url")),
        ("region", region),
        ("profile", opts.get("profile")),
        ("addressing_style", opts.get("addressing_style")),
    ):
        if value:
            out[key] = value
    out.update(resolve_credentials(credential_provider))
    for key in ("max_attempts", "connect_timeout", "read_timeout"):
        if opts.get(key) is not None:
            out[key] = opts[key]
    verify = opts.get("verify", opts.get("verify_ssl"))
    if verify is False:
        out["verify_tls"] = "false"
    elif isinstance(verify, str):
        out["ca_bundle"] = verify
    return out


# --- writer sub-configs ---------------------------------------------------------------------------


def _validate_segment(value: object, *, field_name: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigValidationError(f"{field_name} must be non-empty, got {value!r}")
    if ".." in value:
        raise ConfigValidationError(f"{field_name} must not contain '..', got {value!r}")
    if "/" in value or "\\" in value:
        raise ConfigValidationError(f"{field_name} must be a single path segment, got {value!r}")
    if not _SAFE_SEGMENT.fullmatch(value):
        raise ConfigValidationError(
            f"{field_name} contains unsupported characters; allowed: [A-Za-z0-9._-], got {value!r}"
        )


MANIFEST_STORE_METHODS = ("publish", "load_current", "load_manifest", "list_manifests", "set_current")


def validate_manifest_store(store: object, *, field_name: str = "manifest_store") -> None:
    """None, or an object with the ManifestStore protocol's methods; else ``ConfigValidationError``
    naming ``field_name`` and the missing methods."""
    if store is None:
        return
    missing = [m for m in MANIFEST_STORE_METHODS if not callable(getattr(store, m, None))]
    if missing:
        raise ConfigValidationError(
            f"{field_name} {store!r} is not a manifest store: it has no {', '.join(missing)} method(s) "
            f"(a manifest store implements {', '.join(MANIFEST_STORE_METHODS)})"
        )


def refuse_unsupported(field_name: str, value: object, hint: str) -> NoReturn:
    """Raises the one error for a setting shardvec accepts in the reference's signature but cannot
    honour yet: the field, the value given, and what to do instead."""
    raise ConfigValidationError(f"{field_name}={value!r} is not supported yet by shardvec; {hint}")


def _validate_positive_optional(value: float | int | None, *, field_name: str) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigValidationError(f"{field_name} must be > 0 when set, got {value!r}")


@dataclass(slots=True)
class WriterStorageConfig:
    """Where the snapshot goes and how to reach it.

    Attributes:
        s3_prefix: ``s3://bucket/prefix``, ``file:///abs/path`` or a local folder path
            (a ``pathlib.Path`` is accepted and stored as a string).
        credential_provider: See :data:`CredentialProvider`.
        s3_connection_options: See :class:`S3ConnectionOptions`.
    """

    s3_prefix: str = ""
    credential_provider: CredentialProvider | None = None
    s3_connection_options: S3ConnectionOptions | None = None

    def __post_init__(self) -> None:
        if isinstance(self.s3_prefix, os.PathLike):
            self.s3_prefix = os.fspath(self.s3_prefix)
        self.validate()

    def validate(self) -> None:
        """Checks the prefix, the provider's shape and the connection option keys."""
        validate_store_prefix(self.s3_prefix, field_name="s3_prefix")
        _validate_credential_provider(self.credential_provider, field_name="credential_provider")
        validate_s3_connection_options(self.s3_connection_options)


_DEFAULT_DB_PATH_TEMPLATE = "db={db_id:05d}"
_DEFAULT_SHARD_PREFIX = "shards"
_DEFAULT_RUN_REGISTRY_PREFIX = "runs"


@dataclass(slots=True)
class WriterOutputConfig:
    """Object layout and local build settings.

    ``run_id`` is generated when None; when given it must be a single safe path segment (the
    engine rejects anything else, so it is checked here already). The layout fields take effect
    as in the reference: shards go to ``<shard_prefix>/run_id=<run>/<db_path_template.format(db_id=
    N)>/attempt=00/shard.db`` and run records to ``<run_registry_prefix>/…/run.yaml``. Beyond the
    reference's checks, a template the engine cannot format exactly as Python does is refused
    (fields other than ``{db_id}``/``{db_id:SPEC}``, specs other than ``[[fill]align][sign][#][0]
    [width][d|x|X|o|b]``, a result that is not one segment of ``[A-Za-z0-9._=-]``).
    """

    run_id: str | None = None
    db_path_template: str = _DEFAULT_DB_PATH_TEMPLATE
    shard_prefix: str = _DEFAULT_SHARD_PREFIX
    run_registry_prefix: str = _DEFAULT_RUN_REGISTRY_PREFIX
    # Empty: the engine's per-user default, $XDG_CACHE_HOME/shardvec/build (or ~/.cache/shardvec/build).
    local_root: str = ""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Checks the path segments, the template and a given run_id."""
        _validate_segment(self.shard_prefix, field_name="output.shard_prefix")
        _validate_segment(self.run_registry_prefix, field_name="output.run_registry_prefix")
        if self.run_id is not None:
            _validate_segment(self.run_id, field_name="output.run_id")
        try:
            self.db_path_template.format(db_id=0)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigValidationError(
                f"output.db_path_template must support format(db_id=...), "
                f"got {self.db_path_template!r}"
            ) from exc
        require_utf8(self.db_path_template, "output.db_path_template")
        from ._native import _engine  # the engine's own rules, so Python and the CLI agree

        _engine.validate_layout(self.shard_prefix, self.db_path_template, self.run_registry_prefix)


@dataclass(slots=True)
class WriterManifestConfig:
    """Manifest publish settings.

    ``credential_provider`` / ``s3_connection_options`` are used for the store only when the
    storage config sets none (shardvec writes shards and manifests through one store; both set
    and different is refused). ``store``: where the manifest is published and the pointer moved
    (a :mod:`shardvec.manifest_store` store or any object implementing its protocol); None keeps
    them beside the shards at ``s3_prefix``. ``allow_schema_change``: publish even when the current
    snapshot has another ``dim`` or ``metric`` (by default such a publish raises
    ``PublishConflictError`` naming both values and publishes nothing: live readers could not search
    it, and refuse to ``refresh()`` onto it).
    """

    store: Any | None = None
    custom_manifest_fields: dict[str, Any] = field(default_factory=dict)
    credential_provider: CredentialProvider | None = None
    s3_connection_options: S3ConnectionOptions | None = None
    allow_schema_change: bool = False

    def validate(self) -> None:
        """Checks that custom fields are a dict and the store settings are well formed."""
        validate_manifest_store(self.store, field_name="manifest.store")
        if not isinstance(self.allow_schema_change, bool):
            raise ConfigValidationError(
                f"manifest.allow_schema_change must be a bool, got {self.allow_schema_change!r}")
        if not isinstance(self.custom_manifest_fields, dict):
            raise ConfigValidationError(
                f"manifest.custom_manifest_fields must be a dict, got "
                f"{type(self.custom_manifest_fields).__name__}"
            )
        _validate_credential_provider(
            self.credential_provider, field_name="manifest.credential_provider"
        )
        validate_s3_connection_options(
            self.s3_connection_options, field_name="manifest.s3_connection_options"
        )


@dataclass(slots=True)
class VectorWriteRateLimitConfig:
    """Token-bucket limit on vector writes, as the reference defines it: one token before each batch
    of ``batch_size`` rows of a shard (a shard of n rows takes ceil(n / batch_size) tokens).

    The Python writer shares one bucket among the shards it builds at once; the Spark, Dask and Ray
    writers hold one bucket per task. The bucket holds ``max(rate, 1)`` tokens and emits
    ``rate_limiter.throttled`` to the write's ``metrics_collector`` each time it waits
    (:mod:`shardvec.rate_limiter`). The reference has no other vector write limit
    (``max_write_bytes_per_second`` belongs to its key-value writers).
    """

    max_writes_per_second: float | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """``max_writes_per_second`` must be None or a finite number > 0."""
        _validate_positive_optional(
            self.max_writes_per_second, field_name="rate_limits.max_writes_per_second"
        )
        if self.max_writes_per_second is not None and not math.isfinite(self.max_writes_per_second):
            raise ConfigValidationError(
                f"rate_limits.max_writes_per_second must be finite, got {self.max_writes_per_second!r}")


@dataclass(slots=True)
class WriterObservabilityConfig:
    """Optional metrics hook (an object with ``emit(event, payload)``)."""

    metrics_collector: Any | None = None

    def validate(self) -> None:
        """Nothing to check."""
        return None


@dataclass(slots=True)
class WriterLifecycleConfig:
    """Run registry hook: a :class:`~shardvec.run_registry.RunRegistry` (``create``, ``update``,
    ``load``) that records the write's start, lease and end beside the engine's own record in the
    store (see :mod:`shardvec.run_registry`), or None for the engine's record alone."""

    run_registry: Any | None = None

    def validate(self) -> None:
        """``run_registry`` must be None or have create(), update() and load()."""
        from .run_registry import validate_run_registry

        validate_run_registry(self.run_registry)


@dataclass(slots=True, frozen=True)
class VectorColumnInput:
    """Column names for the distributed (Spark/Dask/Ray) vector writers (docs/architecture.md#distributed-build)."""

    vector_col: str
    id_col: str | None = None
    payload_cols: list[str] | None = None
    shard_id_col: str | None = None
    routing_context_cols: dict[str, str] | None = None

    def validate(self) -> None:
        """``vector_col`` must be non-empty, and ``id_col`` too when given."""
        if not self.vector_col:
            raise ConfigValidationError("input.vector.vector_col must be non-empty")
        if self.id_col is not None and not self.id_col:
            raise ConfigValidationError("input.vector.id_col must be non-empty")


# --- VectorSpec -----------------------------------------------------------------------------------

_VALID_VECTOR_METRICS = frozenset({"cosine", "l2", "dot_product"})

VectorMetricLiteral: TypeAlias = Literal["cosine", "l2", "dot_product"]


def vector_metric_to_str(metric: object) -> VectorMetricLiteral:
    """Normalizes a metric (a ``DistanceMetric`` or its string value) to the string value."""
    value = getattr(metric, "value", metric)
    if not isinstance(value, str) or value not in _VALID_VECTOR_METRICS:
        raise ConfigValidationError(
            f"vector_spec.metric must be one of {sorted(_VALID_VECTOR_METRICS)}, got {metric!r}"
        )
    return value  # type: ignore[return-value]


@dataclass(slots=True)
class VectorSpec:
    """Dimension and metric of the vectors, as given to ``SqliteVecFactory``.

    ``metric`` is normalized to its string value in ``__post_init__`` (a ``DistanceMetric`` is
    accepted). ``sharding`` is a string mirror of ``VectorShardingConfig``; given to a write through
    ``SqliteVecFactory``, each of its fields must be its default or equal ``config.sharding``'s (and
    ``vector_col`` None, the index fields equal ``index_config``'s). ``dim`` is not checked here
    (``VectorShardedWriteConfig`` checks it).
    """

    dim: int
    vector_col: str | None = None
    metric: VectorMetricLiteral = "cosine"
    index_type: str = "hnsw"
    index_params: dict[str, Any] = field(default_factory=dict)
    quantization: str | None = None
    sharding: VectorSpecSharding = field(default_factory=VectorSpecSharding)

    def __post_init__(self) -> None:
        self.metric = vector_metric_to_str(self.metric)

    def to_vector_index_config(self) -> VectorIndexConfig:
        """The equivalent ``VectorIndexConfig``."""
        return VectorIndexConfig(
            dim=self.dim,
            metric=DistanceMetric(self.metric),
            index_type=self.index_type,
            index_params=self.index_params,
            quantization=self.quantization,
        )

    def to_vector_sharding_spec(self) -> VectorShardingSpec:
        """The equivalent ``VectorShardingConfig`` (``num_dbs`` left unset)."""
        s = self.sharding
        return VectorShardingSpec(
            strategy=VectorShardingStrategy(s.strategy),
            num_probes=s.num_probes,
            centroids=s.centroids,
            train_centroids=s.train_centroids,
            centroids_training_sample_size=s.centroids_training_sample_size,
            num_hash_bits=s.num_hash_bits,
            hyperplanes=s.hyperplanes,
            cel_expr=s.cel_expr,
            cel_columns=s.cel_columns,
            routing_values=s.routing_values,
        )
