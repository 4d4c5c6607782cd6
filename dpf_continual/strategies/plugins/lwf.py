"""Learning without forgetting for prompts (the ``lwf`` baseline).

After each task a frozen copy of the prompt module is kept. While the next task trains, the
current model's option scores on each batch are pulled towards the copy's scores on the same
batch: ``alpha * T^2 * KL(softmax(old / T) || softmax(new / T))``. Avalanche's own LwF plugin
assumes class-indexed outputs over a fixed label space; here every row has its own options, so
the distillation is written against our option scores instead.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin


class PromptLwFPlugin(SupervisedPlugin):
    """Distils the previous model's option scores into the current one.

    Args:
        alpha: Weight of the distillation term.
        temperature: Softmax temperature ``T`` of the distillation.
    """

    def __init__(self, *, alpha: float = 1.0, temperature: float = 2.0) -> None:
        super().__init__()
        self.alpha = alpha
        self.temperature = temperature
        self.previous = None

    def before_backward(self, strategy, **kwargs) -> None:
        if self.previous is None:
            return
        with torch.no_grad():
            old = self.previous(strategy.mbatch)  # [b, O]
        new = strategy.mb_output
        valid = torch.isfinite(old)
        t = self.temperature
        old_p = torch.softmax(old.masked_fill(~valid, -1e9) / t, dim=1)
        new_log_p = torch.log_softmax(new.masked_fill(~valid, -1e9) / t, dim=1)
        kl = F.kl_div(new_log_p, old_p, reduction="batchmean")
        strategy.loss += self.alpha * t * t * kl

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.previous = copy.deepcopy(strategy.model).eval()
        self.previous.requires_grad_(False)
