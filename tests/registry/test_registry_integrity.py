"""Damage done to a registry from outside is found and named, never served."""

from __future__ import annotations

import sqlite3

import pytest

from dpf_continual.errors import IntegrityError


@pytest.fixture
def trained(make_registry, sqlite_url, add_tasks, commit):
    """A SQLite registry with tasks a, b and one version holding prompts for both."""
    registry = make_registry(sqlite_url)
    add_tasks(registry, "a", "b")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a", "b"])
    return registry


def raw(registry) -> sqlite3.Connection:
    """A plain sqlite3 connection to the registry file, foreign keys off, committing each change."""
    return sqlite3.connect(registry.url.removeprefix("sqlite:///"), isolation_level=None)


def flip_last_byte(connection: sqlite3.Connection, digest: str) -> None:
    (data,) = connection.execute(
        "SELECT data FROM artifacts WHERE sha256 = ?", (digest,)
    ).fetchone()
    changed = data[:-1] + bytes([data[-1] ^ 0xFF])
    connection.execute("UPDATE artifacts SET data = ? WHERE sha256 = ?", (changed, digest))


def digest_of(connection: sqlite3.Connection, query: str) -> str:
    return connection.execute(query).fetchone()[0]


def test_a_corrupted_embedding_is_named(trained):
    with raw(trained) as connection:
        digest = digest_of(connection, "SELECT embedding_sha256 FROM tasks WHERE name = 'b'")
        flip_last_byte(connection, digest)
    expected = (
        r"^embedding of task 'b' is corrupted: stored bytes hash to \w{12}, "
        rf"expected {digest[:12]}$"
    )
    with pytest.raises(IntegrityError, match=expected):
        trained.similar("a")
    with pytest.raises(IntegrityError, match=expected):
        trained.task_embedding("b")


def test_corrupted_weights_and_data_are_named(trained):
    with raw(trained) as connection:
        weights = digest_of(connection, "SELECT weights_sha256 FROM task_prompts WHERE task_id = 1")
        data = digest_of(connection, "SELECT data_sha256 FROM tasks WHERE name = 'b'")
        flip_last_byte(connection, weights)
        flip_last_byte(connection, data)
    with pytest.raises(
        IntegrityError, match=r"^weights of task 'a' in pool version 1 is corrupted"
    ):
        trained.task_prompt("a")
    with pytest.raises(IntegrityError, match=r"^data of task 'b' is corrupted"):
        trained.task_data("b")
    assert trained.prompt("a").shape == (4, 16)  # the prompt itself is intact
    assert len(trained.check_integrity()) == 2


def test_a_corrupted_state_is_named(trained):
    with raw(trained) as connection:
        flip_last_byte(connection, digest_of(connection, "SELECT content_hash FROM pool_versions"))
    with pytest.raises(IntegrityError, match=r"^state of pool version 1 is corrupted"):
        trained.pool_state()


def test_a_missing_prompt_artifact_is_found(trained):
    with raw(trained) as connection:
        digest = digest_of(connection, "SELECT prompt_sha256 FROM task_prompts WHERE task_id = 2")
        connection.execute("DELETE FROM artifacts WHERE sha256 = ?", (digest,))
    with pytest.raises(
        IntegrityError,
        match=rf"^prompt of task 'b' in pool version 1 is missing: artifact {digest[:12]}$",
    ):
        trained.prompt("b")
    problems = trained.check_integrity()
    assert f"prompt of task 'b' in pool version 1 is missing: artifact {digest[:12]}" in problems
    assert any(problem.startswith("dangling reference: row ") for problem in problems)


def test_half_versions_and_bad_serving_are_found(trained):
    with raw(trained) as connection:
        connection.execute("DELETE FROM task_prompts WHERE task_id = 1")
    problems = trained.check_integrity()
    assert problems == [
        "pool version 1 is incomplete: no prompt for its trained task",
        "task 'a' serves pool version 1, which holds no prompt for it",
    ]
