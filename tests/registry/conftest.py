"""Fixtures for the registry tests: registries on temporary SQLite files (and PostgreSQL when
``DPF_TEST_POSTGRES_URL`` is set), and factories that fill them with tasks and versions.

Registries here use a small width ``d = 16`` and prompt length ``L = 4``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import torch

from dpf_continual.registry import Registry, TaskPromptRecord, VersionInfo

HIDDEN = 16
LENGTH = 4
POOL = 3


def _postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    base = os.environ.get("DPF_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("set DPF_TEST_POSTGRES_URL to a PostgreSQL server to run these tests on it")
    pytest.importorskip("psycopg", reason="the PostgreSQL tests need psycopg (v3)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from dpf_continual.registry.database import parse_url

    admin_url = parse_url(base)
    name = f"dpf_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """The URL of a place with no registry yet: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    """The URL of a SQLite file that does not exist yet."""
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def make_registry() -> Iterator[Callable[[str], Registry]]:
    """Factory: a small registry (``d = 16``, ``L = 4``) at the given URL, closed after the test."""
    opened: list[Registry] = []

    def make(url: str) -> Registry:
        registry = Registry.init(
            url, backbone="tiny-test", hidden_size=HIDDEN, prompt_length=LENGTH
        )
        opened.append(registry)
        return registry

    yield make
    for registry in opened:
        registry.close()


@pytest.fixture
def registry(make_registry, backend_url) -> Registry:
    """A small, empty registry on each backend."""
    return make_registry(backend_url)


def add_task(
    registry: Registry,
    name: str,
    *,
    checksum: str | None = None,
    embedding: torch.Tensor | None = None,
    replace: bool = False,
):
    """Register task ``name`` with a few examples; the embedding is seeded by the name."""
    generator = torch.Generator().manual_seed(sum(map(ord, name)))
    vector = torch.randn(registry.settings.hidden_size, generator=generator)
    return registry.add_task(
        name=name,
        kind="choice",
        metric="accuracy",
        domain="news",
        source=f"crossfit:{name}",
        label_names=["no", "yes"],
        data_checksum=checksum or f"sum-{name}",
        embedding=vector if embedding is None else embedding,
        data={
            "train": [
                {"input": f"{name} {i}", "output": "yes", "options": ["no", "yes"]}
                for i in range(3)
            ],
            "dev": [{"input": "d", "output": "no", "options": ["no", "yes"]}],
            "test": [],
        },
        replace=replace,
    )


@pytest.fixture
def add_tasks() -> Callable[..., list[str]]:
    """Factory: register the given task names on a registry; returns the names."""

    def add(registry: Registry, *names: str) -> list[str]:
        for name in names:
            add_task(registry, name)
        return list(names)

    return add


def prompt_record(
    seed: int, *, dev: float | None = 0.5, test: float | None = 0.5, length: int = LENGTH
) -> TaskPromptRecord:
    """A random prompt ``[L, d]`` with weights ``[K]`` and the given scores."""
    generator = torch.Generator().manual_seed(seed)
    return TaskPromptRecord(
        prompt=torch.randn(length, HIDDEN, generator=generator),
        weights=torch.softmax(torch.randn(POOL, generator=generator), dim=0),
        dev_score=dev,
        test_score=test,
    )


@pytest.fixture
def commit() -> Callable[..., VersionInfo]:
    """Factory: commit a version after training ``trained``, with prompts for ``tasks``.

    ``scores`` maps a task to ``(dev, test)``; others get ``(0.5, 0.5)``.
    """

    def write(
        registry: Registry,
        run_id: int,
        trained: str,
        tasks: list[str],
        *,
        scores: dict[str, tuple[float | None, float | None]] | None = None,
        parent: int | None = None,
        tolerance: float = 0.0,
        seed: int = 0,
    ) -> VersionInfo:
        scores = scores or {}
        prompts = {
            name: prompt_record(
                seed * 1000 + i,
                dev=scores.get(name, (0.5, 0.5))[0],
                test=scores.get(name, (0.5, 0.5))[1],
            )
            for i, name in enumerate(tasks)
        }
        state = {"pool": torch.randn(POOL, LENGTH, HIDDEN), "gate.weight": torch.eye(HIDDEN)}
        return registry.commit_version(
            run_id=run_id,
            parent=parent,
            state=state,
            prompts=prompts,
            trained_task=trained,
            reason=f"trained {trained}",
            serve_tolerance=tolerance,
        )

    return write


@pytest.fixture
def register() -> Callable[..., object]:
    """Factory: register one task (see :func:`add_task`); returns the :class:`AddTaskResult`."""
    return add_task


@pytest.fixture
def make_prompt() -> Callable[..., TaskPromptRecord]:
    """Factory: a random :class:`TaskPromptRecord` (see :func:`prompt_record`)."""
    return prompt_record
