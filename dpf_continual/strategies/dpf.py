"""``DPFStrategy``: an Avalanche ``SupervisedTemplate`` that trains prompts on a frozen backbone.

The training loop is Avalanche's (``train(experience)`` -> epochs -> iterations). Per iteration::

    batch = collate(items)                      # tokenised in the data loader, not in the step
    scores = backbone(prompts(task_ids), batch)  # [b, O] option scores
    loss_i = mean cross-entropy of task i's rows # per task present in the batch
    loss = loss_weighter.combine({i: loss_i})    # equal / uncertainty / gradnorm / dwa
    backward, step                                # only prompt-module parameters move

What happens between experiences (pool growth, replay, registry checkpoint, EWC, LwF) lives in
plugins under :mod:`dpf_continual.strategies.plugins`.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from avalanche.training.templates import SupervisedTemplate
from torch import Tensor
from torch.utils.data import DataLoader

from dpf_continual.errors import TrainingError
from dpf_continual.strategies import distributed as dist_utils
from dpf_continual.strategies.config import OldPrompts, TrainConfig
from dpf_continual.strategies.distributed import DistributedContext
from dpf_continual.strategies.loss_weighting import LossWeighter
from dpf_continual.strategies.prompt_modules import PromptedModel

logger = logging.getLogger(__name__)


def row_losses(scores: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of each row over its options, [b]."""
    return F.cross_entropy(scores, labels, reduction="none", ignore_index=-100)


