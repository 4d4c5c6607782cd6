"""Plain records the registry hands out: settings, tasks, versions, prompts and runs.

They are frozen snapshots of rows, detached from any database session, so callers can keep them
as long as they like. Scores everywhere in the registry are fractions in ``[0, 1]`` (``0.875``
means 87.5 points).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from dpf_continual.errors import ConfigError
from dpf_continual.registry.artifacts import extract_tensor, read_floats, tensor_shape

if TYPE_CHECKING:
    import torch

DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_HIDDEN_SIZE = 384
DEFAULT_PROMPT_LENGTH = 20
DEFAULT_TEMPERATURE = 0.9

TASK_STATUSES = ("pending", "trained")
RUN_STATUSES = ("running", "completed", "interrupted", "failed")
MATRIX_KINDS = ("live", "served")


@dataclass(frozen=True)
class RegistrySettings:
    """What a registry is bound to: one backbone, its width ``d``, the prompt length ``L``, ``τ``.

    Args:
        backbone: Hugging Face name or local path of the frozen backbone.
        hidden_size: The backbone's embedding width ``d``.
        prompt_length: Virtual tokens per prompt ``L``.
        temperature: Softmax temperature ``τ`` of the scheduler.

    Raises:
        ConfigError: A value is out of range.
    """

    backbone: str = DEFAULT_BACKBONE
    hidden_size: int = DEFAULT_HIDDEN_SIZE
    prompt_length: int = DEFAULT_PROMPT_LENGTH
    temperature: float = DEFAULT_TEMPERATURE

    def __post_init__(self) -> None:
        if not self.backbone or not isinstance(self.backbone, str):
            raise ConfigError(f"backbone {self.backbone!r} is empty: expected a name or a path")
        if not isinstance(self.hidden_size, int) or self.hidden_size < 1:
            raise ConfigError(f"hidden_size {self.hidden_size!r} must be a positive integer")
        if not isinstance(self.prompt_length, int) or self.prompt_length < 1:
            raise ConfigError(f"prompt_length {self.prompt_length!r} must be a positive integer")
        if not self.temperature > 0:
            raise ConfigError(f"temperature {self.temperature!r} must be greater than 0")

    def differences(self, other: RegistrySettings) -> list[str]:
        """Describe each setting where ``other`` differs, as ``"name: mine != theirs"``."""
        names = ("backbone", "hidden_size", "prompt_length", "temperature")
        return [
            f"{name}: {getattr(self, name)!r} != {getattr(other, name)!r}"
            for name in names
            if getattr(self, name) != getattr(other, name)
        ]


@dataclass(frozen=True)
class TaskInfo:
    """One registered task, as listed by :meth:`Registry.tasks`.

    ``position`` is the task's place in the stream (the first task registered is 1);
    ``served_version`` is the pool version whose prompt users get, ``latest_version`` the newest
    version holding a prompt for this task (both ``None`` before the task is trained).
    """

    name: str
    kind: str
    metric: str
    domain: str
    source: str
    label_names: list[str]
    data_checksum: str
    position: int
    status: str
    split_sizes: dict[str, int]
    served_version: int | None
    latest_version: int | None
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class AddTaskResult:
    """What :meth:`Registry.add_task` did: ``"added"``, ``"unchanged"`` or ``"replaced"``."""

    status: Literal["added", "unchanged", "replaced"]
    task: TaskInfo


@dataclass(frozen=True)
class VersionInfo:
    """One pool version: a snapshot of the trainable state and of every task's fused prompt.

    ``num_prompts`` is ``K``, ``prompt_length`` is ``L``, ``hidden_size`` is ``d``;
    ``content_hash`` is the SHA-256 of the stored state; ``tasks`` lists the tasks holding a
    prompt in this version, in stream order.
    """

    number: int
    parent: int | None
    backbone: str
    num_prompts: int
    prompt_length: int
    hidden_size: int
    temperature: float
    content_hash: str
    reason: str
    run_id: int | None
    trained_task: str | None
    created_at: datetime
    tasks: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {**self.__dict__, "created_at": self.created_at.isoformat()}


@dataclass
class TaskPromptRecord:
    """One task's prompt under one pool version.

    Args:
        prompt: The fused prompt, ``[L, d]``.
        weights: The task's scheduling weights over the pool, ``[K]``.
        dev_score: Score on the dev split, a fraction in ``[0, 1]`` (or ``None``).
        test_score: Score on the test split, a fraction in ``[0, 1]`` (or ``None``).
        version: The pool version it belongs to; ``None`` when passed in for writing.
    """

    prompt: torch.Tensor
    weights: torch.Tensor
    dev_score: float | None = None
    test_score: float | None = None
    version: int | None = None


@dataclass(frozen=True)
class PromptArtifact:
    """A stored prompt as safetensors bytes (tensor ``prompt``, ``[L, d]`` float32).

    Reading its shape, values or a file to hand out needs no torch.
    """

    task: str
    version: int
    data: bytes

    @property
    def shape(self) -> list[int]:
        """``[L, d]``."""
        return tensor_shape(self.data, "prompt")

    def values(self) -> list[list[float]]:
        """The prompt as ``L`` rows of ``d`` floats."""
        shape, flat = read_floats(self.data, "prompt")
        width = shape[-1]
        return [flat[start : start + width] for start in range(0, len(flat), width)]

    def statistics(self) -> dict[str, float]:
        """Mean, standard deviation, minimum and maximum over all ``L * d`` values."""
        _, flat = read_floats(self.data, "prompt")
        mean = sum(flat) / len(flat)
        spread = math.sqrt(sum((value - mean) ** 2 for value in flat) / len(flat))
        return {"mean": mean, "std": spread, "min": min(flat), "max": max(flat)}

    def to_file(self, *, backbone: str, name: str = "prompt") -> bytes:
        """A standalone safetensors file: tensor ``name`` and metadata (task, version, backbone,
        shape)."""
        metadata = {
            "task": self.task,
            "version": str(self.version),
            "backbone": backbone,
            "shape": json.dumps(self.shape),
        }
        return extract_tensor(self.data, "prompt", rename=name, metadata=metadata)


@dataclass(frozen=True)
class RunInfo:
    """One training run: how it was started and how it ended."""

    id: int
    strategy: str
    config: dict[str, Any]
    status: str
    seed: int
    world_size: int
    host: str
    started_at: datetime
    finished_at: datetime | None
    timings: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        finished = self.finished_at.isoformat() if self.finished_at else None
        return {**self.__dict__, "started_at": self.started_at.isoformat(), "finished_at": finished}
