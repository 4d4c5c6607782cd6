"""Collects accuracy per experience during Avalanche's evaluation loop."""

from __future__ import annotations

from collections import defaultdict

from avalanche.core import SupervisedPlugin


class ScoreCollectorPlugin(SupervisedPlugin):
    """Counts correct predictions per evaluated experience; read with :meth:`take`."""

    def __init__(self) -> None:
        super().__init__()
        self._correct: dict[int, int] = defaultdict(int)
        self._seen: dict[int, int] = defaultdict(int)

    def after_eval_iteration(self, strategy, **kwargs) -> None:
        labels = strategy.mb_y
        predicted = strategy.mb_output.argmax(dim=1)
        index = strategy.experience.current_experience
        self._correct[index] += int((predicted == labels).sum())
        self._seen[index] += int(labels.numel())

    def take(self) -> dict[int, float]:
        """Accuracy (0-1) of each experience evaluated since the last call."""
        scores = {i: self._correct[i] / self._seen[i] for i in self._seen if self._seen[i]}
        self._correct.clear()
        self._seen.clear()
        return scores
