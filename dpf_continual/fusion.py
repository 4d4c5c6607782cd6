"""Dynamic Prompt Fusion: a pool of soft prompts mixed per task and gated with a task embedding.

Notation for tensor shapes:
    b: batch size        K: prompts in the pool     L: virtual tokens per prompt
    d: embedding width   T: tasks known so far

For task ``t`` with scheduler logits ``z_t`` [K] and task embedding ``e_t`` [d]::

    w_t = softmax(z_t / tau)                         # [K]   scheduling weights
    p_t = sum_k w_t[k] * pool[k]                     # [L, d] mixed prompt
    g_t = sigmoid(W_g @ e_t + b_g)                   # [d]    gate
    prompt_t = g_t * p_t + (1 - g_t) * e_t           # [L, d] (e_t and g_t broadcast over L)

``prompt_t`` is prepended to the token embeddings of the frozen backbone.

Growth keeps old tasks exact: when ``m`` prompts join the pool, the logits of every earlier task
for the new prompts start *masked* (weight exactly zero), so their fused prompts do not change by
a single bit until training decides otherwise (:meth:`DynamicPromptFusion.unmask`).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

DEFAULT_TEMPERATURE = 0.9
DEFAULT_PROMPT_LENGTH = 20


def _check_positive(name: str, value: float, *, integer: bool = False) -> None:
    ok = value > 0 and (not integer or int(value) == value)
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        kind = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def fuse_prompt(
    pool: Tensor,
    logits: Tensor,
    task_embedding: Tensor,
    gate_weight: Tensor,
    gate_bias: Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
) -> Tensor:
    """Fuse one task's prompt from the pool: the reference form of the method's equations.

    Args:
        pool: Prompt pool, [K, L, d].
        logits: The task's scheduler logits, [K]. ``-inf`` entries get weight zero.
        task_embedding: The task embedding ``e_t``, [d].
        gate_weight: Gate matrix ``W_g`` in ``nn.Linear`` convention (out, in), [d, d].
        gate_bias: Gate bias, [d].
        temperature: Softmax temperature ``tau`` (> 0).

    Returns:
        The fused prompt, [L, d].

    Raises:
        ValueError: If the temperature is not positive or the shapes disagree.
    """
    _check_positive("temperature", temperature)
    num_prompts, _, width = pool.shape
    if logits.shape != (num_prompts,) or task_embedding.shape != (width,):
        raise ValueError(
            f"shapes do not fit a pool of {tuple(pool.shape)}: logits {tuple(logits.shape)}, "
            f"task_embedding {tuple(task_embedding.shape)}; "
            f"expected ({num_prompts},) and ({width},)"
        )

    weights = torch.softmax(logits / temperature, dim=-1)  # [K]
    mixed = torch.einsum("k,kld->ld", weights, pool)  # [L, d]
    gate = torch.sigmoid(gate_weight @ task_embedding + gate_bias)  # [d]
    return gate * mixed + (1 - gate) * task_embedding  # [L, d]


class PromptPool(nn.Module):
    """A growing list of soft prompts, each ``[L, d]``, that can be frozen one by one.

    Args:
        prompt_length: Virtual tokens per prompt (``L``).
        hidden_size: Embedding width of the backbone (``d``).
    """

    def __init__(self, *, prompt_length: int = DEFAULT_PROMPT_LENGTH, hidden_size: int) -> None:
        super().__init__()
        _check_positive("prompt_length", prompt_length, integer=True)
        _check_positive("hidden_size", hidden_size, integer=True)
        self.prompt_length = prompt_length
        self.hidden_size = hidden_size
        self.prompts = nn.ParameterList()

    def __len__(self) -> int:
        return len(self.prompts)

    def add_prompts(self, count: int, init: Tensor | None = None) -> list[int]:
        """Append ``count`` prompts and return their indices.

        Args:
            count: How many prompts to add (``m``).
            init: Initial values, [m, L, d]; small random values when ``None``.
        """
        _check_positive("count", count, integer=True)
        shape = (count, self.prompt_length, self.hidden_size)
        if init is None:
            init = torch.randn(shape) * 0.02
        elif tuple(init.shape) != shape:
            raise ValueError(f"init has shape {tuple(init.shape)}, expected {shape}")
        start = len(self.prompts)
        for row in init:
            self.prompts.append(nn.Parameter(row.detach().clone().float()))
        return list(range(start, start + count))

    def stacked(self) -> Tensor:
        """All prompts as one tensor, [K, L, d]."""
        if len(self.prompts) == 0:
            raise RuntimeError("the prompt pool is empty: add prompts before fusing")
        return torch.stack(list(self.prompts))

    def freeze(self, indices: list[int] | None = None) -> None:
        """Stop gradients to the given prompts (all when ``None``)."""
        for index in range(len(self)) if indices is None else indices:
            self.prompts[index].requires_grad_(False)

    def unfreeze(self, indices: list[int] | None = None) -> None:
        """Let gradients reach the given prompts again (all when ``None``)."""
        for index in range(len(self)) if indices is None else indices:
            self.prompts[index].requires_grad_(True)

    def frozen(self) -> list[bool]:
        """Whether each prompt is frozen, in pool order."""
        return [not prompt.requires_grad for prompt in self.prompts]


class Scheduler(nn.Module):
    """Per-task logits over the pool, with a mask that hides prompts a task has not unlocked.

    ``logits`` is [T, K]; ``mask`` (a buffer) is True where a task may use a prompt.
    """

    def __init__(self, *, temperature: float = DEFAULT_TEMPERATURE) -> None:
        super().__init__()
        _check_positive("temperature", temperature)
        self.temperature = float(temperature)
        self.logits = nn.Parameter(torch.zeros(0, 0))  # [T, K]
        self.register_buffer("mask", torch.zeros(0, 0, dtype=torch.bool))  # [T, K]

    @property
    def num_tasks(self) -> int:
        return self.logits.shape[0]

    @property
    def num_prompts(self) -> int:
        return self.logits.shape[1]

    def add_prompts(self, count: int, *, visible_to: list[int] | None = None) -> None:
        """Add ``count`` columns; masked for every existing task except those in ``visible_to``."""
        tasks = self.num_tasks
        new_logits = torch.zeros(tasks, count, device=self.logits.device)
        new_mask = torch.zeros(tasks, count, dtype=torch.bool, device=self.mask.device)
        for task in visible_to or []:
            new_mask[task] = True
        self._replace(
            torch.cat([self.logits.data, new_logits], dim=1),
            torch.cat([self.mask, new_mask], dim=1),
        )

    def add_task(self, init: Tensor | None = None, visible: Tensor | None = None) -> int:
        """Add a row of logits (zeros unless ``init`` [K]); all visible unless ``visible``."""
        count = self.num_prompts
        row = torch.zeros(count) if init is None else init.detach().float()
        if row.shape != (count,):
            raise ValueError(f"scheduler init has shape {tuple(row.shape)}, expected ({count},)")
        seen = torch.ones(count, dtype=torch.bool) if visible is None else visible.bool()
        self._replace(
            torch.cat([self.logits.data, row[None].to(self.logits.device)], dim=0),
            torch.cat([self.mask, seen[None].to(self.mask.device)], dim=0),
        )
        return self.num_tasks - 1

    def weights(self, task_ids: Tensor) -> Tensor:
        """Scheduling weights ``softmax(z_t / tau)`` for each id in ``task_ids`` [b] -> [b, K]."""
        logits = self.logits[task_ids].masked_fill(~self.mask[task_ids], float("-inf"))
        return torch.softmax(logits / self.temperature, dim=-1)

    def _replace(self, logits: Tensor, mask: Tensor) -> None:
        requires_grad = self.logits.requires_grad
        self.logits = nn.Parameter(logits, requires_grad=requires_grad)
        self.mask = mask


class FusionGate(nn.Module):
    """``g = sigmoid(W_g e + b_g)``: how much of the mixed prompt each channel keeps.

    The weight starts at zero and the bias at ``bias_init``, so every task starts with the same
    gate ``sigmoid(bias_init)`` (about 0.88 for 2.0: mostly pool, a little task embedding).
    """

    def __init__(self, *, hidden_size: int, bias_init: float = 2.0) -> None:
        super().__init__()
        _check_positive("hidden_size", hidden_size, integer=True)
        self.linear = nn.Linear(hidden_size, hidden_size)
        nn.init.zeros_(self.linear.weight)
        nn.init.constant_(self.linear.bias, bias_init)

    def forward(self, task_embeddings: Tensor) -> Tensor:
        """Args: task_embeddings [b, d]. Returns: gates [b, d]."""
        return torch.sigmoid(self.linear(task_embeddings))


class DynamicPromptFusion(nn.Module):
    """Pool, scheduler, gate and task embeddings: task ids in, fused prompts out.

    Args:
        prompt_length: Virtual tokens per prompt (``L``), default 20.
        hidden_size: Embedding width of the backbone (``d``).
        temperature: Scheduler softmax temperature (``tau``), default 0.9.
        gate_bias_init: Initial gate bias (see :class:`FusionGate`).
    """

    def __init__(
        self,
        *,
        prompt_length: int = DEFAULT_PROMPT_LENGTH,
        hidden_size: int,
        temperature: float = DEFAULT_TEMPERATURE,
        gate_bias_init: float = 2.0,
    ) -> None:
        super().__init__()
        self.pool = PromptPool(prompt_length=prompt_length, hidden_size=hidden_size)
        self.scheduler = Scheduler(temperature=temperature)
        self.gate = FusionGate(hidden_size=hidden_size, bias_init=gate_bias_init)
        self.register_buffer("task_embeddings", torch.zeros(0, hidden_size))  # [T, d]

    @property
    def num_tasks(self) -> int:
        return self.task_embeddings.shape[0]

    @property
    def num_prompts(self) -> int:
        return len(self.pool)

    def add_prompts(self, count: int, init: Tensor | None = None) -> list[int]:
        """Grow the pool by ``count`` prompts; existing tasks do not see them (masked)."""
        indices = self.pool.add_prompts(count, init)
        self.scheduler.add_prompts(count)
        return indices

    def add_task(
        self, task_embedding: Tensor, *, logits: Tensor | None = None, visible: Tensor | None = None
    ) -> int:
        """Register a task with its embedding [d]; returns its id (row in the scheduler)."""
        if task_embedding.shape != (self.pool.hidden_size,):
            raise ValueError(
                f"task_embedding has shape {tuple(task_embedding.shape)}, "
                f"expected ({self.pool.hidden_size},)"
            )
        embedding = task_embedding.detach().float().to(self.task_embeddings.device)
        self.task_embeddings = torch.cat([self.task_embeddings, embedding[None]], dim=0)
        return self.scheduler.add_task(logits, visible)

    def unmask(self, task_id: int, prompt_indices: list[int]) -> None:
        """Let task ``task_id`` use the given prompts (their logits start where they are)."""
        self.scheduler.mask[task_id, prompt_indices] = True

    def weights(self, task_ids: Tensor) -> Tensor:
        """Scheduling weights for ``task_ids`` [b] -> [b, K]."""
        return self.scheduler.weights(task_ids)

    def forward(self, task_ids: Tensor) -> Tensor:
        """Fused prompts for a batch whose rows may belong to different tasks.

        Args:
            task_ids: Task id of each row, [b] (long).

        Returns:
            Fused prompts, [b, L, d]. Each distinct task is fused once, then gathered.
        """
        unique, inverse = torch.unique(task_ids, return_inverse=True)  # [u], [b]
        mixed = self._mix(unique)  # [u, L, d]
        embeddings = self.task_embeddings[unique]  # [u, d]
        gate = self.gate(embeddings)[:, None, :]  # [u, 1, d]
        fused = gate * mixed + (1 - gate) * embeddings[:, None, :]  # [u, L, d]
        return fused[inverse]  # [b, L, d]

    def _mix(self, tasks: Tensor) -> Tensor:
        """Mixed prompts ``sum_k w_k pool[k]`` for distinct task ids [u] -> [u, L, d].

        Tasks are grouped by the prompts they can see, and each group is mixed over its visible
        prompts only. Masked prompts are therefore left out of the arithmetic entirely (not added
        with weight zero), which is what keeps an old task's prompt identical to the bit after
        the pool grows.
        """
        pool = self.pool.stacked()  # [K, L, d]
        logits = self.scheduler.logits[tasks] / self.scheduler.temperature  # [u, K]
        patterns, group = torch.unique(self.scheduler.mask[tasks], dim=0, return_inverse=True)
        if len(patterns) == 1 and bool(patterns[0].all()):
            return torch.einsum("uk,kld->uld", torch.softmax(logits, dim=-1), pool)
        mixed = pool.new_empty(len(tasks), *pool.shape[1:])  # [u, L, d]
        for index, pattern in enumerate(patterns):
            rows = (group == index).nonzero(as_tuple=True)[0]
            columns = pattern.nonzero(as_tuple=True)[0]
            weights = torch.softmax(logits[rows][:, columns], dim=-1)  # [g, k]
            mixed[rows] = torch.einsum("gk,kld->gld", weights, pool[columns])
        return mixed

    def fused_prompts(self) -> Tensor:
        """Every task's fused prompt, [T, L, d], without gradients."""
        with torch.no_grad():
            return self(torch.arange(self.num_tasks, device=self.task_embeddings.device))

    def state_for_storage(self) -> dict[str, Tensor]:
        """A flat, CPU, float32 dict of every tensor needed to rebuild the module."""
        state = {
            "pool": self.pool.stacked().detach(),
            "pool_frozen": torch.tensor(self.pool.frozen(), dtype=torch.bool),
            "scheduler_logits": self.scheduler.logits.detach(),
            "scheduler_mask": self.scheduler.mask,
            "gate_weight": self.gate.linear.weight.detach(),
            "gate_bias": self.gate.linear.bias.detach(),
            "task_embeddings": self.task_embeddings,
            "temperature": torch.tensor([self.scheduler.temperature]),
        }
        return {name: tensor.detach().cpu().contiguous().clone() for name, tensor in state.items()}

    @classmethod
    def from_storage(cls, state: dict[str, Tensor]) -> DynamicPromptFusion:
        """Rebuild a module saved with :meth:`state_for_storage`."""
        pool = state["pool"]  # [K, L, d]
        module = cls(
            prompt_length=pool.shape[1],
            hidden_size=pool.shape[2],
            temperature=float(state["temperature"][0]),
        )
        module.pool.add_prompts(pool.shape[0], pool)
        module.pool.freeze([i for i, f in enumerate(state["pool_frozen"].tolist()) if f])
        logits, mask = state["scheduler_logits"], state["scheduler_mask"]
        module.scheduler._replace(logits.clone(), mask.clone())
        with torch.no_grad():
            module.gate.linear.weight.copy_(state["gate_weight"])
            module.gate.linear.bias.copy_(state["gate_bias"])
        module.task_embeddings = state["task_embeddings"].clone()
        return module
