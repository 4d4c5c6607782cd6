"""Training runs and their accuracy matrices.

An accuracy matrix ``R`` has one row per pool version a run wrote, in order: row ``i`` holds the
scores on every task after training the ``i``-th task of the run. Columns are the run's trained
tasks in the order it trained them, then any other task it evaluated, in stream order. A cell is
``None`` where that task was not evaluated.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dpf_continual.errors import ConfigError
from dpf_continual.registry.models import Evaluation, PoolVersion, Run, Task, as_utc, utc_now
from dpf_continual.registry.records import MATRIX_KINDS, RUN_STATUSES, RunInfo
from dpf_continual.registry.store import find_run


def new_run(*, strategy: str, config: dict[str, Any], seed: int, world_size: int) -> Run:
    """A run row in status ``"running"``, started now on this host.

    Raises:
        ConfigError: ``config`` is not JSON-serialisable or ``world_size`` is below 1.
    """
    try:
        json.dumps(config)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"run config must be JSON-serialisable: {error}") from None
    if world_size < 1:
        raise ConfigError(f"world_size {world_size!r} must be at least 1")
    return Run(
        strategy=strategy,
        config=config,
        status="running",
        seed=int(seed),
        world_size=int(world_size),
        host=socket.gethostname(),
        started_at=utc_now(),
    )


def finish_run(session: Session, run_id: int, status: str, timings: dict[str, Any] | None) -> None:
    """Record how run ``run_id`` ended.

    Raises:
        ConfigError: ``status`` is not one of the final statuses.
        RunNotFoundError: No such run.
    """
    final = [status for status in RUN_STATUSES if status != "running"]
    if status not in final:
        raise ConfigError(f"run status {status!r} is not valid: expected one of {final}")
    run = find_run(session, run_id)
    run.status, run.finished_at = status, utc_now()
    if timings is not None:
        run.timings = dict(timings)


def run_infos(session: Session, run_id: int | None = None) -> list[RunInfo]:
    """Every run in order of id, or only run ``run_id``."""
    if run_id is not None:
        runs = [find_run(session, run_id)]
    else:
        runs = list(session.scalars(select(Run).order_by(Run.id)))
    return [
        RunInfo(
            id=run.id,
            strategy=run.strategy,
            config=dict(run.config),
            status=run.status,
            seed=run.seed,
            world_size=run.world_size,
            host=run.host,
            started_at=as_utc(run.started_at),
            finished_at=as_utc(run.finished_at),
            timings=None if run.timings is None else dict(run.timings),
        )
        for run in runs
    ]


def accuracy_matrix(
    session: Session, run_id: int, kind: str
) -> tuple[list[str], list[list[float | None]]]:
    """The ``live`` or ``served`` accuracy matrix of a run (see the module docstring).

    Returns:
        The column task names and the rows, one per version the run wrote.

    Raises:
        ConfigError: ``kind`` is not ``"live"`` or ``"served"``.
        RunNotFoundError: No such run.
    """
    if kind not in MATRIX_KINDS:
        raise ConfigError(
            f"matrix kind {kind!r} is not valid: expected one of {list(MATRIX_KINDS)}"
        )
    find_run(session, run_id)
    names = dict(session.execute(select(Task.id, Task.name)).all())
    positions = dict(session.execute(select(Task.id, Task.position)).all())
    versions = session.execute(
        select(PoolVersion.number, PoolVersion.trained_task_id)
        .where(PoolVersion.run_id == run_id)
        .order_by(PoolVersion.number)
    ).all()
    cells = session.execute(
        select(Evaluation.version, Evaluation.eval_task_id, Evaluation.score).where(
            Evaluation.run_id == run_id, Evaluation.kind == kind
        )
    ).all()

    columns = list(dict.fromkeys(task_id for _, task_id in versions if task_id is not None))
    others = {task_id for _, task_id, _ in cells} - set(columns)
    columns += sorted(others, key=positions.__getitem__)
    index = {task_id: i for i, task_id in enumerate(columns)}
    rows: dict[int, list[float | None]] = {number: [None] * len(columns) for number, _ in versions}
    for number, task_id, score in cells:
        rows[number][index[task_id]] = score
    return [names[task_id] for task_id in columns], [rows[number] for number, _ in versions]
