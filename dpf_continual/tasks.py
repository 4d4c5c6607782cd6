"""The add-task service: resolve a task's data, embed it with the frozen backbone, register it.

Adding a task trains nothing. It reads and validates the data (every reader behind
:func:`load_task`), computes the task embedding ``e_t`` (the mean of the backbone's mean-pooled
states of up to N training inputs, no prompt) and registers the task as ``pending`` at the end of
the stream. Registering the same name with the same data again is a no-op; different data under
a registered name is an error unless ``replace`` is set.

Notation: ``n`` embedded examples, ``d`` the backbone's width.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dpf_continual.data import KINDS, METRICS, Choices, Task, TaskSpec, resolve_task
from dpf_continual.errors import (
    BackboneMismatchError,
    ConfigError,
    DuplicateTaskError,
    TaskNotFoundError,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

DEFAULT_MAX_EMBED_EXAMPLES = 64


class TextEmbedder(Protocol):
    """What the service needs from a backbone (any object with these two members will do)."""

    hidden_size: int

    def embed_texts(self, texts: list[str], batch_size: int = 32) -> torch.Tensor: ...


def load_task(
    name: str,
    *,
    data: str | None = None,
    k: int = 16,
    seed: int = 100,
    kind: str | None = None,
    metric: str | None = None,
    domain: str | None = None,
    input_column: str | Sequence[str] | None = None,
    output_column: str | None = None,
    options: str | Sequence[str] | None = None,
) -> Task:
    """Resolve a task name and optional data path to a validated :class:`Task`.

    Args:
        name: The task's slug; without ``data``, a CrossFit task name (looked up under
            ``DPF_CROSSFIT_ROOT``, then on the hub when online).
        data: A file or folder in any supported layout (see :mod:`dpf_continual.data.resolve`).
        k: Shots of the CrossFit/MetaICL files to read (``{task}_{k}_{seed}_*``) or to sample.
        seed: Seed of those files, of hub sampling and of carving a missing dev split.
        kind: ``choice`` or ``generation``; inferred when ``None``.
        metric: ``accuracy``, ``f1`` or ``em``; ``accuracy`` for choice, ``em`` for generation.
        domain: A word for reports; from the built-in recipe or ``general``.
        input_column: Input column(s) of a table; comma-separated or a sequence.
        output_column: Output column of a table.
        options: The label set of a choice task; comma-separated or a sequence.

    Raises:
        ConfigError: A setting is out of range.
        TaskSourceNotFoundError: No data found for the name or path.
        DataFormatError: The data is malformed (names the file and line).
    """
    if kind is not None and kind not in KINDS:
        raise ConfigError(f"kind {kind!r}: expected one of {KINDS}")
    if metric is not None and metric not in METRICS:
        raise ConfigError(f"metric {metric!r}: expected one of {METRICS}")
    if k < 1:
        raise ConfigError(f"k={k}: expected at least 1 example per split")
    fixed = _as_list(options, what="options")
    if kind == "generation" and fixed:
        raise ConfigError(f"options {fixed} given for a generation task: expected none")
    choices = Choices(kind=kind, metric=metric, domain=domain, options=tuple(fixed) or None)
    return resolve_task(
        name,
        data=data,
        k=k,
        seed=seed,
        choices=choices,
        input_columns=tuple(_as_list(input_column, what="input columns")),
        output_column=output_column,
    )


def task_embedding(
    task: Task, backbone: TextEmbedder, *, max_examples: int = DEFAULT_MAX_EMBED_EXAMPLES
) -> torch.Tensor:
    """The task embedding ``e_t`` [d]: mean of the pooled states of the first N train inputs.

    Raises:
        ConfigError: ``max_examples`` is below 1.
        BackboneMismatchError: The backbone returned something other than finite ``[n, d]``.
    """
    if max_examples < 1:
        raise ConfigError(f"max_embed_examples={max_examples}: expected at least 1")
    texts = [example.input for example in task.splits["train"][:max_examples]]
    states = backbone.embed_texts(texts)  # [n, d]
    expected = [len(texts), backbone.hidden_size]
    if list(states.shape) != expected:
        raise BackboneMismatchError(
            f"the backbone embedded {len(texts)} inputs of task {task.name!r} as "
            f"{list(states.shape)}, expected {expected}"
        )
    embedding = states.float().mean(dim=0)  # [d]
    if not bool(embedding.isfinite().all()):
        raise BackboneMismatchError(f"the embedding of task {task.name!r} is not finite")
    return embedding


def registered_unchanged(registry: Any, task: Task, *, replace: bool = False) -> Any | None:
    """The registered task's info when ``task`` is registered with the same data, else ``None``.

    Lets a caller skip loading the backbone for a no-op.

    Raises:
        DuplicateTaskError: The name is registered with other data and ``replace`` is false.
    """
    try:
        info = registry.task(task.name)
    except TaskNotFoundError:
        return None
    checksum = task.checksum()
    if info.data_checksum == checksum:
        return info
    if not replace:
        raise DuplicateTaskError(
            f"task {task.name!r} is already registered with other data (checksum "
            f"{info.data_checksum[:12]}, new {checksum[:12]}); pass --replace to replace it"
        )
    return None


def register_task(
    registry: Any,
    task: Task,
    backbone: TextEmbedder,
    *,
    replace: bool = False,
    max_embed_examples: int = DEFAULT_MAX_EMBED_EXAMPLES,
) -> Any:
    """Validate ``task``, embed it and register it as pending; returns the ``AddTaskResult``.

    Args:
        registry: An open :class:`dpf_continual.registry.Registry`.
        task: The task to add.
        backbone: The frozen backbone (anything with ``embed_texts`` and ``hidden_size``).
        replace: Replace a task registered under the same name with other data.
        max_embed_examples: Most train inputs averaged into the task embedding.

    Raises:
        DataFormatError: The task breaks its own rules.
        DuplicateTaskError: The name is taken by other data and ``replace`` is false.
        BackboneMismatchError: The backbone's width is not the registry's.
    """
    task.validate()
    registered_unchanged(registry, task, replace=replace)  # fail before the costly embedding
    width = registry.settings.hidden_size
    if backbone.hidden_size != width:
        raise BackboneMismatchError(
            f"the backbone's width is {backbone.hidden_size} but the registry's is {width} "
            f"(backbone {registry.settings.backbone!r}); use the registry's backbone"
        )
    embedding = task_embedding(task, backbone, max_examples=max_embed_examples)
    spec = task.spec
    result = registry.add_task(
        name=spec.name,
        kind=spec.kind,
        metric=spec.metric,
        domain=spec.domain,
        source=spec.source,
        label_names=list(spec.label_names),
        data_checksum=task.checksum(),
        embedding=embedding,
        data=task.to_data(),
        replace=replace,
    )
    logger.info("task %s: %s (%s)", spec.name, result.status, task.split_sizes())
    return result


def register_tasks(
    registry: Any, tasks: Sequence[Task], backbone: TextEmbedder, **kwargs: Any
) -> list[Any]:
    """Check every task first (data, name clashes), then register them in order.

    The demo stream goes through here, so a bad task stops the batch before anything is written.
    """
    for task in tasks:
        task.validate()
        registered_unchanged(registry, task, replace=kwargs.get("replace", False))
    return [register_task(registry, task, backbone, **kwargs) for task in tasks]


def registered_task(registry: Any, name: str) -> Task:
    """Rebuild a registered task (spec and splits) from the registry, e.g. for training.

    Raises:
        TaskNotFoundError: No task of that name is registered.
    """
    info = registry.task(name)
    spec = TaskSpec(
        name=info.name,
        kind=info.kind,
        metric=info.metric,
        domain=info.domain,
        source=info.source,
        label_names=tuple(info.label_names),
    )
    return Task.from_data(spec, registry.task_data(name))


def _as_list(value: str | Sequence[str] | None, *, what: str) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [item.strip() for item in items]
    if any(not item for item in items):
        raise ConfigError(f"{what} {value!r} contain an empty name: expected 'a,b,c'")
    if len(set(items)) != len(items):
        raise ConfigError(f"{what} {value!r} repeat a name: expected distinct names")
    return items
