"""Several processes creating, registering and writing at once lose and duplicate nothing."""

from __future__ import annotations

import multiprocessing
import os
import traceback

import pytest
import torch

from dpf_continual.registry import Registry, TaskPromptRecord
from tests.registry.conftest import add_task

pytestmark = pytest.mark.slow

FORK = multiprocessing.get_context("fork")
WRITERS = 4
TASKS_EACH = 4
VERSIONS_EACH = 3


def writer(url: str, index: int, start) -> None:
    """Child: open (creating if needed), register tasks, then write versions for them."""
    try:
        torch.set_num_threads(1)
        start.wait(30)
        with Registry.open(url, create=True) as registry:
            width, length = registry.settings.hidden_size, registry.settings.prompt_length
            names = [f"w{index}-t{i}" for i in range(TASKS_EACH)]
            for name in names:
                add_task(registry, name)
            run = registry.start_run(strategy="dpf", config={"writer": index}, seed=index)
            for i in range(VERSIONS_EACH):
                prompts = {
                    name: TaskPromptRecord(
                        prompt=torch.randn(length, width),
                        weights=torch.rand(2),
                        dev_score=0.1 * i,
                        test_score=0.5,
                    )
                    for name in names
                }
                registry.commit_version(
                    run_id=run,
                    parent=None,
                    state={"pool": torch.randn(2, length, width)},
                    prompts=prompts,
                    trained_task=names[i],
                    reason=f"writer {index} step {i}",
                )
            registry.finish_run(run, "completed")
        os._exit(0)
    except BaseException:
        traceback.print_exc()
        os._exit(1)


def run_writers(url: str) -> None:
    start = FORK.Event()
    children = [FORK.Process(target=writer, args=(url, i, start)) for i in range(WRITERS)]
    for child in children:
        child.start()
    start.set()
    for child in children:
        child.join(120)
    assert [child.exitcode for child in children] == [0] * WRITERS


def test_concurrent_writers_lose_and_duplicate_nothing(backend_url):
    # No registry exists yet: the writers also race to create it.
    run_writers(backend_url)
    with Registry.open(backend_url) as registry:
        assert registry.check_integrity() == []
        tasks = registry.tasks()
        assert sorted(task.position for task in tasks) == list(range(1, WRITERS * TASKS_EACH + 1))
        assert {task.name for task in tasks} == {
            f"w{w}-t{i}" for w in range(WRITERS) for i in range(TASKS_EACH)
        }
        versions = registry.versions()
        assert [v.number for v in versions] == list(range(1, WRITERS * VERSIONS_EACH + 1))
        runs = registry.runs()
        assert len(runs) == WRITERS and {run.status for run in runs} == {"completed"}
        for run in runs:
            mine = [v for v in versions if v.run_id == run.id]
            index = run.config["writer"]
            assert [v.reason for v in mine] == [f"writer {index} step {i}" for i in range(3)]
            assert all(v.tasks == [f"w{index}-t{i}" for i in range(TASKS_EACH)] for v in mine)
            names, matrix = registry.accuracy_matrix(run.id)
            assert len(matrix) == VERSIONS_EACH and len(names) == TASKS_EACH
