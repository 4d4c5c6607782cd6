"""Building a CrossFit task from the Hugging Face hub with a built-in recipe.

Sampling follows the MetaICL build of the gym: the hub's train split is shuffled with
``random.Random(seed)``; the first ``k`` usable rows are train and the next ``k`` are dev (``k``
in total, not per class). Test is the recipe's test split, cut to ``max_test`` rows drawn with
the same seed (original order kept) so evaluation stays quick.

Only :func:`load_hub_dataset` touches the network; :func:`task_from_hub_dataset` works on any
mapping of split name to a sequence of rows, so recipes are tested on local data.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

from dpf_continual.data.assemble import Choices, Record, assemble_task
from dpf_continual.data.recipes import HubRecipe, Row
from dpf_continual.data.task import Task
from dpf_continual.errors import TaskSourceNotFoundError

logger = logging.getLogger(__name__)

MAX_TEST = 1000
MAX_CANDIDATES = 200_000
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_status(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the hub can be used now, and why not: offline settings, then a quick connect."""
    for variable in OFFLINE_VARIABLES:
        if os.environ.get(variable, "").lower() in ("1", "true", "yes", "on"):
            return False, f"{variable} is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        return False, f"cannot reach {host} ({error.__class__.__name__})"
    return True, ""


def load_hub_dataset(recipe: HubRecipe) -> Mapping[str, Sequence[Row]]:
    """Download the recipe's dataset (all splits) with :func:`datasets.load_dataset`.

    Raises:
        TaskSourceNotFoundError: The download failed (network, unknown dataset...).
    """
    import datasets

    try:
        return datasets.load_dataset(recipe.dataset, recipe.config)
    except Exception as error:  # datasets raises many kinds; all mean "no data"
        raise TaskSourceNotFoundError(
            f"task {recipe.name!r}: loading {recipe.dataset} ({recipe.config or 'default'}) "
            f"from the hub failed: {error}"
        ) from error


def task_from_hub_dataset(
    recipe: HubRecipe,
    dataset: Mapping[str, Sequence[Row]],
    *,
    name: str | None = None,
    k: int = 16,
    seed: int = 100,
    choices: Choices = Choices(),
    max_test: int = MAX_TEST,
) -> Task:
    """Sample and linearise a task from an already loaded dataset.

    Args:
        recipe: The recipe to apply.
        dataset: Split name to rows (a :class:`datasets.DatasetDict` or a dict of lists).
        name: The task's name; the recipe's name by default.
        k: Examples in train and in dev.
        seed: Seeds the sampling.
        choices: Caller's kind, metric, domain or options (the recipe fills the rest).
        max_test: Most test examples kept.
    """
    train_rows = _rows(recipe, dataset, recipe.train_split)
    sampled = _sample(recipe, train_rows, count=2 * k, seed=seed)
    test_rows = _rows(recipe, dataset, recipe.test_split)
    picked = range(len(test_rows))
    if len(test_rows) > max_test:
        picked = sorted(random.Random(seed).sample(range(len(test_rows)), max_test))
    test = [r for i in picked if (r := _record(recipe, test_rows, i, recipe.test_split))]
    config = f"[{recipe.config}]" if recipe.config else ""
    choices = replace(
        choices, kind=choices.kind or recipe.kind, domain=choices.domain or recipe.domain
    )
    return assemble_task(
        name or recipe.name,
        {"train": sampled[:k], "dev": sampled[k:] or None, "test": test},
        source=f"hub:{recipe.dataset}{config} (k={k}, seed={seed})",
        seed=seed,
        choices=choices,
        label_order=recipe.options or None,
    )


def _rows(recipe: HubRecipe, dataset: Mapping[str, Sequence[Row]], split: str) -> Sequence[Row]:
    if split not in dataset:
        raise TaskSourceNotFoundError(
            f"task {recipe.name!r}: the hub dataset {recipe.dataset} has no split {split!r} "
            f"(it has {', '.join(dataset)})"
        )
    rows = dataset[split]
    return recipe.group(rows) if recipe.group else rows


def _sample(recipe: HubRecipe, rows: Sequence[Row], *, count: int, seed: int) -> list[Record]:
    rng = random.Random(seed)
    order = rng.sample(range(len(rows)), min(len(rows), MAX_CANDIDATES))
    sampled = []
    for index in order:
        record = _record(recipe, rows, index, recipe.train_split)
        if record is not None:
            sampled.append(record)
            if len(sampled) == count:
                break
    return sampled


def _record(recipe: HubRecipe, rows: Sequence[Row], index: int, split: str) -> Record | None:
    formatted: Any = recipe.format(rows[index])
    if formatted is None:
        return None
    text, output, options = formatted
    return Record(text, output, options, f"hub {recipe.dataset} {split} row {index}")
