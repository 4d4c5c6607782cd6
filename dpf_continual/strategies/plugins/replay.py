"""Replay: keep a fixed-size buffer of earlier tasks' examples and mix it into each new task.

The buffer is an Avalanche storage policy (experience-balanced by default, reservoir sampling as
an option). Before a task trains, its dataset is concatenated with the buffer and shuffled, so
batches mix current and replayed tasks; after the task, the buffer takes its share of it.
"""

from __future__ import annotations

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.storage_policy import ExperienceBalancedBuffer, ReservoirSamplingBuffer

from dpf_continual.strategies.config import ReplayPolicy


class PromptReplayPlugin(SupervisedPlugin):
    """Mixes replayed examples into training.

    Args:
        size: Total examples kept (over all earlier tasks).
        policy: Which Avalanche storage policy chooses them.
        seed: The buffer's choice for experience ``i`` is drawn with seed ``seed * 1000 + i``,
            so the buffer rebuilt on ``--resume`` is the one an uninterrupted run would hold.
    """

    def __init__(
        self,
        *,
        size: int,
        policy: ReplayPolicy = ReplayPolicy.EXPERIENCE_BALANCED,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.seed = seed
        if policy == ReplayPolicy.RESERVOIR:
            self.storage = ReservoirSamplingBuffer(max_size=size)
        else:
            self.storage = ExperienceBalancedBuffer(max_size=size, adaptive_size=True)

    @property
    def buffer(self):
        return self.storage.buffer

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        if len(self.buffer):
            strategy.adapted_dataset = strategy.adapted_dataset.concat(self.buffer)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.remember(strategy, strategy.experience)

    def remember(self, strategy, experience) -> None:
        """Let the storage policy take its share of ``experience`` (also used on resume)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1000 + experience.current_experience)
            self.storage.post_adapt(strategy, experience)
