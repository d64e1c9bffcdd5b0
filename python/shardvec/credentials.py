"""S3 credential providers and env-file helpers (the API of shardyfusion's ``credentials`` module).

A provider is anything with ``resolve() -> S3Credentials``; every ``credential_provider`` parameter
(writer, reader, admin functions, the Spark/Dask/Ray writers) takes one, as well as shardvec's
zero-argument callable returning a dict. The provider is resolved where the store is opened: in the
driver for the writer and the reader, and in each task for the distributed writers (the provider
object travels to the workers, not the keys it resolves to, when it pickles).

Secrets never appear in a ``repr`` (``S3Credentials``, ``StaticCredentialProvider`` and the
engine's ``StoreOptions`` print ``'***'``) or in log lines.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "S3Credentials",
    "CredentialProvider",
    "StaticCredentialProvider",
    "EnvCredentialProvider",
    "materialize_env_file",
    "remove_env_file",
    "resolve_env_file",
    "apply_env_file",
]

_logger = logging.getLogger(__name__)

# os.environ is process-wide: apply_env_file bodies run one at a time, so each restores exactly the
# environment it found.
_env_mutation_lock = threading.Lock()


def _masked(value: str | None) -> str:
    return "None" if value is None else "'***'"


@dataclass(slots=True, frozen=True)
class S3Credentials:
    """An S3 identity: access key id, secret and optional session token (any may be None).

    ``repr`` shows the access key id only; the secret and the token print as ``'***'``.
    """

    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"S3Credentials(access_key_id={self.access_key_id!r}, "
                f"secret_access_key={_masked(self.secret_access_key)}, "
                f"session_token={_masked(self.session_token)})")


@runtime_checkable
class CredentialProvider(Protocol):
    """Returns an :class:`S3Credentials` snapshot each time it is asked.

    Implementations used with the Spark, Dask or Ray writers should pickle (a frozen dataclass
    does), so that each task resolves them itself; one that does not is resolved on the driver and
    its keys travel with the task instead.
    """

    def resolve(self) -> S3Credentials: ...


@dataclass(slots=True, frozen=True)
class StaticCredentialProvider:
    """Fixed credentials given inline: ``StaticCredentialProvider(access_key_id=…, secret_access_key=…)``."""

    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def resolve(self) -> S3Credentials:
        return S3Credentials(self.access_key_id, self.secret_access_key, self.session_token)

    def __repr__(self) -> str:
        return (f"StaticCredentialProvider(access_key_id={self.access_key_id!r}, "
                f"secret_access_key={_masked(self.secret_access_key)}, "
                f"session_token={_masked(self.session_token)})")


@dataclass(slots=True, frozen=True)
class EnvCredentialProvider:
    """Reads the environment of the process that resolves it, per field the first non-empty of
    ``S3_ACCESS_KEY_ID``/``AWS_ACCESS_KEY_ID``, ``S3_SECRET_ACCESS_KEY``/``AWS_SECRET_ACCESS_KEY``
    and ``S3_SESSION_TOKEN``/``AWS_SESSION_TOKEN``. With the distributed writers that is each
    worker's environment: nothing secret travels with the task."""

    def resolve(self) -> S3Credentials:
        def first(*names: str) -> str | None:
            for name in names:
                if value := os.environ.get(name):
                    return value
            return None

        return S3Credentials(
            access_key_id=first("S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
            secret_access_key=first("S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
            session_token=first("S3_SESSION_TOKEN", "AWS_SESSION_TOKEN"),
        )


def materialize_env_file(creds: S3Credentials, *,
                         connection_options: Mapping[str, Any] | None = None) -> str:
    """Writes ``creds`` (and the connection options' endpoint, region and addressing style) to a new
    ``.env`` file readable by this user only (mode 0600) and returns its path; remove it with
    :func:`remove_env_file`.

    Lines written, each only when set: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL`` (plus ``AWS_ALLOW_HTTP=true`` for an ``http://``
    endpoint), ``AWS_REGION`` (``region_name`` or ``region``) and
    ``AWS_VIRTUAL_HOSTED_STYLE_REQUEST`` (``false`` for path-style, ``true`` for virtual). The
    engine reads the credentials, the endpoint and the region from the environment, so
    ``with apply_env_file(path):`` around opening a reader or a write makes them take effect.
    """
    lines: list[str] = []
    for name, value in (("AWS_ACCESS_KEY_ID", creds.access_key_id),
                        ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key),
                        ("AWS_SESSION_TOKEN", creds.session_token)):
        if value:
            lines.append(f"{name}={value}")
    options = connection_options or {}
    endpoint = options.get("endpoint_url")
    if endpoint:
        lines.append(f"AWS_ENDPOINT_URL={endpoint}")
        if str(endpoint).startswith("http://"):
            lines.append("AWS_ALLOW_HTTP=true")
    region = options.get("region_name") or options.get("region")
    if region:
        lines.append(f"AWS_REGION={region}")
    addressing = options.get("addressing_style")
    if addressing in ("path", "virtual"):
        lines.append(f"AWS_VIRTUAL_HOSTED_STYLE_REQUEST={'true' if addressing == 'virtual' else 'false'}")
    fd, path = tempfile.mkstemp(prefix="shardvec_creds_", suffix=".env")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, "\n".join(lines).encode("utf-8"))
    finally:
        os.close(fd)
    return path


