"""The task stream as an Avalanche benchmark: one experience per task, task labels known."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dpf_continual.backbones.base import Item
from dpf_continual.errors import ConfigError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class StreamTask:
    """A registered task, ready for training.

    Attributes:
        name: Registry name.
        task_id: Row of the task in the prompt module (its place in the stream).
        kind: ``choice`` or ``generation``.
        splits: Items of each split.
    """

    name: str
    task_id: int
    kind: str
    splits: dict[str, list[Item]]


def stream_task(name: str, task_id: int, kind: str, data: dict) -> StreamTask:
    """Turn a task's stored data (``{"train": [{"input", "output", "options"}, ...], ...}``)."""
    if kind != "choice":
        raise ConfigError(
            f"task {name!r} is a {kind!r} task: train-stream trains choice tasks only for now "
            "(generation tasks are registered and scored by the backbones, but not trained here)"
        )
    splits = {}
    for split in SPLITS:
        rows = data.get(split) or []
        splits[split] = [
            Item(task_id, row["input"], row["output"], tuple(row.get("options") or ()))
            for row in rows
        ]
    if not splits["train"]:
        raise ConfigError(f"task {name!r} has no training examples")
    if not splits["dev"]:
        splits["dev"] = splits["train"]
    if not splits["test"]:
        splits["test"] = splits["dev"]
    return StreamTask(name, task_id, kind, splits)


def make_dataset(items: Sequence[Item], task_id: int):
    """An Avalanche dataset of items, labelled with their task (``targets_task_labels``)."""
    from avalanche.benchmarks.utils import AvalancheDataset, DataAttribute

    labels = DataAttribute([task_id] * len(items), "targets_task_labels")
    return AvalancheDataset([list(items)], data_attributes=[labels])


def make_benchmark(tasks: Sequence[StreamTask]):
    """A task-aware Avalanche benchmark with ``train``, ``dev`` and ``test`` streams."""
    from avalanche.benchmarks.scenarios import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    streams = {
        split: [make_dataset(task.splits[split], task.task_id) for task in tasks]
        for split in SPLITS
    }
    return with_task_labels(benchmark_from_datasets(**streams))
