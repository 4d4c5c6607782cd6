"""Connections to the registry database: URLs, SQLite settings, transactions and retries.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Every write is one transaction
that takes the write lock up front (``BEGIN IMMEDIATE`` on SQLite; a row lock on the settings row,
or an advisory lock while creating, on servers), so a writer never reads a stale "next number"
and a killed writer leaves nothing behind. A write that meets a locked database is retried.
"""

from __future__ import annotations

import importlib.util
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session

from dpf_continual.errors import RegistryError
from dpf_continual.registry.models import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_S = 30.0
WRITE_ATTEMPTS = 6
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization failure, deadlock
_CREATE_LOCK_KEY = 0x44504643  # "DPFC": the PostgreSQL advisory lock taken while creating


def parse_url(url: str) -> URL:
    """Parse a SQLAlchemy URL, naming the value when it cannot be read.

    ``postgresql://`` means the psycopg (v3) driver when it is installed.

    Raises:
        RegistryError: ``url`` is not a SQLAlchemy URL.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        raise RegistryError(
            f"malformed registry URL {url!r}: expected a SQLAlchemy URL such as "
            "sqlite:///path/to/registry.db or postgresql+psycopg://user@host/dbname"
        ) from None
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def describe_error(error: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's links and parameters."""
    cause = getattr(error, "orig", None) or error
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


def is_lock_error(error: DBAPIError) -> bool:
    """Whether ``error`` is transient contention that a retry can get past."""
    message = str(error.orig).lower()
    if "database is locked" in message or "database is busy" in message:
        return True
    return getattr(error.orig, "sqlstate", None) in _RETRY_SQLSTATES


class Database:
    """An engine bound to one registry URL, with read and write transactions.

    Args:
        url: Any SQLAlchemy URL.

    Raises:
        RegistryError: The URL is malformed or names a database kind or driver not installed.
    """

    def __init__(self, url: str) -> None:
        self.url = parse_url(url)
        self.safe_url = self.url.render_as_string(hide_password=True)
        self.engine = self._make_engine()

    @property
    def is_sqlite(self) -> bool:
        """Whether the registry is a SQLite database."""
        return self.url.get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> Path | None:
        """The file of a file-backed SQLite registry, else ``None``."""
        database = self.url.database
        if not self.is_sqlite or not database or database == ":memory:":
            return None
        return Path(database)

    def _make_engine(self) -> Engine:
        try:
            if self.is_sqlite:
                engine = create_engine(self.url, connect_args={"timeout": BUSY_TIMEOUT_S})
                _configure_sqlite(engine)
                return engine
            return create_engine(self.url, pool_pre_ping=True)
        except NoSuchModuleError:
            raise RegistryError(
                f"malformed registry URL {self.safe_url!r}: unknown database kind "
                f"{self.url.drivername!r}; use sqlite:///... or postgresql+psycopg://..."
            ) from None
        except ModuleNotFoundError as error:
            raise RegistryError(
                f"the database driver {error.name!r} for {self.safe_url!r} is not installed "
                "(for PostgreSQL: pip install 'psycopg[binary]')"
            ) from None

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn database errors raised inside the block into one-line :class:`RegistryError`."""
        try:
            yield
        except OperationalError as error:
            raise RegistryError(
                f"cannot use the registry at {self.safe_url}: {describe_error(error)}"
            ) from None
        except DBAPIError as error:
            raise RegistryError(
                f"the registry at {self.safe_url} failed a query: {describe_error(error)}"
            ) from None

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session in one read transaction (a consistent snapshot), rolled back at the end."""
        with self.errors(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def quick_read(self) -> Iterator[Connection]:
        """A connection for a single SELECT, which is consistent by itself, so no BEGIN is sent."""
        with self.errors(), self.engine.connect() as connection:
            connection.execution_options(registry_single_statement=True)
            yield connection

    def write(self, work: Callable[[Session], T], *, creating: bool = False) -> T:
        """Run ``work(session)`` in one write transaction, committed only if it returns.

        ``work`` may run more than once when the database is locked, so it must not have effects
        outside the session. Encode tensors before calling this, so the lock is held briefly.

        Args:
            work: Adds, changes and queries rows through the session it gets.
            creating: The registry is being created, so there is no settings row to lock yet.

        Raises:
            RegistryError: The database stayed locked, or another database error occurred.
        """
        attempt = 1
        while True:
            try:
                with self.errors():
                    return self._write_once(work, creating=creating)
            except RegistryError as error:
                # errors() keeps the database error as the context of the one-line error.
                cause = error.__context__
                if not (isinstance(cause, DBAPIError) and is_lock_error(cause)):
                    raise
                if attempt == WRITE_ATTEMPTS:
                    raise RegistryError(
                        f"the registry at {self.safe_url} is locked by another writer; "
                        f"gave up after {attempt} attempts"
                    ) from None
            delay = min(2.0, 0.05 * 2**attempt) * (0.5 + random.random())
            logger.warning("registry is locked, retrying in %.2f s", delay)
            time.sleep(delay)
            attempt += 1

    def _write_once(self, work: Callable[[Session], T], *, creating: bool) -> T:
        with self.engine.connect() as connection:
            connection.execution_options(registry_write=True)
            with connection.begin():
                self._lock(connection, creating=creating)
                with Session(bind=connection, expire_on_commit=False) as session:
                    result = work(session)
                    session.flush()
                return result

    def _lock(self, connection: Connection, *, creating: bool) -> None:
        # SQLite holds the write lock since BEGIN IMMEDIATE; servers need an explicit lock.
        if self.is_sqlite:
            return
        if creating:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK_KEY}
            )
        else:
            connection.execute(select(Settings.id).where(Settings.id == 1).with_for_update())


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys and a busy timeout on every connection; BEGIN issued by us."""
    busy_ms = int(BUSY_TIMEOUT_S * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level, so that the "begin" hook below decides how to BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode, NORMAL never loses a commit when a process dies (only at a power cut, and
        # even then never half a transaction), and spares an fsync per commit.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers take the lock at BEGIN, so two writers never both read the same "next number".
        options = connection.get_execution_options()
        if options.get("registry_single_statement"):
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get("registry_write") else "BEGIN")
