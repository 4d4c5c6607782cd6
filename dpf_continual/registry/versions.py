"""Pool versions: write one atomically, list them, and move what a task serves.

Notation: ``K`` prompts in the pool, ``L`` virtual tokens per prompt, ``d`` the backbone width.

Serving rule: after a new version, a task's served version moves to it when the task serves
nothing yet, when the served prompt has no dev score, or when the new dev score is at least the
served one minus ``serve_tolerance``. Scores and the tolerance are fractions in ``[0, 1]``
(a tolerance of ``0.01`` allows a drop of one point). A new prompt without a dev score does not
replace a served prompt that has one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dpf_continual.errors import (
    BackboneMismatchError,
    ConfigError,
    IntegrityError,
    RegistryError,
    VersionNotFoundError,
)
from dpf_continual.naming import validate_task_name
from dpf_continual.registry.artifacts import encode_tensors, sha256_hex, verify
from dpf_continual.registry.models import (
    Artifact,
    Evaluation,
    PoolVersion,
    Serving,
    Task,
    TaskPrompt,
    as_utc,
    utc_now,
)
from dpf_continual.registry.records import RegistrySettings, TaskPromptRecord, VersionInfo
from dpf_continual.registry.store import (
    explain_missing_prompt,
    find_run,
    find_task,
    find_tasks,
    put_artifacts,
    require_version,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedPrompt:
    """One task's prompt and weights as safetensors bytes, with their digests and scores."""

    prompt: tuple[str, bytes]
    weights: tuple[str, bytes]
    dev_score: float | None
    test_score: float | None


@dataclass(frozen=True)
class EncodedVersion:
    """Everything a new version writes, validated and encoded before the lock is taken."""

    state: tuple[str, bytes]
    prompts: dict[str, EncodedPrompt]
    num_prompts: int


def encode_version(
    *,
    state: dict[str, torch.Tensor],
    prompts: dict[str, TaskPromptRecord],
    trained_task: str,
    settings: RegistrySettings,
) -> EncodedVersion:
    """Check shapes and scores, then encode every tensor of a new version.

    Raises:
        ConfigError: Empty state, the trained task missing from ``prompts``, weights of unequal
            length, or a score outside ``[0, 1]``.
        BackboneMismatchError: A prompt is not ``[L, d]`` for this registry.
    """
    validate_task_name(trained_task)
    if not state:
        raise ConfigError("state is empty: a pool version needs the trainable state to save")
    if trained_task not in prompts:
        raise ConfigError(f"prompts has no entry for the trained task {trained_task!r}")
    expected = [settings.prompt_length, settings.hidden_size]
    lengths = set()
    encoded = {}
    for name, record in prompts.items():
        validate_task_name(name)
        if list(record.prompt.shape) != expected:
            raise BackboneMismatchError(
                f"prompt of task {name!r} has shape {list(record.prompt.shape)}, expected "
                f"{expected} ([L, d] of this registry)"
            )
        if not bool(record.prompt.isfinite().all()):
            raise ConfigError(f"prompt of task {name!r} holds NaN or infinite values")
        if record.weights.dim() != 1:
            raise ConfigError(
                f"weights of task {name!r} must be [K], got {list(record.weights.shape)}"
            )
        lengths.add(record.weights.shape[0])
        encoded[name] = _encode_prompt(name, record)
    if len(lengths) != 1:
        raise ConfigError(
            f"weights of the tasks have different lengths {sorted(lengths)}: expected one K"
        )
    state_bytes = encode_tensors(state)
    return EncodedVersion(
        state=(sha256_hex(state_bytes), state_bytes), prompts=encoded, num_prompts=lengths.pop()
    )


def check_tolerance(tolerance: float) -> None:
    """Raise :class:`ConfigError` unless ``tolerance`` is a fraction in ``[0, 1]``."""
    if not 0.0 <= tolerance <= 1.0:
        raise ConfigError(
            f"serve_tolerance {tolerance!r} is outside [0, 1]: scores and the tolerance are "
            "fractions (0.01 allows a drop of one point)"
        )


