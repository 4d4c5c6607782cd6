"""The schema revision of a registry: read it, create the schema, upgrade an older one.

Opening a registry whose revision is the newest this code knows costs one small query and no
Alembic import. Alembic runs only to create a registry or to upgrade an older one, inside the
caller's write transaction, so a crash mid-upgrade leaves the old schema in place.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection, inspect, text

from dpf_continual.errors import SchemaVersionError

logger = logging.getLogger(__name__)

# Every revision in migrations/versions, oldest first; a test checks this against Alembic.
REVISIONS = ("0001_initial", "0002_query_indexes")
HEAD = REVISIONS[-1]
MIGRATIONS = Path(__file__).parent / "migrations"


def current_revision(connection: Connection) -> str | None:
    """The registry's schema revision, or ``None`` when it has no schema yet."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def check_revision(revision: str, *, url: str) -> bool:
    """Whether ``revision`` needs an upgrade (``False`` when it is the newest).

    Raises:
        SchemaVersionError: The revision is unknown to this code, so it comes from a newer one.
    """
    if revision == HEAD:
        return False
    if revision in REVISIONS:
        return True
    raise SchemaVersionError(
        f"the registry at {url} has schema revision {revision!r}, newer than this dpf-continual "
        f"knows (newest: {HEAD!r}); upgrade dpf-continual to open it"
    )


def upgrade(connection: Connection) -> None:
    """Create the schema or bring it to :data:`HEAD`, within ``connection``'s transaction."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, HEAD)
    logger.info("registry schema is at revision %s", HEAD)
