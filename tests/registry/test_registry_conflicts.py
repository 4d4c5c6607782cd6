"""Two trainers on one registry: the second to finish a task is refused, nothing is forked."""

from __future__ import annotations

import pytest

from dpf_continual.errors import RegistryError


def test_a_task_is_trained_once(registry, add_tasks, commit):
    add_tasks(registry, "a", "b")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a"])
    with pytest.raises(RegistryError, match=r"task 'a' is trained\); another train-stream"):
        commit(registry, run, "a", ["a"])
    assert [v.number for v in registry.versions()] == [1]


def test_a_stale_parent_is_refused(registry, add_tasks, commit):
    add_tasks(registry, "a", "b", "c")
    run = registry.start_run(strategy="dpf", config={}, seed=0)
    commit(registry, run, "a", ["a"])
    commit(registry, run, "b", ["a", "b"], parent=1)
    with pytest.raises(RegistryError, match=r"on top of version 1: the registry moved on"):
        commit(registry, run, "c", ["a", "b", "c"], parent=1)
    assert registry.task("c").status == "pending"
    assert len(registry.versions()) == 2
