"""The composition root: URLs in, adapters out.

    log:   sqlite:///path/log.db (default)      kafka://host:port/prefix
    store: sqlite:///path/projections.db (default)   postgresql://user@host:port/db

Defaults come from $LEDGER_HOME (default ./.ledger), or $LEDGER_LOG and
$LEDGER_STORE.  Config is read by functions, when asked, not at import.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from urllib.parse import urlparse

from ledger.policy import Policy, PolicyError, policy_from_document
from ledger.ports import EventLog, LogUnavailable
from projections.store import ProjectionStore, StoreUnavailable

__all__ = ["default_log_url", "default_store_url", "open_log", "open_store", "ConfigError", "load_policy",
           "POLICY_ENV"]

POLICY_ENV = "LEDGER_POLICY"


class ConfigError(ValueError):
    pass


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy from ``path``, else from $LEDGER_POLICY, else the defaults."""
    if path is None:
        path = os.environ.get(POLICY_ENV) or None
    if path is None:
        return Policy()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise PolicyError(f"policy file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy file {str(path)!r} is not valid TOML: {error}") from None
    return policy_from_document(data, source=f"policy file {str(path)!r}")


def ledger_home() -> Path:
    return Path(os.environ.get("LEDGER_HOME", ".ledger"))


def default_log_url() -> str:
    return os.environ.get("LEDGER_LOG") or f"sqlite:///{ledger_home() / 'log.db'}"


def default_store_url() -> str:
    return os.environ.get("LEDGER_STORE") or f"sqlite:///{ledger_home() / 'projections.db'}"


def _sqlite_path(url: str) -> str:
    # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
    path = url[len("sqlite:///"):]
    if not path:
        raise ConfigError(f"{url!r} names no file; write sqlite:///path/to/file.db")
    return path


def open_log(url: str) -> EventLog:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from consumers.log.embedded import EmbeddedLog

        return EmbeddedLog(_sqlite_path(url))
    if scheme == "kafka":
        try:
            from consumers.log.kafka import KafkaLog
        except ImportError as error:  # pragma: no cover - packaging error
            raise LogUnavailable(f"Kafka log adapter unavailable: {error}") from error
        return KafkaLog.from_url(url)
    raise ConfigError(f"unknown log URL {url!r}: use sqlite:///path or kafka://host:port/prefix")


def open_store(url: str) -> ProjectionStore:
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        from projections.sqlite_store import SQLiteProjectionStore

        return SQLiteProjectionStore(_sqlite_path(url))
    if scheme in ("postgresql", "postgres"):
        try:
            from projections.postgres_store import PostgresProjectionStore
        except ImportError as error:
            raise StoreUnavailable(f"PostgreSQL store unavailable: {error}") from error
        return PostgresProjectionStore.from_url(url)
    raise ConfigError(f"unknown store URL {url!r}: use sqlite:///path or postgresql://host:port/db")
