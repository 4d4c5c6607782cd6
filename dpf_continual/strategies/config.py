"""Settings of a training run, validated when they are made."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import Enum

from dpf_continual.errors import ConfigError


class StrategyName(str, Enum):
    """Which continual-learning method trains the stream."""

    DPF = "dpf"  # Dynamic Prompt Fusion: growing pool, scheduler, gate, replay, loss weights
    NAIVE = "naive"  # one shared prompt, trained task after task
    REPLAY = "replay"  # one shared prompt plus a replay buffer
    EWC = "ewc"  # one shared prompt plus elastic weight consolidation
    LWF = "lwf"  # one shared prompt plus learning without forgetting
    JOINT = "joint"  # the fusion module trained on every task at once (not continual)
    SEPARATE = "separate"  # one independent prompt per task, nothing shared


class ReplayPolicy(str, Enum):
    """How the replay buffer chooses what to keep (Avalanche storage policies)."""

    EXPERIENCE_BALANCED = "experience-balanced"
    RESERVOIR = "reservoir"


class OldPrompts(str, Enum):
    """What happens to the prompts of earlier tasks while a new task trains."""

    FROZEN = "frozen"
    REDUCED_LR = "reduced-lr"


@dataclass
class TrainConfig:
    """Everything that decides how a stream is trained.

    Attributes:
        strategy: The method (see :class:`StrategyName`).
        epochs: Passes over each task's data (a pass includes replayed examples).
        max_steps: If set, stop each task after this many optimiser steps (wins over epochs).
        batch_size: Examples per training step.
        eval_batch_size: Examples per evaluation step.
        lr: Learning rate of the prompts, scheduler and gate (AdamW).
        replay_size: Total examples kept in the replay buffer (0 turns replay off).
        replay_policy: Storage policy of the buffer.
        loss_weighting: ``equal``, ``uncertainty``, ``gradnorm`` or ``dwa``.
        temperature: Scheduler softmax temperature.
        prompts_per_task: Prompts added to the pool per new task (``m``).
        max_prompts: No more prompts are added once the pool has this many (0 = no cap).
        old_prompts: ``frozen`` or ``reduced-lr`` for prompts of earlier tasks.
        old_prompt_lr_scale: Learning-rate factor for old prompts when ``reduced-lr``.
        serve_tolerance: Points (0-100) a task's dev score may drop before its served version
            stops moving forward.
        ewc_lambda: Strength of the EWC penalty.
        lwf_alpha: Weight of the LwF distillation term; ``lwf_temperature`` its temperature.
        seed: Seed of every random choice (data order, buffer, initialisation).
        device: ``auto``, ``cpu``, ``cuda``...
        max_length: Longest input in tokens.
        sequences_per_pass: Most (row, option) sequences a generative backbone runs through the
            model at once; larger batches are split and recomputed in the backward pass, so
            memory stays flat (lower it when a task with many options runs out of memory).
    """

    strategy: StrategyName = StrategyName.DPF
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 16
    eval_batch_size: int = 64
    lr: float = 0.03
    replay_size: int = 64
    replay_policy: ReplayPolicy = ReplayPolicy.EXPERIENCE_BALANCED
    loss_weighting: str = "uncertainty"
    temperature: float = 0.9
    prompts_per_task: int = 2
    max_prompts: int = 0
    old_prompts: OldPrompts = OldPrompts.FROZEN
    old_prompt_lr_scale: float = 0.1
    serve_tolerance: float = 0.0
    ewc_lambda: float = 100.0
    lwf_alpha: float = 1.0
    lwf_temperature: float = 2.0
    seed: int = 0
    device: str = "auto"
    max_length: int = 128
    sequences_per_pass: int = 64

    def __post_init__(self) -> None:
        self.strategy = _enum(StrategyName, self.strategy, "strategy")
        self.replay_policy = _enum(ReplayPolicy, self.replay_policy, "replay_policy")
        self.old_prompts = _enum(OldPrompts, self.old_prompts, "old_prompts")
        positive = ("epochs", "batch_size", "eval_batch_size", "prompts_per_task", "max_length",
                    "sequences_per_pass")  # fmt: skip
        for name in positive:
            _positive_int(name, getattr(self, name))
        if self.max_steps is not None:
            _positive_int("max_steps", self.max_steps)
        for name in ("replay_size", "max_prompts", "seed"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {getattr(self, name)!r}")
        for name in ("lr", "temperature", "old_prompt_lr_scale", "lwf_temperature"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive finite number, got {value!r}")
        if not 0 <= self.serve_tolerance <= 100:
            raise ConfigError(
                f"serve_tolerance must be between 0 and 100 points, got {self.serve_tolerance!r}"
            )
        allowed = ("equal", "uncertainty", "gradnorm", "dwa")
        if self.loss_weighting not in allowed:
            raise ConfigError(
                f"loss_weighting must be one of {', '.join(allowed)}, got {self.loss_weighting!r}"
            )

    def to_dict(self) -> dict:
        """Plain JSON-ready values (enums as strings)."""
        return {k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(self).items()}


def _enum(cls: type[Enum], value: object, name: str) -> Enum:
    try:
        return cls(value)
    except ValueError:
        allowed = ", ".join(member.value for member in cls)
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}") from None


def _positive_int(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
