"""Assemble a :class:`DPFStrategy` with the plugins a method needs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from dpf_continual.strategies.config import StrategyName, TrainConfig
from dpf_continual.strategies.distributed import DistributedContext
from dpf_continual.strategies.dpf import DPFStrategy
from dpf_continual.strategies.loss_weighting import make_loss_weighter
from dpf_continual.strategies.plugins import (
    PoolGrowthPlugin,
    PromptEWCPlugin,
    PromptLwFPlugin,
    PromptReplayPlugin,
    RegistryCheckpointPlugin,
    ScoreCollectorPlugin,
)
from dpf_continual.strategies.prompt_modules import PromptedModel
from dpf_continual.strategies.stream import StreamTask, make_benchmark, make_dataset

# Which methods replay earlier tasks, and which grow a fusion pool.
_REPLAYING = {StrategyName.DPF, StrategyName.REPLAY}


@dataclass
class StrategyParts:
    """The strategy and the pieces the runner drives directly."""

    strategy: DPFStrategy
    benchmark: object
    growth: PoolGrowthPlugin
    collector: ScoreCollectorPlugin
    replay: PromptReplayPlugin | None
    tasks: Sequence[StreamTask]
    seed: int

    def evaluate(self, strategy, split: str, task_ids: Sequence[int]) -> dict[int, float]:
        """Accuracy (0-1) of each task on ``split``, through Avalanche's evaluation loop."""
        stream = getattr(self.benchmark, f"{split}_stream")
        self.collector.take()
        strategy.eval([stream[i] for i in task_ids])
        return self.collector.take()

    def restore_replay(self, first_pending: int) -> None:
        """Refill the replay buffer with the tasks trained before (same seeds as first time)."""
        if self.replay is None:
            return
        for task_id in range(first_pending):
            self.strategy.experience = self.benchmark.train_stream[task_id]
            self.replay.remember(self.strategy, self.benchmark.train_stream[task_id])
        self.strategy.experience = None

    def joint_experience(self, first: int):
        """One experience holding every pending task (the ``joint`` upper bound)."""
        from avalanche.benchmarks.scenarios import benchmark_from_datasets
        from avalanche.benchmarks.scenarios.task_aware import with_task_labels

        pending = self.tasks[first:]
        dataset = make_dataset(pending[0].splits["train"], pending[0].task_id)
        for task in pending[1:]:
            dataset = dataset.concat(make_dataset(task.splits["train"], task.task_id))
        return with_task_labels(benchmark_from_datasets(train=[dataset])).train_stream[0]


def build_strategy(
    *,
    config: TrainConfig,
    backbone,
    module,
    tasks: Sequence[StreamTask],
    embeddings: dict,
    registry,
    run_id: int,
    on_version: Callable | None = None,
    on_step: Callable | None = None,
    context: DistributedContext | None = None,
) -> StrategyParts:
    """A strategy for ``config.strategy`` over ``tasks``, checkpointing into ``registry``."""
    generator = torch.Generator().manual_seed(config.seed)
    length = registry.settings.prompt_length

    def init_prompt(count: int) -> torch.Tensor:
        return backbone.vocabulary_prompts(count, length, generator)

    growth = PoolGrowthPlugin(
        embeddings=embeddings,
        init_prompt=init_prompt,
        prompts_per_task=config.prompts_per_task,
        max_prompts=config.max_prompts,
        old_prompts=config.old_prompts,
    )
    collector = ScoreCollectorPlugin()
    plugins: list = [growth, collector]
    replay = None
    if config.strategy in _REPLAYING and config.replay_size > 0:
        replay = PromptReplayPlugin(
            size=config.replay_size, policy=config.replay_policy, seed=config.seed
        )
        plugins.append(replay)
    if config.strategy == StrategyName.EWC:
        plugins.append(PromptEWCPlugin(config.ewc_lambda))
    if config.strategy == StrategyName.LWF:
        plugins.append(PromptLwFPlugin(alpha=config.lwf_alpha, temperature=config.lwf_temperature))

    weighting = config.loss_weighting if config.strategy in _WEIGHTED else "equal"
    strategy = DPFStrategy(
        model=PromptedModel(module, backbone),
        config=config,
        loss_weighter=lambda: make_loss_weighter(weighting).to(backbone.device),
        plugins=plugins,
        on_step=on_step,
        distributed=context,
    )
    parts = StrategyParts(
        strategy, make_benchmark(tasks), growth, collector, replay, tasks, config.seed
    )
    checkpoint = RegistryCheckpointPlugin(
        registry=registry,
        run_id=run_id,
        task_names=[task.name for task in tasks],
        evaluate=parts.evaluate,
        serve_tolerance=config.serve_tolerance / 100.0,  # the registry works in fractions
        strategy_name=config.strategy.value,
        on_version=on_version,
    )
    strategy.plugins.append(checkpoint)
    return parts


# Methods that mix several tasks in a batch, where per-task loss weights matter.
_WEIGHTED = {StrategyName.DPF, StrategyName.JOINT}
