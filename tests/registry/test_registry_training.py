"""Several processes adding tasks and training against one registry (SQLite and PostgreSQL).

Nothing may be lost or done twice: every task added is there afterwards, every trained task has
exactly one version that trained it, and the registry passes its integrity check.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from dpf_continual.backbones import load_backbone
from dpf_continual.registry import Registry
from tests.strategies.conftest import TASK_WORDS, task_data

pytestmark = pytest.mark.slow
TRAIN = ["--device", "cpu", "--max-steps", "3", "--batch-size", "4", "--replay-size", "4"]


def _add(registry: Registry, backbone, name: str, words: str) -> None:
    data = task_data(words, seed=hash(name) % 1000)
    registry.add_task(
        name=name, kind="choice", metric="accuracy", domain="test", source="test",
        label_names=TASK_WORDS[words], data_checksum=f"sum-{name}",
        embedding=backbone.embed_texts([r["input"] for r in data["train"]]).mean(0), data=data,
    )  # fmt: skip


def _train(url: str) -> subprocess.Popen:
    dpf_cl = str(Path(sys.executable).with_name("dpf-cl"))
    return subprocess.Popen(
        [dpf_cl, "train-stream", "--registry", url, *TRAIN],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_adding_and_training_at_once_loses_nothing(backend_url, tiny_model_dir):
    folder = str(tiny_model_dir("encoder"))
    backbone = load_backbone(folder, device="cpu")
    registry = Registry.init(backend_url, backbone=folder, hidden_size=32, prompt_length=4)
    for index, words in enumerate(TASK_WORDS):
        _add(registry, backbone, f"first{index}", words)

    trainers = [_train(backend_url), _train(backend_url)]
    for index in range(6):  # added while both trainers run
        _add(registry, backbone, f"late{index}", list(TASK_WORDS)[index % 3])
    outcomes = [trainer.communicate(timeout=600) for trainer in trainers]
    codes = [trainer.returncode for trainer in trainers]

    # Both may have trained some tasks; a trainer that lost a race stops with one clear line.
    assert 0 in codes, outcomes
    for code, (_, err) in zip(codes, outcomes, strict=True):
        if code:
            assert "another train-stream is using this registry" in err, err[-2000:]
    final = _train(backend_url)
    _, err = final.communicate(timeout=600)
    assert final.returncode == 0, err[-2000:]

    registry = Registry.open(backend_url)
    names = [task.name for task in registry.tasks()]
    assert sorted(names) == sorted([f"first{i}" for i in range(3)] + [f"late{i}" for i in range(6)])
    assert all(task.status == "trained" for task in registry.tasks())
    trained = Counter(version.trained_task for version in registry.versions())
    assert set(trained) == set(names) and set(trained.values()) == {1}
    assert registry.check_integrity() == []
