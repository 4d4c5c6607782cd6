"""Opt-in: three LFPT5 tasks trained as a stream on the frozen MiniLM, a few steps each."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from dpf_continual.registry import Registry
from dpf_continual.strategies.config import TrainConfig
from dpf_continual.strategies.runner import train_stream

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

LFPT5 = {"ag_news": "ag_news_csv", "dbpedia": "dbpedia_csv", "yahoo": "yahoo_answers_csv"}


def small(task, per_split: int = 40):
    """The task with dev and test cut to a seeded sample, so evaluation stays quick."""
    splits = dict(task.splits)
    for split in ("dev", "test"):
        rows = list(splits[split])
        random.Random(0).shuffle(rows)
        splits[split] = rows[:per_split]
    return replace(task, splits=splits)


def test_three_lfpt5_tasks_train_on_minilm(data_root, tmp_path):
    from dpf_continual.backbones import load_backbone
    from dpf_continual.tasks import load_task, register_task

    backbone = load_backbone(device="cpu", max_length=64)
    registry = Registry.open(f"sqlite:///{tmp_path / 'r.db'}", create=True)
    for name, folder in LFPT5.items():
        task = load_task(name, data=str(data_root / "lfpt5_textcls" / folder), seed=42)
        register_task(registry, small(task), backbone)

    config = TrainConfig(max_steps=15, batch_size=8, replay_size=16, seed=0, max_length=64)
    report = train_stream(registry, config, backbone=backbone)

    assert [t.status for t in registry.tasks()] == ["trained"] * 3
    final = report.live[-1]
    chance = [1 / 4, 1 / 14, 1 / 10]
    assert all(score > 1.5 * c for score, c in zip(final, chance, strict=True)), final
