"""Task operations: register tasks, list them, read their data and embeddings, find neighbours.

Similarity is computed in pure Python on the stored float32 bytes, so ``dpf-cl similar`` needs
no torch; decoded embeddings are cached by digest (artifacts never change).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dpf_continual.errors import (
    BackboneMismatchError,
    ConfigError,
    DuplicateTaskError,
    IntegrityError,
)
from dpf_continual.naming import validate_task_name
from dpf_continual.registry.artifacts import (
    encode_json,
    encode_tensors,
    read_floats,
    sha256_hex,
    verify,
)
from dpf_continual.registry.models import Artifact, Serving, Task, TaskPrompt, as_utc, utc_now
from dpf_continual.registry.records import TaskInfo
from dpf_continual.registry.store import find_task, put_artifacts

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class NewTask:
    """A task ready to be written: validated fields and encoded artifacts."""

    fields: dict[str, Any]
    data_checksum: str
    data_artifact: tuple[str, bytes]  # (digest, gzip JSON)
    embedding_artifact: tuple[str, bytes]  # (digest, safetensors)


def prepare_task(
    *,
    name: str,
    kind: str,
    metric: str,
    domain: str,
    source: str,
    label_names: list[str],
    data_checksum: str,
    embedding: torch.Tensor,
    data: dict[str, list[dict[str, Any]]],
    hidden_size: int,
) -> NewTask:
    """Validate a task and encode its artifacts, before any lock is taken.

    Raises:
        ConfigError: The name is not a slug, or ``data`` is not a dict of lists.
        BackboneMismatchError: ``embedding`` is not ``[hidden_size]``.
    """
    validate_task_name(name)
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ConfigError(f"data of task {name!r} must map split names to lists of examples")
    shape = list(embedding.shape)
    if shape != [hidden_size]:
        raise BackboneMismatchError(
            f"embedding of task {name!r} has shape {shape}, expected [{hidden_size}] "
            "(the registry backbone's width)"
        )
    data_bytes = encode_json(data)
    embedding_bytes = encode_tensors({"embedding": embedding.float()})
    fields = {
        "name": name,
        "kind": kind,
        "metric": metric,
        "domain": domain,
        "source": source,
        "label_names": list(label_names),
        "split_sizes": {split: len(examples) for split, examples in data.items()},
    }
    return NewTask(
        fields=fields,
        data_checksum=data_checksum,
        data_artifact=(sha256_hex(data_bytes), data_bytes),
        embedding_artifact=(sha256_hex(embedding_bytes), embedding_bytes),
    )


def add_task(session: Session, new: NewTask, *, replace: bool) -> tuple[str, str]:
    """Write a prepared task; returns ``(status, name)``.

    Raises:
        DuplicateTaskError: The name is taken by different data and ``replace`` is false.
    """
    name = new.fields["name"]
    task = session.scalar(select(Task).where(Task.name == name))
    if task is not None and task.data_checksum == new.data_checksum:
        return "unchanged", name
    if task is not None and not replace:
        raise DuplicateTaskError(
            f"task {name!r} is already registered with other data (checksum "
            f"{task.data_checksum[:12]}, new {new.data_checksum[:12]}); pass replace=True "
            "(--replace) to replace it"
        )
    put_artifacts(
        session,
        {
            new.data_artifact[0]: ("task_data", new.data_artifact[1]),
            new.embedding_artifact[0]: ("embedding", new.embedding_artifact[1]),
        },
    )
    values = {
        **new.fields,
        "data_checksum": new.data_checksum,
        "data_sha256": new.data_artifact[0],
        "embedding_sha256": new.embedding_artifact[0],
        "status": "pending",
        "updated_at": utc_now(),
    }
    if task is None:
        position = (session.scalar(select(func.max(Task.position))) or 0) + 1
        session.add(Task(**values, position=position))
        return "added", name

    # A replaced task keeps its place in the stream and its old prompts; it must be trained again.
    for key, value in values.items():
        setattr(task, key, value)
    return "replaced", name


def task_infos(session: Session, names: list[str] | None = None) -> list[TaskInfo]:
    """Tasks in stream order (all, or only ``names``), with served and latest versions."""
    latest = (
        select(TaskPrompt.task_id, func.max(TaskPrompt.version).label("latest"))
        .group_by(TaskPrompt.task_id)
        .subquery()
    )
    query = (
        select(Task, Serving.version, latest.c.latest)
        .outerjoin(Serving, Serving.task_id == Task.id)
        .outerjoin(latest, latest.c.task_id == Task.id)
        .order_by(Task.position)
    )
    if names is not None:
        query = query.where(Task.name.in_(names))
    return [to_info(task, served, newest) for task, served, newest in session.execute(query)]


def to_info(task: Task, served: int | None, latest: int | None) -> TaskInfo:
    """A detached :class:`TaskInfo` of a task row."""
    return TaskInfo(
        name=task.name,
        kind=task.kind,
        metric=task.metric,
        domain=task.domain,
        source=task.source,
        label_names=list(task.label_names),
        data_checksum=task.data_checksum,
        position=task.position,
        status=task.status,
        split_sizes=dict(task.split_sizes),
        served_version=served,
        latest_version=latest,
        created_at=as_utc(task.created_at),
    )


class EmbeddingIndex:
    """Task embeddings as Python floats, decoded once per digest, for cosine similarity."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[list[float], float]] = {}

    def vectors(self, session: Session) -> dict[str, tuple[list[float], float]]:
        """``name -> (values, norm)`` for every task, reading only embeddings not cached yet.

        Raises:
            IntegrityError: An embedding is missing or its bytes do not match their digest.
        """
        rows = session.execute(select(Task.name, Task.embedding_sha256)).all()
        owners = {digest: name for name, digest in rows if digest not in self._cache}
        if owners:
            query = select(Artifact.sha256, Artifact.data).where(Artifact.sha256.in_(owners))
            for digest, data in session.execute(query):
                what = f"embedding of task {owners[digest]!r}"
                _, values = read_floats(verify(bytes(data), digest, what=what), "embedding")
                self._cache[digest] = (values, math.sqrt(sum(v * v for v in values)))
        for name, digest in rows:
            if digest not in self._cache:
                raise IntegrityError(
                    f"embedding of task {name!r} is missing: artifact {digest[:12]}"
                )
        return {name: self._cache[digest] for name, digest in rows}

    def nearest(
        self, session: Session, query: list[float], *, k: int, exclude: set[str]
    ) -> list[tuple[str, float]]:
        """The ``k`` tasks whose embeddings have the highest cosine with ``query``, best first."""
        if k < 1:
            raise ConfigError(f"k {k!r} must be at least 1")
        norm = math.sqrt(sum(v * v for v in query)) or 1.0
        scores = []
        for name, (values, other_norm) in self.vectors(session).items():
            if name in exclude:
                continue
            dot = sum(map(operator.mul, query, values))
            scores.append((name, dot / (norm * (other_norm or 1.0))))
        scores.sort(key=lambda pair: (-pair[1], pair[0]))
        return scores[:k]

    def of_task(self, session: Session, name: str) -> list[float]:
        """The embedding of task ``name`` as floats."""
        task = find_task(session, name)
        return self.vectors(session)[task.name][0]