class DPFStrategy(SupervisedTemplate):
    """Trains a prompt module (fusion or a baseline's) one experience (task) at a time.

    Args:
        model: Prompt module plus frozen backbone.
        config: Training settings.
        loss_weighter: Makes the object that combines per-task losses. A fresh one is made
            for each experience, so a task's weights start from the same point whether or not
            the run was interrupted before it (which keeps ``--resume`` exact).
        plugins: Avalanche plugins (growth, replay, checkpoint, EWC, LwF...).
        evaluator: Avalanche evaluation plugin (or ``None``).
        on_step: Called after every step with ``(step, loss)`` (progress display).
        distributed: This process's place in a torchrun job (one process when ``None``).
    """

    def __init__(
        self,
        *,
        model: PromptedModel,
        config: TrainConfig,
        loss_weighter: Callable[[], LossWeighter],
        plugins: list | None = None,
        evaluator=None,
        on_step: Callable[[int, float], None] | None = None,
        distributed: DistributedContext | None = None,
    ) -> None:
        self.config = config
        self.distributed = distributed or DistributedContext()
        self.make_loss_weighter = loss_weighter
        self.loss_weighter = loss_weighter()
        self.on_step = on_step
        self.step = 0
        self.old_prompt_indices: list[int] = []
        self._epoch_losses: dict[int, list[float]] = defaultdict(list)
        placeholder = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=config.lr)
        super().__init__(
            model=model,
            optimizer=placeholder,
            train_mb_size=config.batch_size,
            train_epochs=config.epochs,
            eval_mb_size=config.eval_batch_size,
            device=model.backbone.device,
            plugins=plugins,
            evaluator=evaluator if evaluator is not None else _silent_evaluator(),
        )

    # -- batches -------------------------------------------------------------------------------

    @property
    def mb_x(self):
        return self.mbatch

    @property
    def mb_y(self) -> Tensor:
        return self.mbatch["labels"]

    @property
    def mb_task_id(self) -> Tensor:
        return self.mbatch["task_ids"]

    def _unpack_minibatch(self) -> None:
        self.mbatch = self.mbatch.to(self.device)

    def _loader(self, dataset, *, shuffle: bool, batch_size: int) -> DataLoader:
        # Avalanche's own loaders ignore a collate function, so batches are built here.
        generator = torch.Generator().manual_seed(self.config.seed * 7919 + self.step)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            collate_fn=self.model.backbone.collate,
            generator=generator if shuffle else None,
        )

    def make_train_dataloader(self, **kwargs) -> None:
        world = self.distributed.world_size
        if world == 1:
            self.dataloader = self._loader(
                self.adapted_dataset, shuffle=True, batch_size=self.train_mb_size
            )
            return
        # --batch-size is the global batch: each rank takes its share of every step.
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(
            self.adapted_dataset,
            num_replicas=world,
            rank=self.distributed.rank,
            shuffle=True,
            seed=self.config.seed * 7919,
        )
        self.dataloader = DataLoader(
            self.adapted_dataset,
            batch_size=self.train_mb_size // world,
            sampler=sampler,
            collate_fn=self.model.backbone.collate,
        )

    def make_eval_dataloader(self, **kwargs) -> None:
        self.dataloader = self._loader(
            self.adapted_dataset, shuffle=False, batch_size=self.eval_mb_size
        )

    # -- optimisation --------------------------------------------------------------------------

    def make_optimizer(self, **kwargs) -> None:
        """A fresh AdamW each experience: the module may have grown since the last one."""
        prompts = self.model.prompts
        self.loss_weighter.add_tasks(range(prompts.num_tasks))
        old = set(self.old_prompt_indices)
        slow, fast = [], []
        pool = getattr(prompts, "pool", None)
        for name, param in prompts.named_parameters():
            if not param.requires_grad:
                continue
            is_old = pool is not None and name.startswith("pool.prompts.")
            is_old = is_old and int(name.rsplit(".", 1)[1]) in old
            (slow if is_old else fast).append(param)
        groups = [{"params": fast + self.loss_weighter.extra_parameters(), "lr": self.config.lr}]
        if slow and self.config.old_prompts == OldPrompts.REDUCED_LR:
            groups.append({"params": slow, "lr": self.config.lr * self.config.old_prompt_lr_scale})
        # One fused kernel for all the small tensors (pool prompts, logits, gate).
        self.optimizer = torch.optim.AdamW(groups, weight_decay=0.0, fused=True)
        if self.distributed.enabled:
            self.model.distribute()

    def shared_parameters(self) -> list[Tensor]:
        """Parameters every task shares (pool and gate), for GradNorm."""
        prompts = self.model.prompts
        if hasattr(prompts, "pool"):
            params = list(prompts.pool.parameters()) + list(prompts.gate.parameters())
        else:
            params = list(prompts.parameters())
        return [param for param in params if param.requires_grad]

    def forward(self) -> Tensor:
        return self.model(self.mbatch)

    def criterion(self) -> Tensor:
        """Per-task mean losses combined by the loss weighter (plain mean during evaluation)."""
        losses = row_losses(self.mb_output, self.mb_y)  # [b]
        if not self.is_training:
            return losses.mean()
        task_ids = self.mb_task_id
        per_task = {}
        for task in torch.unique(task_ids).tolist():
            per_task[task] = losses[task_ids == task].mean()
            self._epoch_losses[task].append(float(per_task[task].detach()))
        shared = self.shared_parameters() if self.config.loss_weighting == "gradnorm" else None
        return self.loss_weighter.combine(per_task, shared_params=shared)

    def _before_backward(self, **kwargs) -> None:
        value = float(self.loss.detach())
        finite = math.isfinite(value)
        if self.distributed.enabled:
            finite = dist_utils.all_finite(self.loss.detach())
        if not finite:
            raise TrainingError(
                f"the loss became {value} at step {self.step + 1} of experience "
                f"{self.experience.current_experience}; training of this task stopped and "
                "nothing of it was written (try a lower --lr)"
            )
        super()._before_backward(**kwargs)

    def _after_backward(self, **kwargs) -> None:
        if self.distributed.enabled:
            # DDP averages the prompt module's gradients; the loss weights are averaged here.
            params = self.loss_weighter.extra_parameters()
            dist_utils.average_gradients(params, self.distributed.world_size)
        super()._after_backward(**kwargs)

    def _after_training_epoch(self, **kwargs) -> None:
        sampler = getattr(self.dataloader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.clock.train_exp_epochs + 1)
        self._end_epoch()
        super()._after_training_epoch(**kwargs)

    def _after_training_iteration(self, **kwargs) -> None:
        self.step += 1
        if self.on_step is not None:
            self.on_step(self.step, float(self.loss.detach()))
        if self.config.max_steps is not None and self.step >= self.config.max_steps:
            self.stop_training()
        super()._after_training_iteration(**kwargs)

    def _before_training_exp(self, **kwargs) -> None:
        self.step = 0
        self._epoch_losses.clear()
        self.loss_weighter = self.make_loss_weighter()
        super()._before_training_exp(**kwargs)

    def _end_epoch(self) -> None:
        tasks = self.model.prompts.num_tasks
        totals = torch.zeros(tasks, 2)  # [T, (sum, count)]
        for task, values in self._epoch_losses.items():
            totals[task] = torch.tensor([sum(values), len(values)])
        if self.distributed.enabled:
            torch.distributed.all_reduce(totals)  # every rank then sees the same epoch means
        means = {t: float(totals[t, 0] / totals[t, 1]) for t in range(tasks) if totals[t, 1] > 0}
        self.loss_weighter.end_epoch(means)
        self._epoch_losses.clear()


def _silent_evaluator():
    """Avalanche's accuracy, forgetting and BWT metrics, with no console logger."""
    import warnings

    from avalanche.evaluation.metrics import accuracy_metrics, bwt_metrics, forgetting_metrics
    from avalanche.training.plugins import EvaluationPlugin

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        return EvaluationPlugin(
            accuracy_metrics(experience=True, stream=True),
            forgetting_metrics(experience=True, stream=True),
            bwt_metrics(experience=True, stream=True),
            loggers=[],
        )