def _encode_prompt(name: str, record: TaskPromptRecord) -> EncodedPrompt:
    for label, score in (("dev_score", record.dev_score), ("test_score", record.test_score)):
        if score is not None and not 0.0 <= score <= 1.0:
            raise ConfigError(
                f"{label} of task {name!r} is {score!r}: scores are fractions in [0, 1]"
            )
    prompt = encode_tensors({"prompt": record.prompt.float()})
    weights = encode_tensors({"weights": record.weights.float()})
    return EncodedPrompt(
        prompt=(sha256_hex(prompt), prompt),
        weights=(sha256_hex(weights), weights),
        dev_score=None if record.dev_score is None else float(record.dev_score),
        test_score=None if record.test_score is None else float(record.test_score),
    )


def commit_version(
    session: Session,
    encoded: EncodedVersion,
    *,
    run_id: int,
    parent: int | None,
    trained_task: str,
    reason: str,
    serve_tolerance: float,
    settings: RegistrySettings,
) -> int:
    """Write a new pool version with its prompts, evaluations and serving; returns its number.

    Runs inside the caller's write transaction, which holds the write lock, so the number read
    here is still free when the rows are inserted.
    """
    find_run(session, run_id)
    if parent is not None:
        require_version(session, parent)
    tasks = find_tasks(session, [trained_task, *encoded.prompts])
    latest = session.scalar(select(func.max(PoolVersion.number)))
    if tasks[trained_task].status != "pending" or (parent is not None and parent != latest):
        # Another process trained this registry meanwhile: refuse rather than fork the history.
        raise RegistryError(
            f"cannot write a version for task {trained_task!r} on top of version {parent}: "
            f"the registry moved on (latest version {latest}, task {trained_task!r} is "
            f"{tasks[trained_task].status}); another train-stream is using this registry"
        )
    number = (latest or 0) + 1

    artifacts = {encoded.state[0]: ("pool_state", encoded.state[1])}
    for item in encoded.prompts.values():
        artifacts[item.prompt[0]] = ("prompt", item.prompt[1])
        artifacts[item.weights[0]] = ("weights", item.weights[1])
    put_artifacts(session, artifacts)
    session.add(
        PoolVersion(
            number=number,
            parent=parent,
            backbone=settings.backbone,
            num_prompts=encoded.num_prompts,
            prompt_length=settings.prompt_length,
            hidden_size=settings.hidden_size,
            temperature=settings.temperature,
            content_hash=encoded.state[0],
            reason=reason,
            run_id=run_id,
            trained_task_id=tasks[trained_task].id,
        )
    )
    session.add_all(
        TaskPrompt(
            task_id=tasks[name].id,
            version=number,
            prompt_sha256=item.prompt[0],
            weights_sha256=item.weights[0],
            dev_score=item.dev_score,
            test_score=item.test_score,
        )
        for name, item in encoded.prompts.items()
    )
    tasks[trained_task].status = "trained"
    tasks[trained_task].updated_at = utc_now()
    session.flush()

    served_scores = _move_serving(session, encoded, tasks, number, serve_tolerance)
    _record_evaluations(session, encoded, tasks, number, run_id, trained_task, served_scores)
    logger.info(
        "wrote pool version %d after task %s (K=%d)", number, trained_task, encoded.num_prompts
    )
    return number


def _move_serving(
    session: Session,
    encoded: EncodedVersion,
    tasks: dict[str, Task],
    number: int,
    tolerance: float,
) -> dict[str, float | None]:
    """Apply the serving rule; returns each task's served test score after the move."""
    ids = [tasks[name].id for name in encoded.prompts]
    current = {
        serving.task_id: (serving, dev, test)
        for serving, dev, test in session.execute(
            select(Serving, TaskPrompt.dev_score, TaskPrompt.test_score)
            .join(
                TaskPrompt,
                (TaskPrompt.task_id == Serving.task_id) & (TaskPrompt.version == Serving.version),
            )
            .where(Serving.task_id.in_(ids))
        )
    }
    served_scores: dict[str, float | None] = {}
    for name, item in encoded.prompts.items():
        task_id = tasks[name].id
        serving, served_dev, served_test = current.get(task_id, (None, None, None))
        if serving is None:
            session.add(Serving(task_id=task_id, version=number))
        elif _should_move(item.dev_score, served_dev, tolerance):
            serving.version, serving.updated_at = number, utc_now()
        else:
            served_scores[name] = served_test
            continue
        served_scores[name] = item.test_score
    return served_scores


