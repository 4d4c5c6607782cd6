"""Generative backbones: decoders (causal LMs) and encoder-decoders (T5-like).

Both score an option by its length-normalised log-likelihood given the prompted input (rank
classification): the mean log-probability of the option's tokens. A generation row is a single
(row, gold output) pair, so the same forward pass gives its training loss.

A decoder reads ``[prompt][input]`` once per row and keeps its attention keys and values; each
option then runs only its own tokens on top of that cache (``shared_prefix``). The older layout,
one full ``[prompt][input][option]`` sequence per (row, option) pair, gives the same scores and
stays available (``shared_prefix=False``) for comparisons with tools that need it.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from itertools import accumulate, pairwise

import torch
from torch import Tensor
from transformers import BatchEncoding

from dpf_continual.backbones.base import IGNORE, Backbone, Item, gold_index


def _pairs(items: Sequence[Item]) -> tuple[list[tuple[int, str]], Tensor]:
    """(row, target text) pairs: every option of a choice row, the gold output otherwise.

    Returns:
        The pairs in row order, and each row's pair indices [b, O] with ``-1`` padding.
    """
    pairs: list[tuple[int, str]] = []
    targets = [item.options or (item.output,) for item in items]
    layout = torch.full((len(items), max(len(t) for t in targets)), -1, dtype=torch.long)
    for row, texts in enumerate(targets):
        for column, text in enumerate(texts):
            layout[row, column] = len(pairs)
            pairs.append((row, text))
    return pairs, layout


def _pad(rows: list[list[int]], value: int) -> tuple[Tensor, Tensor]:
    """Right-pad lists of ids -> ids [n, s] and mask [n, s]."""
    width = max(1, max(len(row) for row in rows))
    ids = torch.full((len(rows), width), value, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[index, : len(row)] = 1
    return ids, mask


def _score_pieces(score, parts: list[tuple], grad: bool) -> Tensor:
    """``score(*part)`` of each part, concatenated.

    When the batch was split and gradients are wanted, each piece is checkpointed: its
    activations are dropped after the forward pass and computed again in the backward pass, so
    memory is that of one piece.
    """
    if len(parts) == 1:
        return score(*parts[0])
    if grad:
        from torch.utils.checkpoint import checkpoint

        return torch.cat([checkpoint(score, *part, use_reentrant=False) for part in parts])
    return torch.cat([score(*part) for part in parts])


def _needs_grad(tensors) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)


def _in_pieces(backbone, count: int, score, *tensors: Tensor | None) -> Tensor:
    """``score`` over slices of at most ``backbone.sequences_per_pass`` pairs, [count].

    ``tensors`` are sliced along their first dimension (``None`` passes through).
    """
    size = backbone.sequences_per_pass
    parts = [
        tuple(None if t is None else t[start : start + size] for t in tensors)
        for start in range(0, count, size)
    ]
    return _score_pieces(score, parts, _needs_grad(tensors))


def _cache_argument(model) -> str:
    """The name ``model.forward`` takes its key/value cache under (``cache`` from 5.25 on)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _has_plain_cache(config) -> bool:
    """Whether the model's cache is one growing key/value pair per layer."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        layers = DynamicCache(config=config).layers
    except Exception:  # a model family whose cache cannot be built from its config
        return False
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def _output_cache(output):
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _scatter_scores(pair_scores: Tensor, layout: Tensor) -> Tensor:
    """Per-pair scores [N] -> [b, O] by ``layout``, ``-inf`` where the layout is ``-1``."""
    padded = torch.cat([pair_scores, pair_scores.new_full((1,), float("-inf"))])
    return padded[layout]


class DecoderBackbone(Backbone):
    """A frozen causal LM: ``[prompt][input tokens][target tokens]``, scored on the targets.

    Args:
        shared_prefix: Run each row's prompted input once and every option on top of its cached
            keys and values (the default: the input is read once, not once per option). With
            ``False`` every (row, option) pair is one full sequence. Models whose cache is not a
            plain per-layer key/value store (sliding-window or linear-attention layers) always
            use full sequences.
        **kwargs: See :class:`~dpf_continual.backbones.base.Backbone`.
    """

    kind = "decoder"

    def __init__(self, *, shared_prefix: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.shared_prefix = shared_prefix
        self._plain_cache = _has_plain_cache(self.model.config)
        self._cache_argument = _cache_argument(self.model.base_model)

    @property
    def reads_input_once(self) -> bool:
        """Whether batches use the shared-input layout (``shared_prefix`` and a plain cache)."""
        return self.shared_prefix and self._plain_cache

    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def hidden_states(self, embeds: Tensor, mask: Tensor) -> Tensor:
        """Final states of the base model (before the LM head): [b, s, d]."""
        return self.model.base_model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state

    def collate(self, items: Sequence[Item]) -> BatchEncoding:
        """Tokenise each (row, target) pair as one sequence, the input left-truncated."""
        pairs, layout = _pairs(items)
        tok = self.tokenizer
        inputs = tok([item.input for item in items], add_special_tokens=True)["input_ids"]
        targets = tok([" " + text for _, text in pairs], add_special_tokens=False)["input_ids"]
        # Every option of a row reads the same input: cut it to leave room for the longest one.
        longest = [0] * len(items)
        for (row, _), target in zip(pairs, targets, strict=True):
            longest[row] = max(longest[row], len(target))
        sources = [ids[-max(1, self.max_length - longest[row]) :] for row, ids in enumerate(inputs)]
        if self.reads_input_once:
            input_ids, input_mask = _pad(sources, self._pad_id())
            option_ids, option_mask = _pad(targets, self._pad_id())
            sequences = {
                "input_ids": input_ids,  # [b, s]: each row's input once (right-padded)
                "attention_mask": input_mask,
                "option_ids": option_ids,  # [N, t]: each pair's target tokens alone
                "option_mask": option_mask,
            }
        else:
            rows, target_masks = [], []
            for (row, _), target in zip(pairs, targets, strict=True):
                rows.append(sources[row] + target)
                target_masks.append([0] * len(sources[row]) + [1] * len(target))
            ids, mask = _pad(rows, self._pad_id())
            target_mask, _ = _pad(target_masks, 0)
            # [N, s + t]: the full sequence of each pair, its option's tokens marked
            sequences = {"pair_ids": ids, "pair_mask": mask, "target_mask": target_mask}
        return BatchEncoding(
            {
                **sequences,
                "pair_rows": torch.tensor([row for row, _ in pairs], dtype=torch.long),
                "layout": layout,
                "task_ids": torch.tensor([item.task_id for item in items], dtype=torch.long),
                "labels": torch.tensor([gold_index(item) for item in items], dtype=torch.long),
            }
        )

    def pair_scores(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Mean log-probability of each pair's target tokens, [N] (see ``sequences_per_pass``)."""
        if "option_ids" in batch:  # collated with the shared-input layout
            return self._shared_prefix_scores(prompt, batch)
        ids, mask, targets = batch["pair_ids"], batch["pair_mask"], batch["target_mask"]
        pair_prompts = None if prompt is None else prompt[batch["pair_rows"]]  # [N, L, d]
        return _in_pieces(self, ids.shape[0], self._scores, pair_prompts, ids, mask, targets)

    def _shared_prefix_scores(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Pair scores, each row's prompted input run once; pieces of whole rows, [N]."""
        rows = batch["pair_rows"]
        per_row = torch.bincount(rows, minlength=batch["input_ids"].shape[0]).tolist()
        offsets = [0, *accumulate(per_row)]  # first pair of each row
        bounds = [0]  # rows starting a piece: at most sequences_per_pass pairs, at least one row
        for row in range(1, len(per_row)):
            if offsets[row + 1] - offsets[bounds[-1]] > self.sequences_per_pass:
                bounds.append(row)
        bounds.append(len(per_row))
        parts = [
            (
                None if prompt is None else prompt[start:end],
                batch["input_ids"][start:end],
                batch["attention_mask"][start:end],
                batch["option_ids"][offsets[start] : offsets[end]],
                batch["option_mask"][offsets[start] : offsets[end]],
                rows[offsets[start] : offsets[end]] - start,
            )
            for start, end in pairwise(bounds)
        ]
        return _score_pieces(self._prefix_scores, parts, _needs_grad([prompt]))

    def _prefix_scores(
        self,
        prompt: Tensor | None,
        input_ids: Tensor,
        input_mask: Tensor,
        option_ids: Tensor,
        option_mask: Tensor,
        pair_rows: Tensor,
    ) -> Tensor:
        """Scores of pairs on rows ``input_ids`` [k, s]; ``pair_rows`` [n] indexes those rows."""
        embeds, mask = self.embed_tokens(input_ids), input_mask  # [k, s, d]
        if prompt is not None:
            embeds, mask = self.prepend(prompt, embeds, mask)  # [k, L + s, d]
        lengths = mask.sum(1)  # real positions: the prompt, then the input (right-padded)
        base = self.model.base_model
        with self.autocast():
            positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
            prefix = base(
                inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True
            )
            cache = _output_cache(prefix)
            cache.batch_select_indices(pair_rows)  # one copy of each row's cache per option
            option_positions = lengths[pair_rows, None] + torch.arange(
                option_ids.shape[1], device=mask.device
            )  # [n, t]
            states = base(
                input_ids=option_ids,
                attention_mask=torch.cat([mask[pair_rows], option_mask], dim=1),
                position_ids=option_positions,
                use_cache=True,
                **{self._cache_argument: cache},
            ).last_hidden_state  # [n, t, d]
            last = prefix.last_hidden_state[torch.arange(len(lengths)), lengths - 1]  # [k, d]
            # Option token j is predicted by the state before it: the input's last for j = 0.
            before = torch.cat([last[pair_rows, None], states[:, :-1]], dim=1)  # [n, t, d]
            pair, position = option_mask.nonzero(as_tuple=True)  # [M], [M]
            logits = self.model.get_output_embeddings()(before[pair, position])  # [M, V]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        token = log_probs.gather(1, option_ids[pair, position][:, None]).squeeze(1)  # [M]
        total = torch.zeros(option_ids.shape[0], device=option_ids.device).index_add(0, pair, token)
        return total / option_mask.sum(1).clamp(min=1)

    def _scores(self, prompt: Tensor | None, ids: Tensor, mask: Tensor, targets: Tensor) -> Tensor:
        """Scores of pairs whose prompts ``prompt`` [n, L, d] are already one per pair, [n]."""
        embeds = self.embed_tokens(ids)  # [n, s, d]
        offset = 0
        if prompt is not None:
            embeds, mask = self.prepend(prompt, embeds, mask)  # [n, L + s, d]
            offset = prompt.shape[1]
        with self.autocast():
            states = self.hidden_states(embeds, mask)  # [n, L + s, d]

            # Only target positions go through the (large) LM head.
            pair, position = targets.nonzero(as_tuple=True)  # [M], [M]
            logits = self.model.get_output_embeddings()(states[pair, offset + position - 1])
        log_probs = torch.log_softmax(logits.float(), dim=-1)  # [M, V]
        token = log_probs.gather(1, ids[pair, position][:, None]).squeeze(1)  # [M]
        total = torch.zeros(ids.shape[0], device=ids.device).index_add(0, pair, token)
        return total / targets.sum(1).clamp(min=1)

    def option_scores(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Length-normalised log-likelihood of each option, [b, O]."""
        return _scatter_scores(self.pair_scores(prompt, batch), batch["layout"])

    @torch.no_grad()
    def generate(
        self, prompt: Tensor | None, texts: Sequence[str], max_new_tokens: int = 32
    ) -> list[str]:
        """Greedy generation after the prompted input (inputs left-padded)."""
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        try:
            batch = self.tokenize(texts).to(self.device)
        finally:
            self.tokenizer.padding_side = side
        embeds, mask = self.embed_tokens(batch.input_ids), batch.attention_mask
        if prompt is not None:
            embeds, mask = self.prepend(prompt, embeds, mask)
        with self.autocast():
            out = self.model.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=self._pad_id(),
            )
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


class Seq2SeqBackbone(Backbone):
    """A frozen encoder-decoder: the prompt goes before the encoder input; targets are decoded."""

    kind = "encoder-decoder"

    def hidden_states(self, embeds: Tensor, mask: Tensor) -> Tensor:
        """Final encoder states: [b, s, d]."""
        return self.model.get_encoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state

    def collate(self, items: Sequence[Item]) -> BatchEncoding:
        """Tokenise inputs once per row and targets once per (row, target) pair."""
        pairs, layout = _pairs(items)
        batch = self.tokenize([item.input for item in items])
        targets = self.tokenizer([text for _, text in pairs])["input_ids"]
        target_ids, target_mask = _pad(targets, self.tokenizer.pad_token_id or 0)
        batch["target_ids"] = target_ids
        batch["target_mask"] = target_mask
        batch["pair_rows"] = torch.tensor([row for row, _ in pairs], dtype=torch.long)
        batch["layout"] = layout
        batch["task_ids"] = torch.tensor([item.task_id for item in items], dtype=torch.long)
        batch["labels"] = torch.tensor([gold_index(item) for item in items], dtype=torch.long)
        return batch

    def _encode(self, prompt: Tensor | None, batch: BatchEncoding) -> tuple[Tensor, Tensor]:
        embeds, mask = self.embed_tokens(batch["input_ids"]), batch["attention_mask"]
        if prompt is not None:
            embeds, mask = self.prepend(prompt, embeds, mask)
        return self.hidden_states(embeds, mask), mask

    def pair_scores(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Mean log-probability of each pair's target tokens, [N] (see ``sequences_per_pass``).

        The encoder runs once per row; the decoder runs once per pair, in pieces.
        """
        rows = batch["pair_rows"]
        with self.autocast():
            encoded, mask = self._encode(prompt, batch)  # [b, L + s, d]
        return _in_pieces(
            self, rows.shape[0], self._decode_scores,
            encoded[rows], mask[rows], batch["target_ids"], batch["target_mask"],
        )  # fmt: skip

    def _decode_scores(
        self, encoded: Tensor, mask: Tensor, target_ids: Tensor, target_mask: Tensor
    ) -> Tensor:
        """Scores of pairs from their encoder states ``encoded`` [n, L + s, d], [n]."""
        with self.autocast():
            labels = target_ids.masked_fill(target_mask == 0, IGNORE)
            logits = self.model(
                encoder_outputs=(encoded,), attention_mask=mask, labels=labels
            ).logits  # [n, t, V]
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        token = log_probs.gather(2, target_ids[..., None]).squeeze(-1) * target_mask
        return token.sum(1) / target_mask.sum(1).clamp(min=1)

    def option_scores(self, prompt: Tensor | None, batch: BatchEncoding) -> Tensor:
        """Length-normalised log-likelihood of each option, [b, O]."""
        return _scatter_scores(self.pair_scores(prompt, batch), batch["layout"])

    @torch.no_grad()
    def generate(
        self, prompt: Tensor | None, texts: Sequence[str], max_new_tokens: int = 32
    ) -> list[str]:
        """Greedy decoding from the prompted encoder input."""
        batch = self.tokenize(texts).to(self.device)
        encoded, mask = self._encode(prompt, batch)
        out = self.model.generate(
            encoder_outputs=_EncoderOutput(encoded),
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
        )
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def _EncoderOutput(states: Tensor):  # noqa: N802 - mirrors the transformers class name
    from transformers.modeling_outputs import BaseModelOutput

    return BaseModelOutput(last_hidden_state=states)
