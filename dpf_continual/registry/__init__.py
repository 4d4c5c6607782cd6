"""The task registry: every task, pool version and prompt, in SQLite or any SQLAlchemy database.

Use :class:`Registry` (``Registry.open(url)``); the records it returns are plain dataclasses.
Importing this package does not import torch: tensors are decoded only when asked for.
"""

from dpf_continual.registry.records import (
    DEFAULT_BACKBONE,
    DEFAULT_HIDDEN_SIZE,
    DEFAULT_PROMPT_LENGTH,
    DEFAULT_TEMPERATURE,
    AddTaskResult,
    PromptArtifact,
    RegistrySettings,
    RunInfo,
    TaskInfo,
    TaskPromptRecord,
    VersionInfo,
)
from dpf_continual.registry.registry import Registry
from dpf_continual.registry.store import RunNotFoundError

__all__ = [
    "DEFAULT_BACKBONE",
    "DEFAULT_HIDDEN_SIZE",
    "DEFAULT_PROMPT_LENGTH",
    "DEFAULT_TEMPERATURE",
    "AddTaskResult",
    "PromptArtifact",
    "Registry",
    "RegistrySettings",
    "RunInfo",
    "RunNotFoundError",
    "TaskInfo",
    "TaskPromptRecord",
    "VersionInfo",
]
