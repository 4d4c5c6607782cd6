"""Reading one task's prompt: the hot path behind ``Registry.prompt`` and ``dpf-cl prompt``.

One prepared SELECT per kind of version specifier finds the prompt row and its bytes through the
indexes on task name, serving and ``(task, version)``; the bytes are verified against their
digest before anyone sees them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import Connection, Select, bindparam, select

from dpf_continual.errors import IntegrityError
from dpf_continual.naming import validate_task_name
from dpf_continual.registry.artifacts import verify
from dpf_continual.registry.models import Artifact, Serving, Task, TaskPrompt
from dpf_continual.registry.store import VersionSpec, check_version_spec


@dataclass(frozen=True)
class StoredPrompt:
    """A task's prompt row under one version, with the verified safetensors bytes of the prompt."""

    task: str
    version: int
    weights_sha256: str
    dev_score: float | None
    test_score: float | None
    data: bytes


def find_prompt(connection: Connection, name: str, version: VersionSpec) -> StoredPrompt | None:
    """The prompt of ``name`` under ``version``, or ``None`` when there is none.

    Raises:
        ConfigError: ``name`` is not a slug, or ``version`` is not a valid specifier.
        IntegrityError: The prompt row exists but its bytes are missing or corrupted.
    """
    validate_task_name(name)
    check_version_spec(version)
    if isinstance(version, int):
        row = connection.execute(_query("number"), {"name": name, "version": version}).first()
    else:
        row = connection.execute(_query(version), {"name": name}).first()
    if row is None:
        return None
    what = f"prompt of task {name!r} in pool version {row.version}"
    if row.data is None:
        raise IntegrityError(f"{what} is missing: artifact {row.prompt_sha256[:12]}")
    return StoredPrompt(
        task=name,
        version=row.version,
        weights_sha256=row.weights_sha256,
        dev_score=row.dev_score,
        test_score=row.test_score,
        data=verify(bytes(row.data), row.prompt_sha256, what=what),
    )


@functools.cache
def _query(kind: str) -> Select:
    """The SELECT for ``"served"``, ``"latest"`` or ``"number"``, built once."""
    query = (
        select(
            TaskPrompt.version,
            TaskPrompt.prompt_sha256,
            TaskPrompt.weights_sha256,
            TaskPrompt.dev_score,
            TaskPrompt.test_score,
            Artifact.data,
        )
        .join(Task, Task.id == TaskPrompt.task_id)
        .outerjoin(Artifact, Artifact.sha256 == TaskPrompt.prompt_sha256)
        .where(Task.name == bindparam("name"))
    )
    if kind == "served":
        return query.join(
            Serving,
            (Serving.task_id == TaskPrompt.task_id) & (Serving.version == TaskPrompt.version),
        )
    if kind == "latest":
        return query.order_by(TaskPrompt.version.desc()).limit(1)
    return query.where(TaskPrompt.version == bindparam("version"))
