"""Schema migrations, opening old and new registries, and what is not a registry."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from dpf_continual.errors import RegistryError, SchemaVersionError
from dpf_continual.registry import Registry, database, schema
from dpf_continual.registry.models import Base


def alembic_config(connection=None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def test_revisions_constant_matches_the_migration_scripts():
    scripts = ScriptDirectory.from_config(alembic_config())
    history = [script.revision for script in scripts.walk_revisions()]
    assert tuple(reversed(history)) == schema.REVISIONS
    assert scripts.get_current_head() == schema.HEAD


def test_migrations_build_exactly_the_models(backend_url):
    Registry.open(backend_url, create=True).close()
    engine = create_engine(database.parse_url(backend_url))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_an_older_registry_is_upgraded_when_opened(sqlite_url):
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0001_initial")
        connection.exec_driver_sql(
            "INSERT INTO registry_settings VALUES (1, 'old', 8, 2, 0.5, '2024-01-01 00:00:00')"
        )
    with engine.connect() as connection:
        assert "ix_task_prompts_version" not in {
            index["name"] for index in inspect(connection).get_indexes("task_prompts")
        }
    with Registry.open(sqlite_url) as registry:
        assert (registry.settings.backbone, registry.settings.hidden_size) == ("old", 8)
    with engine.connect() as connection:
        assert schema.current_revision(connection) == schema.HEAD
        indexes = {index["name"] for index in inspect(connection).get_indexes("task_prompts")}
    engine.dispose()
    assert "ix_task_prompts_version" in indexes


def test_a_newer_registry_is_refused(sqlite_url):
    Registry.open(sqlite_url, create=True).close()
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0003_from_the_future'")
    message = (
        r"^the registry at .+ has schema revision '0003_from_the_future', newer than this "
        r"dpf-continual knows \(newest: '0002_query_indexes'\); upgrade dpf-continual to open it$"
    )
    with pytest.raises(SchemaVersionError, match=message):
        Registry.open(sqlite_url)
    with pytest.raises(SchemaVersionError, match=message):
        Registry.open(sqlite_url, create=True)


def test_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are not the tables you are looking for" * 100)
    with pytest.raises(
        RegistryError, match=r"^cannot open the registry at .+: file is not a database$"
    ):
        Registry.open(f"sqlite:///{path}", create=True)
    assert path.read_bytes().startswith(b"these are not")


def test_an_empty_database_is_no_registry(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(RegistryError, match=r"^no registry at sqlite:///.+empty\.db; create one"):
        Registry.open(f"sqlite:///{path}")


def test_an_unreachable_server(monkeypatch):
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://someone:secret@127.0.0.1:9/registry"
    expected = (
        r"^cannot reach the registry at "
        r"postgresql\+psycopg://someone:\*\*\*@127\.0\.0\.1:9/registry: "
    )
    with pytest.raises(RegistryError, match=expected):
        Registry.open(url)


def test_a_missing_driver_is_named():
    expected = (
        r"^the database driver 'MySQLdb' for 'mysql\+mysqldb://u@localhost/x' is not installed"
    )
    with pytest.raises(RegistryError, match=expected):
        Registry.open("mysql+mysqldb://u@localhost/x")


def test_a_locked_registry_gives_up_with_a_clear_error(sqlite_url, register, monkeypatch):
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(database, "WRITE_ATTEMPTS", 2)
    registry = Registry.init(sqlite_url, backbone="b", hidden_size=16)
    blocker = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(
            RegistryError,
            match=r"^the registry at .+ is locked by another writer; gave up after 2 attempts$",
        ):
            register(registry, "a")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert registry.tasks() == []
    registry.close()


def test_a_write_waits_for_a_short_lock(sqlite_url, register, monkeypatch):
    monkeypatch.setattr(database, "BUSY_TIMEOUT_S", 0.05)
    registry = Registry.init(sqlite_url, backbone="b", hidden_size=16)
    blocker = sqlite3.connect(
        sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
    )
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: blocker.execute("ROLLBACK"))
    release.start()
    started = time.monotonic()
    assert register(registry, "a").status == "added"
    assert time.monotonic() - started >= 0.25
    release.join()
    blocker.close()
    registry.close()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url):
    registry = Registry.open(sqlite_url, create=True)
    with registry._db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    registry.close()


def test_no_pickle_in_the_registry():
    source = Path(schema.__file__).parent
    for path in source.rglob("*.py"):
        text = path.read_text()
        for forbidden in ("import pickle", "pickle.load", "torch.load(", "weights_only"):
            assert forbidden not in text, path
