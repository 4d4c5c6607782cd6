"""Encoder backbones (BERT-like): prompted inputs are mean-pooled and matched to option texts.

A row's score for an option is ``scale * cos(pool(prompt + input), pool(option))``. Option texts
are embedded once by the bare backbone and cached, so the training step never re-embeds them and
no weights are added per task.

The alternative is a per-task linear head (:class:`TaskHeads`): a trainable ``[n_options, d]``
matrix per task, initialised to ``scale`` times the option embeddings so that it starts out
scoring exactly like the cosine scorer, then free to move.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import BatchEncoding

from dpf_continual.backbones.base import Backbone, Item, gold_index, mean_pool


class EncoderBackbone(Backbone):
    """A frozen encoder scored by scaled cosine similarity to the option texts.

    Args:
        scale: Multiplier of the cosine similarities (the inverse softmax temperature).
        **kwargs: See :class:`~dpf_continual.backbones.base.Backbone`.
    """

    kind = "encoder"

    def __init__(self, *, scale: float = 20.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = scale
        self._option_ids: dict[str, int] = {}
        self._option_table = torch.zeros(0, self.hidden_size, device=self.device)  # [n, d]

    def hidden_states(self, embeds: Tensor, mask: Tensor) -> Tensor:
        """Final states: embeds [b, s, d], mask [b, s] -> [b, s, d]."""
        return self.model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state

    def pooled(self, prompt: Tensor | None, input_ids: Tensor, mask: Tensor) -> Tensor:
        """Mean-pooled states of the prompted input (prompt positions included) -> [b, d]."""
        embeds = self.embed_tokens(input_ids)  # [b, s, d]
        if prompt is not None:
            embeds, mask = self.prepend(prompt, embeds, mask)  # [b, L + s, d]
        with self.autocast():
            states = self.hidden_states(embeds, mask)
        return mean_pool(states.float(), mask)

    def option_id(self, text: str) -> int:
        """Row of ``text`` in the option table (registered on first sight)."""
        index = self._option_ids.get(text)
        if index is None:
            index = self._option_ids[text] = len(self._option_ids)
        return index

    def collate(self, items: Sequence[Item]) -> BatchEncoding:
        """Tokenise inputs; options become rows of the cached option table [b, O]."""
        batch = self.tokenize([item.input for item in items])
        width = max(1, max(len(item.options) for item in items))
        options = torch.full((len(items), width), -1, dtype=torch.long)
        for row, item in enumerate(items):
            for column, text in enumerate(item.options):
                options[row, column] = self.option_id(text)
        batch["option_ids"] = options
        batch["task_ids"] = torch.tensor([item.task_id for item in items], dtype=torch.long)
        batch["labels"] = torch.tensor([gold_index(item) for item in items], dtype=torch.long)
        return batch

    def option_embeddings(self) -> Tensor:
        """Unit-norm pooled embeddings of every registered option text, [n, d]."""
        missing = len(self._option_ids) - self._option_table.shape[0]
        if missing > 0:
            texts = list(self._option_ids)[-missing:]
            new = F.normalize(self.embed_texts(texts), dim=-1).to(self.device)
            self._option_table = torch.cat([self._option_table, new])
        return self._option_table

    def option_scores(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Scaled cosine of each row to each of its options, [b, O] (``-inf`` padding)."""
        table = self.option_embeddings()  # [n, d]
        pooled = F.normalize(
            self.pooled(prompt, batch["input_ids"], batch["attention_mask"]), dim=-1
        )
        option_ids = batch["option_ids"]  # [b, O]
        chosen = table[option_ids.clamp(min=0)]  # [b, O, d]
        scores = self.scale * torch.einsum("bd,bod->bo", pooled, chosen)
        return scores.masked_fill(option_ids < 0, float("-inf"))


class TaskHeads(nn.Module):
    """Per-task linear heads over the pooled, normalised prompted input.

    Args:
        backbone: The encoder whose option embeddings initialise the heads.
    """

    def __init__(self, backbone: EncoderBackbone) -> None:
        super().__init__()
        self.backbone = [backbone]  # a list keeps it out of this module's parameters
        self.heads = nn.ParameterDict()

    def add_task(self, task_id: int, options: Sequence[str]) -> None:
        """A head for ``task_id`` whose rows score ``options`` in this order."""
        backbone = self.backbone[0]
        ids = torch.tensor([backbone.option_id(text) for text in options])
        weight = backbone.scale * backbone.option_embeddings()[ids.to(backbone.device)]
        self.heads[str(task_id)] = nn.Parameter(weight.detach().clone())  # [n, d]

    def forward(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Scores [b, O] of each row's options by its task's head (``-inf`` padding).

        A row's options must be its task's options in the order the head was made with.
        """
        backbone = self.backbone[0]
        pooled = F.normalize(
            backbone.pooled(prompt, batch["input_ids"], batch["attention_mask"]), dim=-1
        )  # [b, d]
        width = batch["option_ids"].shape[1]
        scores = pooled.new_full((pooled.shape[0], width), float("-inf"))
        for task in torch.unique(batch["task_ids"]).tolist():
            rows = batch["task_ids"] == task
            head = self.heads[str(task)]  # [n, d]
            scores[rows, : head.shape[0]] = pooled[rows] @ head.T
        return scores.masked_fill(batch["option_ids"] < 0, float("-inf"))
