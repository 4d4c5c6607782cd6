"""Opening a registry: find it, create it, upgrade it, read what it is bound to.

A SQLite file that does not exist is never created by merely looking for it, so a mistyped
``--registry`` leaves nothing behind. Creation runs the migrations and writes the settings row in
one write transaction; two processes creating the same registry at once end with one registry.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from dpf_continual.errors import BackboneMismatchError, ConfigError, RegistryError
from dpf_continual.registry import schema
from dpf_continual.registry.database import Database, describe_error
from dpf_continual.registry.models import Settings
from dpf_continual.registry.records import RegistrySettings

logger = logging.getLogger(__name__)


def open_database(
    url: str,
    *,
    create_with: RegistrySettings | None,
    require: RegistrySettings | None = None,
) -> tuple[Database, RegistrySettings, bool]:
    """Open (or create) the registry at ``url``.

    Args:
        url: Any SQLAlchemy URL.
        create_with: Settings for a new registry when there is none; ``None`` forbids creating.
        require: Settings an existing registry must have.

    Returns:
        The database, the registry's settings, and whether it was created now.

    Raises:
        RegistryError: Malformed URL, unreachable database, or no registry there.
        SchemaVersionError: The registry is newer than this code.
        BackboneMismatchError, ConfigError: The registry has other settings than ``require``.
    """
    database = Database(url)
    try:
        settings, created = _open(database, create_with)
        if require is not None and not created:
            _check_same(database, settings, require)
        return database, settings, created
    except BaseException:
        database.dispose()
        raise


def _open(
    database: Database, create_with: RegistrySettings | None
) -> tuple[RegistrySettings, bool]:
    path = database.sqlite_path
    if path is not None and not path.exists():
        if create_with is None:
            raise _no_registry(database)
        path.parent.mkdir(parents=True, exist_ok=True)

    revision, settings = _peek(database)
    needs_upgrade = revision is not None and schema.check_revision(revision, url=database.safe_url)
    if settings is None:
        if create_with is None:
            raise _no_registry(database)
        return _create(database, create_with)
    if needs_upgrade:
        logger.info("upgrading the registry at %s from schema %s", database.safe_url, revision)
        database.write(lambda session: schema.upgrade(session.connection()))
    return settings, False


def _peek(database: Database) -> tuple[str | None, RegistrySettings | None]:
    """The schema revision and settings, or ``None`` for what is not there yet."""
    try:
        connection = database.engine.connect()
    except DBAPIError as error:
        verb = "open" if database.is_sqlite else "reach"
        raise RegistryError(
            f"cannot {verb} the registry at {database.safe_url}: {describe_error(error)}"
        ) from None
    with database.errors(), connection:
        revision = schema.current_revision(connection)
        return revision, (_read_settings(connection) if revision else None)


def _read_settings(connection: Connection) -> RegistrySettings | None:
    query = select(
        Settings.backbone, Settings.hidden_size, Settings.prompt_length, Settings.temperature
    ).where(Settings.id == 1)
    row = connection.execute(query).first()
    if row is None:
        return None
    return RegistrySettings(
        backbone=row.backbone,
        hidden_size=row.hidden_size,
        prompt_length=row.prompt_length,
        temperature=row.temperature,
    )


def _create(database: Database, wanted: RegistrySettings) -> tuple[RegistrySettings, bool]:
    def work(session: Session) -> tuple[RegistrySettings, bool]:
        # Look again under the lock: another process may have created it meanwhile.
        connection = session.connection()
        revision = schema.current_revision(connection)
        if revision is None or schema.check_revision(revision, url=database.safe_url):
            schema.upgrade(connection)
        existing = _read_settings(connection)
        if existing is not None:
            return existing, False
        session.add(
            Settings(
                id=1,
                backbone=wanted.backbone,
                hidden_size=wanted.hidden_size,
                prompt_length=wanted.prompt_length,
                temperature=wanted.temperature,
            )
        )
        return wanted, True

    settings, created = database.write(work, creating=True)
    if created:
        logger.info(
            "created a registry at %s for backbone %s", database.safe_url, settings.backbone
        )
    return settings, created


def _check_same(database: Database, found: RegistrySettings, wanted: RegistrySettings) -> None:
    differences = found.differences(wanted)
    if not differences:
        return
    message = (
        f"the registry at {database.safe_url} already exists with other settings "
        f"({'; '.join(differences)}); use it as it is or choose another --registry"
    )
    if found.backbone != wanted.backbone or found.hidden_size != wanted.hidden_size:
        raise BackboneMismatchError(message)
    raise ConfigError(message)


def _no_registry(database: Database) -> RegistryError:
    return RegistryError(f"no registry at {database.safe_url}; create one with `dpf-cl init`")
