"""Each plugin alone: pool growth, replay."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from dpf_continual.backbones.base import Item
from dpf_continual.fusion import DynamicPromptFusion
from dpf_continual.strategies.config import OldPrompts
from dpf_continual.strategies.plugins import PoolGrowthPlugin, PromptReplayPlugin
from dpf_continual.strategies.stream import make_benchmark, stream_task


def growth(old_prompts=OldPrompts.FROZEN, max_prompts=0):
    torch.manual_seed(0)
    embeddings = {i: torch.randn(8) for i in range(4)}
    return PoolGrowthPlugin(
        embeddings=embeddings,
        init_prompt=lambda m: torch.randn(m, 3, 8),
        prompts_per_task=2,
        max_prompts=max_prompts,
        old_prompts=old_prompts,
    )


def fake_strategy():
    module = DynamicPromptFusion(prompt_length=3, hidden_size=8)
    return SimpleNamespace(model=SimpleNamespace(prompts=module), old_prompt_indices=[])


def test_growth_keeps_earlier_fused_prompts_identical_and_freezes_old_prompts():
    plugin, strategy = growth(), fake_strategy()
    plugin.prepare(strategy, 0)
    plugin.prepare(strategy, 1)
    module = strategy.model.prompts
    before = module.fused_prompts()

    plugin.prepare(strategy, 2)
    plugin.prepare(strategy, 2)  # preparing twice changes nothing

    assert module.num_prompts == 6 and module.num_tasks == 3
    assert torch.equal(module.fused_prompts()[:2], before)
    assert module.pool.frozen() == [True, True, True, True, False, False]
    assert strategy.old_prompt_indices == [0, 1, 2, 3]


def test_new_task_starts_from_its_neighbours_weights():
    plugin, strategy = growth(), fake_strategy()
    for task in range(3):
        plugin.prepare(strategy, task)
    weights = strategy.model.prompts.weights(torch.tensor([2]))[0]
    assert weights.sum().item() == pytest_approx(1.0)
    assert (weights[:4] > 0).all() and (weights[4:] > 0).all()


def test_pool_stops_growing_at_the_cap():
    plugin, strategy = growth(max_prompts=3), fake_strategy()
    for task in range(3):
        plugin.prepare(strategy, task)
    assert strategy.model.prompts.num_prompts == 3


def test_reduced_lr_leaves_old_prompts_trainable():
    plugin, strategy = growth(old_prompts=OldPrompts.REDUCED_LR), fake_strategy()
    plugin.prepare(strategy, 0)
    plugin.prepare(strategy, 1)
    assert strategy.model.prompts.pool.frozen() == [False] * 4


def test_replay_mixes_earlier_tasks_into_the_new_one():
    def data(word):
        rows = [{"input": f"{word} {i}", "output": "x", "options": ["x", "y"]} for i in range(10)]
        return {"train": rows, "dev": rows, "test": rows}

    tasks = [stream_task(w, i, "choice", data(w)) for i, w in enumerate(["a", "b", "c"])]
    bench = make_benchmark(tasks)
    plugin = PromptReplayPlugin(size=6)
    strategy = SimpleNamespace()
    for exp in bench.train_stream[:2]:
        strategy.experience = exp
        plugin.remember(strategy, exp)

    strategy.adapted_dataset = bench.train_stream[2].dataset
    plugin.after_train_dataset_adaptation(strategy)

    items: list[Item] = [strategy.adapted_dataset[i] for i in range(len(strategy.adapted_dataset))]
    assert len(items) == 16
    assert {item.task_id for item in items} == {0, 1, 2}
    assert sum(item.task_id == 0 for item in items) == 3


def pytest_approx(value):
    import pytest

    return pytest.approx(value, abs=1e-5)
