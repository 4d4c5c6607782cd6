"""Prediction with a trained registry: rows of many tasks scored together, and task routing.

Notation for tensor shapes:
    T: trained tasks   L: virtual tokens per prompt   d: backbone width
    b: rows in a batch   O: options per row   n: inputs to route

A :class:`Predictor` loads the registry's frozen backbone once, and the served prompt of every
trained task into one tensor ``[T, L, d]``. No fusion module is needed: a served prompt is a
fixed tensor. A batch whose rows belong to different tasks gathers each row's prompt from that
tensor and goes through the backbone in a single forward pass::

    prompts = served[task_rows]                        # [b, L, d]
    scores = backbone.option_scores(prompts, batch)    # [b, O]

A row that names no task is *routed*: its input is embedded by the bare backbone (no prompt, as
task embeddings are made) and sent to the trained task whose embedding ``e_t`` is nearest by
cosine similarity. The chosen task is reported with the prediction.

Rows are dicts ``{"task"?, "input", "options"?}``. Options default to the task's label set. A bad
row (unknown task, missing input...) gives a result with an ``error`` and the other rows are
still predicted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import BatchEncoding

from dpf_continual.backbones import Backbone, Item, load_backbone
from dpf_continual.errors import (
    BackboneMismatchError,
    ConfigError,
    DataFormatError,
    DPFError,
    TaskNotFoundError,
)
from dpf_continual.naming import close_matches

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class _Request:
    """A valid row, ready to score."""

    position: int  # index in the caller's list
    input: str
    task: str
    options: tuple[str, ...]
    routed: bool
    similarity: float | None


class TaskRouter:
    """Sends each input to the task whose embedding is nearest by cosine similarity.

    Args:
        names: Task names, in the order of the rows of ``embeddings``.
        embeddings: The tasks' embeddings ``e_t``, [T, d].

    Raises:
        ValueError: No names, or ``embeddings`` is not ``[len(names), d]``.
    """

    def __init__(self, *, names: Sequence[str], embeddings: Tensor) -> None:
        if not names or embeddings.ndim != 2 or embeddings.shape[0] != len(names):
            raise ValueError(
                f"embeddings of shape {tuple(embeddings.shape)} do not fit {len(names)} task "
                "names: expected [T, d] with T >= 1"
            )
        self.names = list(names)
        self.unit = F.normalize(embeddings.float(), dim=-1)  # [T, d]

    @classmethod
    def from_registry(cls, registry: Any, names: Sequence[str]) -> TaskRouter:
        """A router over the registered tasks ``names``, with their stored embeddings."""
        embeddings = torch.stack([registry.task_embedding(name) for name in names])  # [T, d]
        return cls(names=names, embeddings=embeddings)

    def route(self, states: Tensor) -> tuple[list[str], Tensor]:
        """The nearest task of each embedded input.

        Args:
            states: Pooled states of the inputs, [n, d].

        Returns:
            The task names (n of them) and their cosine similarities, [n].
        """
        similarity = F.normalize(states.float(), dim=-1) @ self.unit.T  # [n, T]
        best, index = similarity.max(dim=1)  # [n], [n]
        return [self.names[i] for i in index.tolist()], best


class Predictor:
    """Scores rows of any trained tasks with their served prompts, many tasks per batch.

    Args:
        registry: An open :class:`~dpf_continual.registry.Registry`.
        backbone: An already loaded backbone; the registry's is loaded when ``None``.
        device: Where to load the backbone when it is loaded here (``auto``: CUDA if present).
        batch_size: Rows per forward pass.

    Attributes:
        tasks: The trained tasks' :class:`~dpf_continual.registry.TaskInfo`, by name.
        task_index: Row of each trained task in :attr:`prompts`.
        prompts: The served prompt of every trained task, [T, L, d] on the backbone's device.
        router: Routes rows that name no task (a :class:`TaskRouter` over :attr:`tasks`).

    Raises:
        ConfigError: ``batch_size`` is below 1, or no task of the registry is trained yet.
        BackboneMismatchError: ``backbone`` does not have the registry's width.

    Example::

        predictor = Predictor(Registry.open("sqlite:///./dpf-registry/registry.db"))
        predictor.predict([{"task": "ag_news", "input": "Stocks fell on Monday"},
                           {"input": "Is the museum open on Sundays?"}])  # routed
    """

    def __init__(
        self,
        registry: Any,
        *,
        backbone: Backbone | None = None,
        device: str = "auto",
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        infos = registry.tasks()
        trained = [info for info in infos if info.served_version is not None]
        if not trained:
            raise ConfigError(
                f"the registry at {registry.url} has no trained task to predict with "
                "(run dpf-cl train-stream first)"
            )
        if backbone is None:
            backbone = load_backbone(registry.settings.backbone, device=device)
        if backbone.hidden_size != registry.settings.hidden_size:
            raise BackboneMismatchError(
                f"backbone {backbone.name!r} has width {backbone.hidden_size}, but the registry "
                f"holds prompts of width {registry.settings.hidden_size}"
            )
        self.backbone = backbone
        self.batch_size = batch_size
        self.url = registry.url
        self._registered = {info.name: info for info in infos}
        self.tasks = {info.name: info for info in trained}
        self.task_index = {name: row for row, name in enumerate(self.tasks)}  # row in prompts

        # Served prompts are fixed tensors: stack them once, gather rows per batch.
        prompts = [registry.prompt(name, "served") for name in self.tasks]
        self.prompts = torch.stack(prompts).to(backbone.device)  # [T, L, d]
        self.router = TaskRouter.from_registry(registry, list(self.tasks))
        logger.info("predictor ready: %d trained tasks on %s", len(self.tasks), backbone.name)

    def __repr__(self) -> str:
        return f"Predictor({self.url!r}, tasks={len(self.tasks)}, backbone={self.backbone.name!r})"

    def require_task(self, name: str) -> None:
        """Check that ``name`` is a trained task.

        Raises:
            TaskNotFoundError: No task of that name is registered (close names suggested).
            ConfigError: The task is registered but not trained yet.
        """
        if name in self.tasks:
            return
        if name in self._registered:
            raise untrained_error(name)
        names = list(self._registered)
        raise TaskNotFoundError(f"task {name!r} is not registered{close_matches(name, names)}")

    def route(self, texts: Sequence[str]) -> tuple[list[str], Tensor]:
        """The nearest trained task of each text and its cosine similarity, [n]."""
        states = self.backbone.embed_texts(list(texts), batch_size=self.batch_size)  # [n, d]
        return self.router.route(states)

    def predict(
        self, rows: Sequence[Any], *, lines: Sequence[int] | None = None
    ) -> list[dict[str, Any]]:
        """Predict every row; rows may belong to different tasks.

        Args:
            rows: Dicts ``{"task"?, "input", "options"?}``. Without ``task`` a row is routed.
            lines: The line number of each row in the caller's file (default 1, 2, 3...).

        Returns:
            One dict per row, in order: ``line``, ``task``, ``routed`` (``similarity`` when
            routed), then ``prediction`` and ``scores`` (option -> score), or ``error``.
        """
        lines = list(range(1, len(rows) + 1)) if lines is None else list(lines)
        if len(lines) != len(rows):
            raise ValueError(f"got {len(lines)} line numbers for {len(rows)} rows")
        results: list[dict[str, Any] | None] = [None] * len(rows)
        requests = self._requests(rows, lines, results)  # bad rows are filled in already
        for request in requests:
            head = {"line": lines[request.position], "task": request.task, "routed": request.routed}
            if request.routed:
                head["similarity"] = request.similarity
            results[request.position] = head
        self._score_all(requests, results)
        return results  # type: ignore[return-value]

    # -- rows to requests ----------------------------------------------------------------------

    def _requests(
        self, rows: Sequence[Any], lines: list[int], results: list[dict[str, Any] | None]
    ) -> list[_Request]:
        """Validate rows and route the ones without a task; bad rows go straight to results."""
        parsed: list[tuple[int, str | None, str, tuple[str, ...] | None]] = []
        for position, row in enumerate(rows):
            try:
                parsed.append((position, *self._parse(row)))
            except DPFError as error:
                task = row.get("task") if isinstance(row, dict) else None
                results[position] = _error(lines[position], task, False, error)

        # Rows without a task go to their nearest trained task, all routed in one pass.
        unrouted = [(position, text) for position, task, text, _ in parsed if task is None]
        routed: dict[int, tuple[str, float]] = {}
        if unrouted:
            names, similarity = self.route([text for _, text in unrouted])
            positions = [position for position, _ in unrouted]
            routed = dict(zip(positions, zip(names, similarity.tolist(), strict=True), strict=True))

        requests = []
        for position, task, text, options in parsed:
            name, similarity = (task, None) if task is not None else routed[position]
            try:
                chosen = options or self._label_set(name)
            except DPFError as error:
                results[position] = _error(lines[position], name, task is None, error)
                continue
            requests.append(_Request(position, text, name, chosen, task is None, similarity))
        return requests

    def _parse(self, row: Any) -> tuple[str | None, str, tuple[str, ...] | None]:
        """(task or None, input, options or None) of one row.

        Raises:
            DataFormatError: The row is not an object, or a field is missing or malformed.
            TaskNotFoundError, ConfigError: The task is unknown or not trained.
        """
        if not isinstance(row, dict):
            raise DataFormatError(
                f'expected an object {{"task"?, "input", "options"?}}, got {type(row).__name__}'
            )
        text = row.get("input")
        if not isinstance(text, str) or not text.strip():
            got = "missing" if text is None else f"{text!r}"
            raise DataFormatError(f"'input' is {got}: expected a non-empty string")
        task = row.get("task")
        if task is not None:
            if not isinstance(task, str):
                raise DataFormatError(f"'task' is {task!r}: expected a task name")
            self.require_task(task)
        options = row.get("options")
        if options is not None:
            options = _check_options(options)
        return task, text, options

    def _label_set(self, name: str) -> tuple[str, ...]:
        labels = tuple(self.tasks[name].label_names)
        if not labels:
            raise DataFormatError(
                f"task {name!r} has no fixed label set (its options vary per example): "
                "give 'options' in the row"
            )
        return labels

    # -- scoring -------------------------------------------------------------------------------

    def _score_all(self, requests: list[_Request], results: list[dict[str, Any] | None]) -> None:
        # Similar lengths share a batch, so little of each forward pass is padding.
        ordered = sorted(requests, key=lambda request: len(request.input))
        for start in range(0, len(ordered), self.batch_size):
            chunk = ordered[start : start + self.batch_size]
            scores = self.score(chunk)  # [b, O]
            for request, row in zip(chunk, scores.tolist(), strict=True):
                values = row[: len(request.options)]
                best = max(range(len(values)), key=values.__getitem__)
                result = results[request.position]
                result["prediction"] = request.options[best]
                result["scores"] = dict(zip(request.options, values, strict=True))

    def score(self, requests: Sequence[_Request]) -> Tensor:
        """Option scores of one batch of requests (any mix of tasks), [b, O] on the CPU."""
        items = [
            Item(self.task_index[request.task], request.input, "", request.options)
            for request in requests
        ]
        return self.score_batch(self.backbone.collate(items))

    @torch.no_grad()
    def score_batch(self, batch: BatchEncoding) -> Tensor:
        """Option scores of a collated batch, [b, O] on the CPU: one forward pass.

        Args:
            batch: From ``backbone.collate``; its ``task_ids`` are rows of :attr:`prompts`
                (see :attr:`task_index`).
        """
        batch = batch.to(self.backbone.device)
        prompts = self.prompts[batch["task_ids"]]  # [b, L, d]
        return self.backbone.option_scores(prompts, batch).float().cpu()


def untrained_error(name: str) -> ConfigError:
    """The error for a registered task that has no served prompt yet."""
    return ConfigError(
        f"task {name!r} is registered but not trained yet, so it has no prompt to serve "
        "(run dpf-cl train-stream)"
    )


def _check_options(options: Any) -> tuple[str, ...]:
    ok = isinstance(options, list) and options
    ok = ok and all(isinstance(option, str) and option.strip() for option in options)
    if not ok:
        raise DataFormatError(
            f"'options' is {options!r}: expected a non-empty list of non-empty strings"
        )
    if len(set(options)) != len(options):
        raise DataFormatError(f"'options' {options!r} repeat a value: expected distinct options")
    return tuple(options)


def _error(line: int, task: Any, routed: bool, error: Exception) -> dict[str, Any]:
    return {
        "line": line,
        "task": task if isinstance(task, str) else None,
        "routed": routed,
        "error": str(error),
    }
