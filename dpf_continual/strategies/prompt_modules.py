"""Trainable prompt modules: the fusion module and the baselines' simpler prompts.

Every module maps task ids [b] to prompts [b, L, d] and can be saved to and rebuilt from a flat
dict of tensors, which the registry stores as one safetensors artifact per pool version.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dpf_continual.fusion import DynamicPromptFusion


class SharedPrompt(nn.Module):
    """One prompt used by every task (the ``naive``, ``replay``, ``ewc`` and ``lwf`` baselines)."""

    def __init__(self, *, prompt_length: int, hidden_size: int) -> None:
        super().__init__()
        self.prompt = nn.Parameter(torch.zeros(prompt_length, hidden_size))  # [L, d]
        self.register_buffer("task_count", torch.zeros(1, dtype=torch.long))

    @property
    def num_tasks(self) -> int:
        return int(self.task_count.item())

    def add_task(self, init: Tensor | None = None) -> int:
        """Count a new task; the first one sets the prompt from ``init`` [L, d]."""
        if self.num_tasks == 0 and init is not None:
            self.prompt.data.copy_(init)
        self.task_count += 1
        return self.num_tasks - 1

    def forward(self, task_ids: Tensor) -> Tensor:
        """Args: task_ids [b]. Returns: the shared prompt repeated, [b, L, d]."""
        return self.prompt.expand(len(task_ids), -1, -1)

    def weights(self, task_ids: Tensor) -> Tensor:
        """A single prompt: weight 1 for every task, [b, 1]."""
        return torch.ones(len(task_ids), 1)

    def fused_prompts(self) -> Tensor:
        """[T, L, d] without gradients."""
        return self.prompt.detach().expand(self.num_tasks, -1, -1).clone()

    def state_for_storage(self) -> dict[str, Tensor]:
        return {"prompt": self.prompt.detach().cpu().clone(), "task_count": self.task_count.cpu()}

    @classmethod
    def from_storage(cls, state: dict[str, Tensor]) -> SharedPrompt:
        module = cls(prompt_length=state["prompt"].shape[0], hidden_size=state["prompt"].shape[1])
        module.prompt.data.copy_(state["prompt"])
        module.task_count.copy_(state["task_count"])
        return module


class SeparatePrompts(nn.Module):
    """One independent prompt per task (the ``separate`` baseline): nothing is shared."""

    def __init__(self, *, prompt_length: int, hidden_size: int) -> None:
        super().__init__()
        self.prompt_length = prompt_length
        self.hidden_size = hidden_size
        self.prompts = nn.ParameterList()

    @property
    def num_tasks(self) -> int:
        return len(self.prompts)

    def add_task(self, init: Tensor | None = None) -> int:
        """Add a prompt for a new task, frozen tasks stay as they are."""
        shape = (self.prompt_length, self.hidden_size)
        value = torch.randn(shape) * 0.02 if init is None else init.detach().clone()
        for old in self.prompts:
            old.requires_grad_(False)
        self.prompts.append(nn.Parameter(value.float()))
        return self.num_tasks - 1

    def forward(self, task_ids: Tensor) -> Tensor:
        """Args: task_ids [b]. Returns: each row's own prompt, [b, L, d]."""
        return torch.stack(list(self.prompts))[task_ids]

    def weights(self, task_ids: Tensor) -> Tensor:
        """Each task uses only its own prompt: one-hot rows, [b, T]."""
        return torch.eye(self.num_tasks)[task_ids.cpu()]

    def fused_prompts(self) -> Tensor:
        return torch.stack([p.detach() for p in self.prompts])

    def state_for_storage(self) -> dict[str, Tensor]:
        return {"prompts": self.fused_prompts().cpu().clone()}

    @classmethod
    def from_storage(cls, state: dict[str, Tensor]) -> SeparatePrompts:
        stack = state["prompts"]  # [T, L, d]
        module = cls(prompt_length=stack.shape[1], hidden_size=stack.shape[2])
        for row in stack:
            module.add_task(row)
        return module


PromptModule = DynamicPromptFusion | SharedPrompt | SeparatePrompts


def module_from_storage(strategy: str, state: dict[str, Tensor]) -> PromptModule:
    """Rebuild the prompt module of ``strategy`` from a stored state."""
    if strategy in ("dpf", "joint"):
        return DynamicPromptFusion.from_storage(state)
    if strategy == "separate":
        return SeparatePrompts.from_storage(state)
    return SharedPrompt.from_storage(state)


def new_module(strategy: str, *, prompt_length: int, hidden_size: int, temperature: float):
    """A fresh, empty prompt module for ``strategy``."""
    if strategy in ("dpf", "joint"):
        return DynamicPromptFusion(
            prompt_length=prompt_length, hidden_size=hidden_size, temperature=temperature
        )
    if strategy == "separate":
        return SeparatePrompts(prompt_length=prompt_length, hidden_size=hidden_size)
    return SharedPrompt(prompt_length=prompt_length, hidden_size=hidden_size)


class PromptedModel(nn.Module):
    """The prompt module plus the frozen backbone: a batch in, option scores out.

    Only the prompt module is a registered submodule, so optimisers, copies (LwF keeps one) and
    saved states hold the small trainable part; the backbone is shared, never copied.
    """

    def __init__(self, prompts: PromptModule, backbone) -> None:
        super().__init__()
        self.prompts = prompts
        self._backbone = _Shared(backbone)
        self._parallel = _Shared(None)

    @property
    def backbone(self):
        return self._backbone.value

    def distribute(self) -> None:
        """Wrap the prompt module in DistributedDataParallel (call again after it grows)."""
        from torch.nn.parallel import DistributedDataParallel

        device = self.backbone.device
        self._parallel = _Shared(
            DistributedDataParallel(
                self.prompts,
                device_ids=[device] if device.type == "cuda" else None,
                find_unused_parameters=True,  # masked pool prompts get no gradient
                broadcast_buffers=False,  # buffers (masks, embeddings) are equal on all ranks
            )
        )

    def forward(self, batch) -> Tensor:
        """Args: a batch from ``backbone.collate``. Returns: option scores [b, O]."""
        prompts = self._parallel.value if self.training else None
        prompt = (prompts or self.prompts)(batch["task_ids"])  # [b, L, d]
        return self.backbone.option_scores(prompt, batch)


class _Shared:
    """Holds an object that ``copy.deepcopy`` must not duplicate."""

    def __init__(self, value) -> None:
        self.value = value

    def __deepcopy__(self, memo) -> _Shared:
        return self
