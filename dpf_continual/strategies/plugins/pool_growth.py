"""Before each new task: grow the pool and give the task its scheduler row and embedding.

Steps for a new task ``t`` with embedding ``e_t`` (see DESIGN section 2):

1. Add ``m`` prompts (``prompts_per_task``; none once the pool holds ``max_prompts``),
   initialised from the fused prompt of the most similar earlier task (cosine of task
   embeddings), or from random vocabulary embeddings for the first task. Earlier tasks do not
   see the new prompts (masked), so their fused prompts stay exactly as they were.
2. Add the scheduler row ``z_t``: for each earlier prompt, the similarity-weighted scheduler
   weights of the earlier tasks (so ``t`` starts from what its neighbours use), and a neutral
   logit for its own new prompts.
3. Freeze the earlier prompts (or mark them for a reduced learning rate).
"""

from __future__ import annotations

import itertools
import logging

import torch
import torch.nn.functional as F
from avalanche.core import SupervisedPlugin
from torch import Tensor

from dpf_continual.fusion import DynamicPromptFusion
from dpf_continual.strategies.config import OldPrompts

logger = logging.getLogger(__name__)


class PoolGrowthPlugin(SupervisedPlugin):
    """Prepares the prompt module for each new experience (idempotent per task).

    Args:
        embeddings: Task embedding ``e_t`` [d] of each task id (already scaled).
        init_prompt: Makes ``m`` starting prompts [m, L, d] from vocabulary embeddings.
        prompts_per_task: ``m``.
        max_prompts: Pool cap (0 = none).
        old_prompts: Freeze earlier prompts, or train them at a reduced rate.
    """

    def __init__(
        self,
        *,
        embeddings: dict[int, Tensor],
        init_prompt,
        prompts_per_task: int,
        max_prompts: int = 0,
        old_prompts: OldPrompts = OldPrompts.FROZEN,
    ) -> None:
        super().__init__()
        self.embeddings = embeddings
        self.init_prompt = init_prompt
        self.prompts_per_task = prompts_per_task
        self.max_prompts = max_prompts
        self.old_prompts = old_prompts

    def before_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        # Runs before the optimiser is made, so the new parameters are in it.
        for task_id in strategy.experience.task_labels:
            self.prepare(strategy, task_id)

    def prepare(self, strategy, task_id: int) -> None:
        """Make sure the module has a row for ``task_id`` (adds it and grows the pool if not)."""
        module = strategy.model.prompts
        if task_id < module.num_tasks:
            return
        if task_id != module.num_tasks:
            raise RuntimeError(f"task {task_id} arrived before task {module.num_tasks}")
        if isinstance(module, DynamicPromptFusion):
            new = self._grow_fusion(module, task_id)
        else:
            module.add_task(self.init_prompt(1)[0].to(_device(module)))
            new = []
        strategy.old_prompt_indices = [i for i in range(getattr(module, "num_prompts", 0))]
        strategy.old_prompt_indices = [i for i in strategy.old_prompt_indices if i not in new]
        if isinstance(module, DynamicPromptFusion) and self.old_prompts == OldPrompts.FROZEN:
            module.pool.freeze(strategy.old_prompt_indices)
            module.pool.unfreeze(new)

    def _grow_fusion(self, module: DynamicPromptFusion, task_id: int) -> list[int]:
        embedding = self.embeddings[task_id].to(_device(module))  # [d]
        count = self.prompts_per_task
        if self.max_prompts and module.num_prompts + count > self.max_prompts:
            count = max(0, self.max_prompts - module.num_prompts)
        if module.num_tasks == 0 and count == 0:
            count = 1  # the first task needs at least one prompt

        similarity = None
        if module.num_tasks:
            similarity = F.cosine_similarity(module.task_embeddings, embedding[None], dim=-1)
        new: list[int] = []
        if count:
            if similarity is None:
                init = self.init_prompt(count)
            else:
                nearest = int(similarity.argmax())
                base = module.fused_prompts()[nearest]  # [L, d]
                init = base[None].repeat(count, 1, 1) + 0.01 * torch.randn(count, *base.shape)
            new = module.add_prompts(count, init.to(_device(module)))
        logits = self._initial_logits(module, similarity, new)
        module.add_task(embedding, logits=logits)
        logger.info(
            "task %d: pool grown by %d to %d prompts", task_id, len(new), module.num_prompts
        )
        return new

    @staticmethod
    def _initial_logits(module, similarity: Tensor | None, new: list[int]) -> Tensor:
        """Logits [K] that reproduce the neighbours' scheduler weights on earlier prompts."""
        logits = torch.zeros(module.num_prompts, device=_device(module))
        if similarity is None or module.num_tasks == 0:
            return logits
        old = [i for i in range(module.num_prompts) if i not in new]
        with torch.no_grad():
            mix = torch.softmax(similarity / 0.1, dim=0)  # [T] attention over earlier tasks
            weights = module.weights(torch.arange(module.num_tasks, device=mix.device))  # [T, K]
            expected = (mix[:, None] * weights).sum(0)[old]  # [K_old]
            share = len(old) / max(1, module.num_prompts)
            logits[old] = module.scheduler.temperature * torch.log(expected * share + 1e-6)
            if new:
                logits[new] = module.scheduler.temperature * torch.log(
                    torch.tensor((1 - share) / len(new) + 1e-6)
                )
        return logits


def _device(module) -> torch.device:
    for tensor in itertools.chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")