def remove_env_file(path: str) -> None:
    """Deletes a file :func:`materialize_env_file` wrote; a failure is logged (path only), not raised."""
    try:
        os.unlink(path)
    except OSError as error:
        _logger.warning("Failed to remove credentials env file %s: %s", path, error.strerror)


class _EnvFileContext:
    """Yields ``env_file`` when given; else a file materialized from the provider and the connection
    options (removed on exit) when either is set; else None."""

    __slots__ = ("_env_file", "_provider", "_options", "_materialized")

    def __init__(self, env_file: str | None, provider: CredentialProvider | None,
                 options: Mapping[str, Any] | None) -> None:
        self._env_file = env_file
        self._provider = provider
        self._options = options
        self._materialized: str | None = None

    def __enter__(self) -> str | None:
        if self._env_file is not None:
            return self._env_file
        if self._provider is None and self._options is None:
            return None
        creds = self._provider.resolve() if self._provider is not None else S3Credentials()
        self._materialized = materialize_env_file(creds, connection_options=self._options)
        return self._materialized

    def __exit__(self, *exc: object) -> None:
        if self._materialized is not None:
            remove_env_file(self._materialized)
            self._materialized = None


def resolve_env_file(env_file: str | None, credential_provider: CredentialProvider | None,
                     connection_options: Mapping[str, Any] | None = None) -> _EnvFileContext:
    """A context manager yielding an env file path: ``env_file`` itself when given (the options are
    then not used), else a temporary file from the provider and options, removed on exit, else None."""
    return _EnvFileContext(env_file, credential_provider, connection_options)


def _parse_dotenv(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines, ``#`` comments and lines without ``=`` are skipped, an
    ``export`` prefix is allowed and one pair of surrounding quotes is stripped from a value."""
    pairs: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        pairs[key] = value
    return pairs


class _AppliedEnvContext:
    """Sets the env file's variables in ``os.environ`` for the body and restores the previous values
    on exit; bodies of concurrent threads run one at a time."""

    __slots__ = ("_env_file", "_previous", "_locked")

    def __init__(self, env_file: str | None) -> None:
        self._env_file = env_file
        self._previous: dict[str, str | None] = {}
        self._locked = False

    def __enter__(self) -> None:
        if self._env_file is None:
            return
        try:
            with open(self._env_file, encoding="utf-8") as fh:
                pairs = _parse_dotenv(fh.read())
        except OSError as error:
            _logger.warning("Failed to read env file %s: %s", self._env_file, error.strerror)
            return
        if not pairs:
            return
        _env_mutation_lock.acquire()
        self._locked = True
        for key, value in pairs.items():
            self._previous[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        if not self._locked:
            return
        try:
            for key, prior in self._previous.items():
                if prior is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = prior
            self._previous.clear()
        finally:
            self._locked = False
            _env_mutation_lock.release()


def apply_env_file(env_file: str | None) -> _AppliedEnvContext:
    """A context manager that loads ``env_file`` into ``os.environ`` for its body (None: nothing)."""
    return _AppliedEnvContext(env_file)
