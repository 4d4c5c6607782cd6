"""After each task: evaluate every seen task and write one registry version, atomically.

One transaction (``Registry.commit_version``) writes the new pool version (parent = the previous
one), every seen task's fused prompt and scheduling weights with its dev and test scores, and
the accuracy-matrix row. A task's served version moves only if its dev score did not drop by
more than the serve tolerance. If training of a task fails, this plugin never runs for it, so
the registry keeps nothing of that task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from avalanche.core import SupervisedPlugin

logger = logging.getLogger(__name__)


class RegistryCheckpointPlugin(SupervisedPlugin):
    """Writes a registry version after each training experience.

    Args:
        registry: An open :class:`~dpf_continual.registry.Registry`.
        run_id: The run being recorded.
        task_names: Registry name of each task id.
        evaluate: ``evaluate(strategy, split, task_ids) -> {task_id: score}`` (scores 0-1).
        serve_tolerance: Points (0-100) a dev score may drop while serving still moves.
        strategy_name: Recorded in each version's reason.
        on_version: Called with ``(trained_task, version_number, test_scores, dev_scores)``.
    """

    def __init__(
        self,
        *,
        registry,
        run_id: int,
        task_names: Sequence[str],
        evaluate: Callable,
        serve_tolerance: float = 0.0,
        strategy_name: str = "dpf",
        on_version: Callable | None = None,
    ) -> None:
        super().__init__()
        self.registry = registry
        self.run_id = run_id
        self.task_names = list(task_names)
        self.evaluate = evaluate
        self.serve_tolerance = serve_tolerance
        self.strategy_name = strategy_name
        self.on_version = on_version

    def after_training_exp(self, strategy, **kwargs) -> None:
        for task_id in sorted(strategy.experience.task_labels):
            self.commit(strategy, task_id)

    def commit(self, strategy, trained: int) -> int | None:
        """Evaluate tasks ``0..trained`` and write the version; returns its number."""
        from dpf_continual.registry import TaskPromptRecord

        module = strategy.model.prompts
        seen = list(range(trained + 1))
        test = self.evaluate(strategy, "test", seen)
        dev = self.evaluate(strategy, "dev", seen)
        fused = module.fused_prompts().cpu()  # [T, L, d]
        prompts = {}
        for task_id in seen:
            weights = module.weights(_ids(task_id, fused.device))[0].detach().cpu()
            prompts[self.task_names[task_id]] = TaskPromptRecord(
                prompt=fused[task_id].float(),
                weights=weights.float(),
                dev_score=dev[task_id],
                test_score=test[task_id],
            )
        latest = self.registry.latest_version()
        version = self.registry.commit_version(
            run_id=self.run_id,
            parent=latest.number if latest else None,
            state=module.state_for_storage(),
            prompts=prompts,
            trained_task=self.task_names[trained],
            reason=f"{self.strategy_name}: trained {self.task_names[trained]}",
            serve_tolerance=self.serve_tolerance,
        )
        number = version.number if version is not None else None  # None on ranks other than 0
        logger.info("wrote version %s after %s", number, self.task_names[trained])
        if self.on_version is not None:
            self.on_version(self.task_names[trained], number, test, dev)
        return number


def _ids(task_id: int, device):
    import torch

    return torch.tensor([task_id], device=device)
