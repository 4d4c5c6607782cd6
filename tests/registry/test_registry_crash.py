"""Writers killed with SIGKILL at any point leave the registry as it was, or with the whole write.

Children are forked, so they start in milliseconds with torch already imported. One test kills a
child at a chosen SQL statement (every point of a write, over the loop); the other kills children
after a random delay while they write large versions back to back.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import random
import signal
import time
import traceback

import pytest
import torch
from sqlalchemy import event
from sqlalchemy.engine import Engine

from dpf_continual.registry import Registry, TaskPromptRecord
from tests.registry.conftest import add_task

pytestmark = pytest.mark.slow

FORK = multiprocessing.get_context("fork")
TASKS = [f"task{i}" for i in range(5)]


def setup_registry(url: str, *, width: int, length: int, tasks: list[str]) -> None:
    with Registry.init(url, backbone="b", hidden_size=width, prompt_length=length) as registry:
        for name in tasks:
            add_task(registry, name)
        registry.start_run(strategy="dpf", config={}, seed=0)


def write_version(registry: Registry, seed: int) -> None:
    """Register one new task, then write a version holding a prompt for every task."""
    settings = registry.settings
    width, length = settings.hidden_size, settings.prompt_length
    registry.add_task(
        name=f"extra{seed}",
        kind="choice",
        metric="accuracy",
        domain="d",
        source="s",
        label_names=[],
        data_checksum=str(seed),
        embedding=torch.randn(width),
        data={},
    )
    names = [task.name for task in registry.tasks()]
    prompts = {
        name: TaskPromptRecord(
            prompt=torch.randn(length, width), weights=torch.rand(4), dev_score=0.5, test_score=0.5
        )
        for name in names
    }
    registry.commit_version(
        run_id=1,
        parent=None,
        state={"pool": torch.randn(4, length, width)},
        prompts=prompts,
        trained_task=f"extra{seed}",  # a task is trained once: the new one is pending
        reason=f"write {seed}",
    )


def die_at_statement(url: str, kill_at: int, seed: int) -> None:
    """Child: SIGKILL itself just before its ``kill_at``-th SQL statement."""
    try:
        torch.set_num_threads(1)
        counter = itertools.count(1)

        def maybe_die(*_: object) -> None:
            if next(counter) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        event.listen(Engine, "before_cursor_execute", maybe_die)
        with Registry.open(url) as registry:
            write_version(registry, seed)
        os._exit(0)
    except BaseException:
        traceback.print_exc()
        os._exit(1)


def write_forever(url: str, ready) -> None:
    """Child: write versions back to back until killed; ``ready`` is set after the first."""
    try:
        torch.set_num_threads(1)
        with Registry.open(url) as registry:
            for seed in itertools.count(1000 * os.getpid()):
                write_version(registry, seed)
                ready.set()
    except BaseException:
        traceback.print_exc()
        os._exit(1)


def assert_whole(url: str) -> tuple[int, int]:
    """The registry opens, passes the check (every digest verified), and every version holds a
    prompt for each task registered when it was written. Returns the numbers of versions and tasks.
    """
    with Registry.open(url) as registry:
        assert registry.check_integrity() == []
        names = [task.name for task in registry.tasks()]
        versions = registry.versions()
        for version in versions:
            assert version.tasks == names[: len(version.tasks)]
            assert len(version.tasks) > len(TASKS)
        if versions:
            assert registry.pool_state()["pool"].shape[0] == 4
        return len(versions), len(names)


def test_a_writer_killed_at_any_statement(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    setup_registry(url, width=16, length=4, tasks=TASKS)
    rng = random.Random(7)
    outcomes = set()
    versions, tasks = assert_whole(url)
    for seed in range(24):
        # A whole write is about 40-60 statements, so some children finish.
        kill_at = rng.randint(1, 70)
        child = FORK.Process(target=die_at_statement, args=(url, kill_at, seed))
        child.start()
        child.join(60)
        assert child.exitcode in (0, -signal.SIGKILL)
        now_versions, now_tasks = assert_whole(url)
        assert now_versions - versions in (0, 1) and now_tasks - tasks in (0, 1)
        if child.exitcode == 0:
            assert (now_versions - versions, now_tasks - tasks) == (1, 1)
        outcomes.add((child.exitcode, now_versions - versions, now_tasks - tasks))
        versions, tasks = now_versions, now_tasks
    # Killed before anything, between the two writes, and completed: all happened.
    assert {(-signal.SIGKILL, 0, 0), (-signal.SIGKILL, 0, 1), (0, 1, 1)} <= outcomes


def test_writers_killed_at_random_times(tmp_path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    setup_registry(url, width=384, length=20, tasks=[f"big{i}" for i in range(40)])
    rng = random.Random(11)
    versions, _ = assert_whole(url)
    for _ in range(6):
        ready = FORK.Event()
        child = FORK.Process(target=write_forever, args=(url, ready))
        child.start()
        assert ready.wait(60)
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.join(30)
        assert child.exitcode == -signal.SIGKILL
        now, _ = assert_whole(url)
        assert now >= versions
        versions = now
    assert versions > 0