def _should_move(new_dev: float | None, served_dev: float | None, tolerance: float) -> bool:
    if served_dev is None:
        return True
    if new_dev is None:
        return False
    return new_dev >= served_dev - tolerance


def _record_evaluations(
    session: Session,
    encoded: EncodedVersion,
    tasks: dict[str, Task],
    number: int,
    run_id: int,
    trained_task: str,
    served_scores: dict[str, float | None],
) -> None:
    after = tasks[trained_task].id
    for name, item in encoded.prompts.items():
        cells = (("live", item.test_score), ("served", served_scores.get(name)))
        session.add_all(
            Evaluation(
                run_id=run_id,
                version=number,
                kind=kind,
                after_task_id=after,
                eval_task_id=tasks[name].id,
                score=score,
            )
            for kind, score in cells
            if score is not None
        )


def version_infos(session: Session, numbers: list[int] | None = None) -> list[VersionInfo]:
    """Pool versions in order (all, or only ``numbers``), each with its tasks in stream order."""
    query = (
        select(PoolVersion, Task.name)
        .outerjoin(Task, Task.id == PoolVersion.trained_task_id)
        .order_by(PoolVersion.number)
    )
    members = select(TaskPrompt.version, Task.name).join(Task).order_by(Task.position)
    if numbers is not None:
        query = query.where(PoolVersion.number.in_(numbers))
        members = members.where(TaskPrompt.version.in_(numbers))
    names: dict[int, list[str]] = {}
    for number, name in session.execute(members):
        names.setdefault(number, []).append(name)
    return [
        VersionInfo(
            number=row.number,
            parent=row.parent,
            backbone=row.backbone,
            num_prompts=row.num_prompts,
            prompt_length=row.prompt_length,
            hidden_size=row.hidden_size,
            temperature=row.temperature,
            content_hash=row.content_hash,
            reason=row.reason,
            run_id=row.run_id,
            trained_task=trained,
            created_at=as_utc(row.created_at),
            tasks=names.get(row.number, []),
        )
        for row, trained in session.execute(query)
    ]


def latest_number(session: Session) -> int | None:
    """The newest version number, or ``None`` when there is none."""
    return session.scalar(select(func.max(PoolVersion.number)))


def rollback(session: Session, name: str, version: int) -> None:
    """Make task ``name`` serve its prompt from ``version``.

    Raises:
        ConfigError: ``version`` is not a version number.
        TaskNotFoundError: No such task.
        VersionNotFoundError: ``version`` holds no prompt for the task.
    """
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ConfigError(f"version {version!r} is not valid: expected a version number >= 1")
    task = find_task(session, name)
    if session.get(TaskPrompt, (task.id, version)) is None:
        raise explain_missing_prompt(session, name, version)
    serving = session.get(Serving, task.id)
    if serving is None:
        session.add(Serving(task_id=task.id, version=version))
    else:
        serving.version, serving.updated_at = version, utc_now()
    logger.info("task %s now serves pool version %d", name, version)


def state_bytes(session: Session, version: int | None) -> bytes:
    """The verified safetensors bytes of a version's trainable state (``None``: the newest).

    Raises:
        VersionNotFoundError: No such version, or no versions at all.
    """
    number = latest_number(session) if version is None else version
    if number is None:
        raise VersionNotFoundError("the registry holds no pool versions yet")
    row = require_version(session, number)
    data = session.scalar(select(Artifact.data).where(Artifact.sha256 == row.content_hash))
    what = f"state of pool version {number}"
    if data is None:
        raise IntegrityError(f"{what} is missing: artifact {row.content_hash[:12]}")
    return verify(bytes(data), row.content_hash, what=what)
