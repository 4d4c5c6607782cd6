"""Alembic environment for the registry.

The registry runs migrations itself (see ``schema.upgrade``) on a connection it has already
opened and locked, passed in as ``config.attributes["connection"]``. Developers writing a new
revision can point ``alembic -c dpf_continual/registry/alembic.ini`` at a scratch database with
``-x url=sqlite:///scratch.db``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from dpf_continual.registry.models import Base


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate the given connection, or a database named with ``-x url=...``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic ... -x url=sqlite:///scratch.db")
    with create_engine(url).connect() as own_connection:
        _run(own_connection)
        own_connection.commit()


if context.is_offline_mode():
    raise SystemExit("the registry's migrations run online only")
run_online()
