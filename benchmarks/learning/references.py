"""Methods outside the package's strategies: plain prompt tuning, SPoT and PEFT's multitask prompts.

Notation: b batch, L prompt length, d width, T tasks, r rank of PEFT's task matrices.

All of them train with :func:`fit`, a loop written to match ``DPFStrategy``'s so that their
numbers compare with the package's methods: AdamW (no weight decay) on the prompt parameters
only, batches of 16 from a seeded shuffled loader, cycled until exactly ``steps`` optimiser steps,
mean cross-entropy over the options scored by ``backbone.option_scores`` (the frozen backbone's
own scoring). ``calibration.py`` checks the loop against the package's ``separate`` strategy.

PEFT's multitask prompt tuning (MPT) cannot run through ``get_peft_model`` here:
``PeftModelForFeatureExtraction.forward`` calls ``get_prompt(batch_size)`` without ``task_ids``,
and ``MultitaskPromptEmbedding.forward`` then raises ``task_ids cannot be None``
(:func:`peft_wrapper_check` records the error). So :class:`PeftMultitaskPrompt` uses PEFT's
``MultitaskPromptEmbedding`` module itself (shared prompt ``P`` [L, d] times per-task low-rank
``u_t v_t`` [L, r] @ [r, d], elementwise, with PEFT's initialisation), and its prompt is fed to
the backbone exactly like every other method's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from harness import PROMPT_LENGTH
from torch import Tensor, nn
from torch.utils.data import DataLoader

from dpf_continual.backbones.base import Item

PromptFn = Callable[[Tensor], Tensor]  # task ids [b] -> prompts [b, L, d]


def items_of(task, split: str, task_id: int = 0) -> list[Item]:
    """The examples of one split as backbone items labelled with ``task_id``."""
    return [Item(task_id, e.input, e.output, tuple(e.options)) for e in task.splits[split]]


@torch.no_grad()
def accuracy(backbone, prompt: PromptFn | None, items: Sequence[Item], batch_size: int = 64):
    """Share of ``items`` whose best-scored option is the gold one (0-1)."""
    loader = DataLoader(list(items), batch_size=batch_size, collate_fn=backbone.collate)
    correct = total = 0
    for batch in loader:
        batch = batch.to(backbone.device)
        fused = None if prompt is None else prompt(batch["task_ids"])
        predicted = backbone.option_scores(fused, batch).argmax(1)
        correct += int((predicted == batch["labels"]).sum())
        total += len(predicted)
    return correct / max(1, total)


def fit(
    backbone,
    module: nn.Module,
    items: Sequence[Item],
    *,
    steps: int,
    lr: float,
    batch_size: int = 16,
    seed: int = 0,
) -> list[float]:
    """Train ``module`` (task ids -> prompts) for exactly ``steps`` steps; returns the losses."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed * 7919)
    loader = DataLoader(
        list(items),
        batch_size=batch_size,
        shuffle=True,
        collate_fn=backbone.collate,
        generator=generator,
    )
    params = [param for param in module.parameters() if param.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    module.train()
    losses: list[float] = []
    while len(losses) < steps:
        for batch in loader:
            batch = batch.to(backbone.device)
            scores = backbone.option_scores(module(batch["task_ids"]), batch)  # [b, O]
            loss = F.cross_entropy(scores, batch["labels"], ignore_index=-100)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if len(losses) == steps:
                break
    module.eval()
    return losses


class PlainPrompt(nn.Module):
    """One soft prompt [L, d] for every row: plain prompt tuning (Lester et al., 2021)."""

    def __init__(self, init: Tensor) -> None:
        super().__init__()
        self.prompt = nn.Parameter(init.detach().clone().float())  # [L, d]

    def forward(self, task_ids: Tensor) -> Tensor:
        """task_ids [b] -> [b, L, d]."""
        return self.prompt.expand(len(task_ids), -1, -1)


def vocabulary_prompt(backbone, seed: int) -> Tensor:
    """A prompt of random vocabulary embeddings [L, d], as the package initialises its first one."""
    generator = torch.Generator().manual_seed(seed)
    return backbone.vocabulary_prompts(1, PROMPT_LENGTH, generator)[0].to(backbone.device)


class PeftMultitaskPrompt(nn.Module):
    """PEFT's ``MultitaskPromptEmbedding`` as a prompt module: ``P ⊙ (u_t v_t)`` per task.

    Args:
        backbone: The frozen backbone (gives ``d`` and the word embeddings PEFT asks for).
        num_tasks: ``T``, tasks trained together.
        num_ranks: ``r`` of the task matrices (PEFT's default 1).
        init_path: A safetensors file saved by :meth:`save_source`; when given, PEFT's
            ``AVERAGE_SOURCE_TASKS`` initialisation (shared prompt and the mean of the source
            task matrices), as MPT adapts to a target task. Otherwise PEFT's ``RANDOM``.
    """

    def __init__(
        self, *, backbone, num_tasks: int, num_ranks: int = 1, init_path: str | None = None
    ) -> None:
        from peft import MultitaskPromptTuningConfig, MultitaskPromptTuningInit, TaskType
        from peft.tuners.multitask_prompt_tuning.model import MultitaskPromptEmbedding

        super().__init__()
        init = MultitaskPromptTuningInit.RANDOM
        if init_path is not None:
            init = MultitaskPromptTuningInit.AVERAGE_SOURCE_TASKS
        self.config = MultitaskPromptTuningConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            num_virtual_tokens=PROMPT_LENGTH,
            token_dim=backbone.hidden_size,
            num_transformer_submodules=1,
            num_tasks=num_tasks,
            num_ranks=num_ranks,
            prompt_tuning_init=init,
            prompt_tuning_init_state_dict_path=init_path,
        )
        self.encoder = MultitaskPromptEmbedding(self.config, backbone.input_embeddings)
        self.encoder.to(backbone.device)
        self.register_buffer("indices", torch.arange(PROMPT_LENGTH, device=backbone.device))

    def forward(self, task_ids: Tensor) -> Tensor:
        """task_ids [b] -> [b, L, d]."""
        indices = self.indices.expand(len(task_ids), -1)  # [b, L]
        return self.encoder(indices, task_ids)

    def save_source(self, path: str) -> None:
        """Save the trained source prompts in the layout PEFT's target initialisation reads."""
        from safetensors.torch import save_file

        save_file(
            {
                "prompt_embeddings": self.encoder.embedding.weight.detach().cpu().contiguous(),
                "prefix_task_cols": self.encoder.prefix_task_cols.detach().cpu().contiguous(),
                "prefix_task_rows": self.encoder.prefix_task_rows.detach().cpu().contiguous(),
            },
            path,
        )


def peft_wrapper_check(backbone) -> str:
    """Try PEFT's own wrapper for MPT on the encoder; return what happened, in one line."""
    from peft import MultitaskPromptTuningConfig, TaskType, get_peft_model

    config = MultitaskPromptTuningConfig(
        task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=PROMPT_LENGTH, num_tasks=2
    )
    try:
        model = get_peft_model(copy.deepcopy(backbone.model), config)
        batch = backbone.tokenize(["a short check"]).to(backbone.device)
        model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            task_ids=torch.zeros(1, dtype=torch.long, device=backbone.device),
        )
    except Exception as error:  # noqa: BLE001 - the point is to record whatever PEFT raises
        return f"get_peft_model + forward failed: {type(error).__name__}: {error}"
    return "get_peft_model + forward worked"
