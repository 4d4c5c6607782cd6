"""Lookups shared by the registry's operations: artifacts, tasks and version specifiers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dpf_continual.errors import (
    ConfigError,
    IntegrityError,
    RegistryError,
    TaskNotFoundError,
    VersionNotFoundError,
)
from dpf_continual.naming import close_matches, validate_task_name
from dpf_continual.registry.artifacts import verify
from dpf_continual.registry.models import Artifact, PoolVersion, Run, Task, TaskPrompt

# SQLite allows 32,766 bound parameters per statement; stay far below it.
_CHUNK = 500

VersionSpec = int | str


class RunNotFoundError(RegistryError, KeyError):
    """No training run has the given id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    """Consecutive slices of ``items`` of at most ``size`` elements."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def put_artifacts(session: Session, artifacts: dict[str, tuple[str, bytes]]) -> None:
    """Store each ``sha256 -> (kind, bytes)`` not stored yet (equal content is stored once)."""
    digests = list(artifacts)
    stored: set[str] = set()
    for part in chunks(digests):
        stored.update(session.scalars(select(Artifact.sha256).where(Artifact.sha256.in_(part))))
    session.add_all(
        Artifact(sha256=digest, kind=kind, size=len(data), data=data)
        for digest, (kind, data) in artifacts.items()
        if digest not in stored
    )


def load_artifact(session: Session, digest: str, *, what: str) -> bytes:
    """The verified bytes of artifact ``digest``.

    Raises:
        IntegrityError: The artifact is missing or its bytes do not match ``digest``.
    """
    data = session.scalar(select(Artifact.data).where(Artifact.sha256 == digest))
    if data is None:
        raise IntegrityError(f"{what} is missing: artifact {digest[:12]} is not stored")
    return verify(bytes(data), digest, what=what)


def task_names(session: Session) -> list[str]:
    """Every registered task name, in stream order."""
    return list(session.scalars(select(Task.name).order_by(Task.position)))


def find_task(session: Session, name: str) -> Task:
    """The task called ``name``.

    Raises:
        ConfigError: ``name`` is not a slug.
        TaskNotFoundError: No such task (the message suggests close names).
    """
    validate_task_name(name)
    task = session.scalar(select(Task).where(Task.name == name))
    if task is None:
        raise TaskNotFoundError(
            f"task {name!r} is not registered{close_matches(name, task_names(session))}"
        )
    return task


def find_tasks(session: Session, names: Iterable[str]) -> dict[str, Task]:
    """The tasks called ``names``, by name (same errors as :func:`find_task`)."""
    wanted = [validate_task_name(name) for name in names]
    found: dict[str, Task] = {}
    for part in chunks(wanted):
        found.update(
            (task.name, task) for task in session.scalars(select(Task).where(Task.name.in_(part)))
        )
    for name in wanted:
        if name not in found:
            find_task(session, name)  # raises with close matches
    return found


def find_run(session: Session, run_id: int) -> Run:
    """The run with id ``run_id``.

    Raises:
        RunNotFoundError: No such run.
    """
    run = session.get(Run, run_id)
    if run is None:
        raise RunNotFoundError(f"run {run_id!r} does not exist (runs: {_span(session, Run.id)})")
    return run


def check_version_spec(version: VersionSpec) -> VersionSpec:
    """Return ``version`` if it is ``"served"``, ``"latest"`` or a positive version number.

    Raises:
        ConfigError: Anything else.
    """
    if version in ("served", "latest"):
        return version
    if isinstance(version, int) and not isinstance(version, bool) and version >= 1:
        return version
    raise ConfigError(
        f"version {version!r} is not valid: expected 'served', 'latest' or a version number >= 1"
    )


def require_version(session: Session, number: int) -> PoolVersion:
    """The pool version ``number``.

    Raises:
        VersionNotFoundError: No such version.
    """
    version = session.get(PoolVersion, number)
    if version is None:
        raise VersionNotFoundError(
            f"pool version {number} does not exist (versions: {_span(session, PoolVersion.number)})"
        )
    return version


def explain_missing_prompt(
    session: Session, name: str, version: VersionSpec
) -> VersionNotFoundError:
    """The error for a task that holds no prompt under ``version`` (the task exists)."""
    task = find_task(session, name)
    held = list(
        session.scalars(
            select(TaskPrompt.version)
            .where(TaskPrompt.task_id == task.id)
            .order_by(TaskPrompt.version)
        )
    )
    if not held:
        return VersionNotFoundError(f"task {name!r} has no prompt yet: it has not been trained")
    if isinstance(version, int):
        require_version(session, version)
        listed = ", ".join(str(number) for number in held)
        return VersionNotFoundError(
            f"pool version {version} holds no prompt for task {name!r} "
            f"(versions with one: {listed})"
        )
    return VersionNotFoundError(f"task {name!r} has no {version} prompt")


def _span(session: Session, column: Any) -> str:
    low, high = session.execute(select(func.min(column), func.max(column))).one()
    return "none yet" if low is None else f"{low}-{high}" if low != high else str(low)
