"""Fixtures for training tests: a tiny encoder, three small tasks, a temporary registry."""

from __future__ import annotations

import random

import pytest
import torch

from dpf_continual.backbones import load_backbone

# Three tasks a tiny random encoder can separate: the gold option word appears in the input.
TASK_WORDS = {
    "sentiment": ["good", "bad"],
    "topic": ["sport", "money", "science"],
    "truth": ["true", "false"],
}
FILLER = ["the", "a", "movie", "film", "is", "was", "very", "news", "world"]


def task_data(name: str, seed: int = 0, per_class: int = 6) -> dict:
    rng = random.Random(f"{name}-{seed}")
    labels = TASK_WORDS[name]
    splits = {}
    for split, count in (("train", per_class), ("dev", 3), ("test", 4)):
        rows = []
        for label in labels:
            for _ in range(count):
                words = rng.sample(FILLER, 3) + [label]
                rng.shuffle(words)
                rows.append({"input": " ".join(words), "output": label, "options": labels})
        splits[split] = rows
    return splits


@pytest.fixture
def tiny_backbone(tiny_model_dir):
    return load_backbone(str(tiny_model_dir("encoder")), device="cpu")


@pytest.fixture
def stream_registry(tmp_path, tiny_model_dir, tiny_backbone):
    """Factory: a fresh registry with the three tasks registered (pending)."""
    from dpf_continual.registry import Registry

    def make(name: str = "reg") -> str:
        url = f"sqlite:///{tmp_path / name}.db"
        registry = Registry.init(
            url, backbone=str(tiny_model_dir("encoder")), hidden_size=32, prompt_length=4
        )
        for task in TASK_WORDS:
            data = task_data(task)
            embedding = tiny_backbone.embed_texts([r["input"] for r in data["train"]]).mean(0)
            registry.add_task(
                name=task, kind="choice", metric="accuracy", domain="test", source="test",
                label_names=TASK_WORDS[task], data_checksum=f"sum-{task}",
                embedding=embedding, data=data,
            )  # fmt: skip
        registry.close()
        return url

    return make


def fused(url: str) -> dict[str, torch.Tensor]:
    from dpf_continual.registry import Registry

    registry = Registry.open(url)
    return {t.name: registry.prompt(t.name, "latest") for t in registry.tasks()}
