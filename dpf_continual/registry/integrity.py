"""A full check of a registry: database health, artifact digests, references, whole versions.

Writes are single transactions, so none of these problems should ever appear; the check exists to
prove that (the crash tests call it after killing writers) and to find damage done from outside.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from dpf_continual.errors import IntegrityError
from dpf_continual.registry.artifacts import sha256_hex, tensor_shape
from dpf_continual.registry.models import Artifact, PoolVersion, Serving, Task, TaskPrompt


def check_integrity(session: Session, *, sqlite: bool) -> list[str]:
    """Every problem found, one sentence each; an empty list means the registry is sound."""
    problems = _sqlite_health(session) if sqlite else []
    shapes, stored = _scan_artifacts(session, problems)
    _check_references(session, stored, problems)
    _check_versions(session, shapes, problems)
    _check_serving(session, problems)
    return problems


def _sqlite_health(session: Session) -> list[str]:
    problems = []
    verdict = session.execute(text("PRAGMA quick_check")).scalars().all()
    if verdict != ["ok"]:
        problems += [f"SQLite quick_check: {line}" for line in verdict]
    for table, rowid, parent, _ in session.execute(text("PRAGMA foreign_key_check")):
        problems.append(
            f"dangling reference: row {rowid} of {table} points to a missing {parent} row"
        )
    return problems


def _scan_artifacts(session: Session, problems: list[str]) -> tuple[dict[str, list[int]], set[str]]:
    """Verify every digest; returns the shapes of prompt artifacts and the set of digests."""
    shapes: dict[str, list[int]] = {}
    stored: set[str] = set()
    query = select(Artifact.sha256, Artifact.kind, Artifact.data).execution_options(yield_per=64)
    for digest, kind, data in session.execute(query):
        stored.add(digest)
        if sha256_hex(bytes(data)) != digest:
            problems.append(f"artifact {digest[:12]} ({kind}) is corrupted: its bytes do not match")
        elif kind == "prompt":
            try:
                shapes[digest] = tensor_shape(bytes(data), "prompt")
            except IntegrityError as error:
                problems.append(f"artifact {digest[:12]} (prompt) is unreadable: {error}")
    return shapes, stored


def _check_references(session: Session, stored: set[str], problems: list[str]) -> None:
    references = [
        (f"task {name!r} data", digest)
        for name, digest in session.execute(select(Task.name, Task.data_sha256))
    ]
    references += [
        (f"task {name!r} embedding", digest)
        for name, digest in session.execute(select(Task.name, Task.embedding_sha256))
    ]
    references += [
        (f"state of pool version {number}", digest)
        for number, digest in session.execute(select(PoolVersion.number, PoolVersion.content_hash))
    ]
    prompts = session.execute(
        select(
            Task.name, TaskPrompt.version, TaskPrompt.prompt_sha256, TaskPrompt.weights_sha256
        ).join(Task)
    )
    for name, version, prompt, weights in prompts:
        references.append((f"prompt of task {name!r} in pool version {version}", prompt))
        references.append((f"weights of task {name!r} in pool version {version}", weights))
    problems += [
        f"{what} is missing: artifact {digest[:12]}"
        for what, digest in references
        if digest not in stored
    ]


def _check_versions(session: Session, shapes: dict[str, list[int]], problems: list[str]) -> None:
    versions = {row.number: row for row in session.scalars(select(PoolVersion))}
    members: dict[int, dict[int, str]] = {number: {} for number in versions}
    for task_id, number, digest in session.execute(
        select(TaskPrompt.task_id, TaskPrompt.version, TaskPrompt.prompt_sha256)
    ):
        members.setdefault(number, {})[task_id] = digest
    for number, row in versions.items():
        if row.parent is not None and row.parent not in versions:
            problems.append(f"pool version {number} has a missing parent {row.parent}")
        held = members[number]
        if not held or (row.trained_task_id is not None and row.trained_task_id not in held):
            problems.append(f"pool version {number} is incomplete: no prompt for its trained task")
        expected = [row.prompt_length, row.hidden_size]
        wrong = [
            digest for digest in held.values() if digest in shapes and shapes[digest] != expected
        ]
        if wrong:
            problems.append(
                f"pool version {number} holds {len(wrong)} prompts not of shape {expected}"
            )


def _check_serving(session: Session, problems: list[str]) -> None:
    rows = session.execute(
        select(Task.name, Serving.version, TaskPrompt.version)
        .join(Task, Task.id == Serving.task_id)
        .outerjoin(
            TaskPrompt,
            (TaskPrompt.task_id == Serving.task_id) & (TaskPrompt.version == Serving.version),
        )
    )
    for name, served, held in rows:
        if held is None:
            problems.append(
                f"task {name!r} serves pool version {served}, which holds no prompt for it"
            )
