"""The frozen backbone: one interface over encoder, decoder and encoder-decoder models.

Notation: b batch, L prompt length, s sequence length, d width, O options per row, N (row, option)
pairs in a batch, V vocabulary.

A backbone turns raw examples into a batch (:meth:`Backbone.collate`, done once per batch in the
data loader, never in the training step), and scores a prompted batch
(:meth:`Backbone.option_scores` for choice tasks, :meth:`Backbone.generation_loss` and
:meth:`Backbone.generate` for free-form outputs). The model's weights never receive gradients and
it stays in eval mode; gradients flow only into the prompt.
"""

from __future__ import annotations

import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers import BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from dpf_continual.errors import ConfigError

logger = logging.getLogger(__name__)

IGNORE = -100


@dataclass(frozen=True)
class Item:
    """One example as the backbone sees it.

    Attributes:
        task_id: Row of the task in the fusion module.
        input: The input text.
        output: The gold output text.
        options: Candidate outputs for choice tasks; empty for generation tasks.
    """

    task_id: int
    input: str
    output: str
    options: tuple[str, ...] = ()


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; anything else is passed to torch."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def gold_index(item: Item) -> int:
    """Position of the gold output among the options (``IGNORE`` when absent)."""
    try:
        return item.options.index(item.output)
    except ValueError:
        return IGNORE


class Backbone(ABC):
    """A frozen Hugging Face model that accepts a soft prompt before its input.

    Args:
        model: The model; it is frozen and put in eval mode here.
        tokenizer: Its tokenizer.
        name: The name or path it was loaded from (recorded in the registry).
        device: Where to run; ``auto`` picks CUDA when present.
        max_length: Longest input in tokens (longer inputs are truncated).
        sequences_per_pass: Generative backbones score a batch as one sequence per (row,
            option) pair: a batch of 16 rows with 14 options each is 224 sequences. At most this
            many go through the model at once; while training, each piece is run again in the
            backward pass (activation checkpointing), so memory stays that of one piece. Encoders
            score options without extra sequences and ignore it.
    """

    kind: str = ""

    def __init__(
        self,
        *,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        name: str,
        device: str | torch.device = "auto",
        max_length: int = 128,
        sequences_per_pass: int = 64,
    ) -> None:
        if int(sequences_per_pass) != sequences_per_pass or sequences_per_pass < 1:
            raise ConfigError(
                f"sequences_per_pass must be a positive integer, got {sequences_per_pass!r}"
            )
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.model.requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = max_length
        self.sequences_per_pass = int(sequences_per_pass)
        self.input_embeddings = self.model.get_input_embeddings()

    @property
    def hidden_size(self) -> int:
        """Width ``d`` of the token embeddings (and so of every prompt)."""
        return self.input_embeddings.weight.shape[1]

    @property
    def identity(self) -> str:
        """A string that identifies the backbone in the registry."""
        return f"{self.name}|{self.kind}|d={self.hidden_size}"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on CUDA; nothing on the CPU."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def embed_tokens(self, input_ids: Tensor) -> Tensor:
        """Token embeddings of ``input_ids`` [b, s] -> [b, s, d]."""
        return self.input_embeddings(input_ids)

    def prepend(self, prompt: Tensor, embeds: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Put ``prompt`` [b, L, d] before ``embeds`` [b, s, d]; extend ``mask`` [b, s]."""
        prompt = prompt.to(embeds.dtype)
        ones = torch.ones(prompt.shape[:2], dtype=mask.dtype, device=mask.device)
        return torch.cat([prompt, embeds], dim=1), torch.cat([ones, mask], dim=1)

    def token_embedding_norm(self) -> float:
        """Mean L2 norm of the vocabulary embeddings (the scale prompts should live at)."""
        return float(self.input_embeddings.weight.float().norm(dim=1).mean())

    def vocabulary_prompts(self, count: int, length: int, generator: torch.Generator) -> Tensor:
        """``count`` prompts made of random vocabulary embeddings, [m, L, d] on the CPU."""
        vocab = self.input_embeddings.weight.shape[0]
        ids = torch.randint(0, vocab, (count, length), generator=generator)
        return self.input_embeddings.weight.detach()[ids.to(self.device)].float().cpu()

    def tokenize(self, texts: Sequence[str], **kwargs: object) -> BatchEncoding:
        """Tokenise with truncation and padding to the longest text."""
        options = {"padding": True, "truncation": True, "max_length": self.max_length}
        options.update(kwargs)
        return self.tokenizer(list(texts), return_tensors="pt", **options)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str], batch_size: int = 32) -> Tensor:
        """Mean-pooled final states of ``texts`` with no prompt, [n, d] float32 on the CPU."""
        rows = []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenize(texts[start : start + batch_size]).to(self.device)
            with self.autocast():
                states = self.hidden_states(
                    self.embed_tokens(batch.input_ids), batch.attention_mask
                )
            rows.append(mean_pool(states, batch.attention_mask).float().cpu())
        return torch.cat(rows) if rows else torch.zeros(0, self.hidden_size)

    @abstractmethod
    def hidden_states(self, embeds: Tensor, mask: Tensor) -> Tensor:
        """Final states of an embedded input: embeds [b, s, d], mask [b, s] -> [b, s, d]."""

    @abstractmethod
    def collate(self, items: Sequence[Item]) -> BatchEncoding:
        """Tokenise a list of items into a batch on the CPU.

        The batch always holds ``task_ids`` [b] and ``labels`` [b] (gold option index, or
        ``-100`` for generation rows), plus what :meth:`option_scores` needs.
        """

    @abstractmethod
    def option_scores(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Score every option of every row.

        Args:
            prompt: Fused prompts [b, L, d], or ``None`` for the bare backbone.
            batch: A batch from :meth:`collate`, on the backbone's device.

        Returns:
            Scores [b, O]; ``-inf`` where a row has fewer than ``O`` options.
        """

    def generation_loss(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Per-row mean token loss of the gold output, [b]. Encoders cannot generate."""
        raise NotImplementedError(f"{self.kind} backbones do not support generation tasks yet")

    def generate(self, prompt: Tensor | None, texts: Sequence[str], max_new_tokens: int = 32):
        """Generate an output for each text. Encoders cannot generate."""
        raise NotImplementedError(f"{self.kind} backbones do not support generation tasks yet")

    def parameters(self) -> Iterator[torch.nn.Parameter]:
        """The frozen model's parameters (for checks that they never change)."""
        return self.model.parameters()


def mean_pool(states: Tensor, mask: Tensor) -> Tensor:
    """Average of ``states`` [b, s, d] over positions where ``mask`` [b, s] is 1 -> [b, d]."""
    weights = mask.to(states.dtype).unsqueeze(-1)  # [b, s, 1]
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
