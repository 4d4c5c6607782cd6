"""Turn rows read from files into a validated :class:`~dpf_continual.data.task.Task`.

Every reader yields :class:`Record` rows that remember where they came from (``file: line N``);
:func:`assemble_task` then fills in what the files leave open and checks every row, so an error
always points at the file and line to fix.

Rules shared by all layouts:

* **No dev split**: a fifth of train (at least one example) is carved out as dev, chosen with
  ``random.Random(seed)``, so the same seed always gives the same split. The source says so.
* **No test split**: dev doubles as test and the source is marked ``test=dev``; test scores of
  such a task are dev scores.
* **Kind**: the caller's choice; otherwise ``choice`` when rows carry options or the layout knows
  its label set; otherwise inferred: ``choice`` when the outputs repeat (at most 100 distinct
  values, at most half as many as rows), else ``generation``.
* **Options of a choice task**: the caller's ``options``; else the rows' own options (one fixed
  set becomes the label set, differing sets stay per example); else the layout's label order;
  else the sorted distinct outputs of all splits.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from dpf_continual.data.task import (
    DEFAULT_METRIC,
    SPLITS,
    Example,
    Task,
    TaskSpec,
    check_example,
)
from dpf_continual.errors import DataFormatError

logger = logging.getLogger(__name__)

DEV_FRACTION = 0.2
MAX_INFERRED_LABELS = 100


@dataclass(frozen=True)
class Record:
    """A row as read from a file: the example's fields and where it came from."""

    input: str
    output: str
    options: tuple[str, ...] = ()
    where: str = ""


@dataclass(frozen=True)
class Choices:
    """What the caller fixed about a task; ``None`` means "decide from the data"."""

    kind: str | None = None
    metric: str | None = None
    domain: str | None = None
    options: tuple[str, ...] | None = None


def assemble_task(
    name: str,
    splits: dict[str, list[Record]],
    *,
    source: str,
    seed: int,
    choices: Choices = Choices(),
    label_order: Sequence[str] | None = None,
) -> Task:
    """Build and validate a task from the rows of its splits.

    Args:
        name: The task's slug.
        splits: Rows per split; ``train`` is required, ``dev`` and ``test`` may be missing.
        source: Where the rows came from (file or folder), stored in the spec.
        seed: Seeds the carving of a missing dev split.
        choices: Kind, metric, domain and options fixed by the caller.
        label_order: The layout's own label set (``labels.json``...), used when rows carry none.

    Raises:
        DataFormatError: A split is empty, or a row breaks the task's rules (names file and line).
    """
    splits, notes = _complete_splits(splits, seed=seed, source=source)
    kind = choices.kind or _infer_kind(splits, label_order, choices.options)
    label_names, splits = _settle_options(kind, splits, choices.options, label_order)
    spec = TaskSpec(
        name=name,
        kind=kind,
        metric=choices.metric or DEFAULT_METRIC[kind],
        domain=choices.domain or "general",
        source="; ".join([source, *notes]),
        label_names=label_names,
    )
    for split in SPLITS:
        for record in splits[split]:
            check_example(spec, _example(record), where=record.where or f"{source}, {split}")
    return Task(spec=spec, splits={split: [_example(r) for r in splits[split]] for split in SPLITS})


def carve(records: list[Record], *, seed: int, fraction: float = DEV_FRACTION):
    """Split ``records`` into ``(kept, carved)``: a seeded random ``fraction`` (at least one)."""
    if len(records) < 2:
        where = records[0].where if records else "train"
        raise DataFormatError(
            f"{where}: train has {len(records)} example(s); need at least 2 to carve a dev split "
            "(or give a dev file)"
        )
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    chosen = set(order[: max(1, round(len(records) * fraction))])
    kept = [r for i, r in enumerate(records) if i not in chosen]
    return kept, [r for i, r in enumerate(records) if i in chosen]


def _complete_splits(splits: dict[str, list[Record]], *, seed: int, source: str):
    notes: list[str] = []
    splits = {split: list(rows) for split, rows in splits.items() if rows is not None}
    for split, rows in splits.items():
        if not rows:
            raise DataFormatError(f"{source}: split {split!r} has no examples")
    if "train" not in splits:
        raise DataFormatError(f"{source}: no train split found; a task needs training examples")
    if "dev" not in splits:
        splits["train"], splits["dev"] = carve(splits["train"], seed=seed)
        notes.append(f"dev carved from train (seed {seed})")
    if "test" not in splits:
        splits["test"] = list(splits["dev"])
        notes.append("test=dev (no test split)")
    return splits, notes


def _infer_kind(splits, label_order, options) -> str:
    rows = [record for split in SPLITS for record in splits[split]]
    if options or label_order or any(record.options for record in rows):
        return "choice"
    distinct = {record.output for record in rows}
    if len(distinct) <= MAX_INFERRED_LABELS and len(distinct) * 2 <= len(rows):
        return "choice"
    return "generation"


def _settle_options(kind, splits, options, label_order):
    """Return ``(label_names, splits)`` with every row's options set for ``kind``."""
    if kind == "generation":
        return (), {s: [_with_options(r, ()) for r in rows] for s, rows in splits.items()}
    rows = [record for split in SPLITS for record in splits[split]]
    if options is None:
        given = {record.options for record in rows}
        if any(given) and len(given) > 1:
            return (), splits  # per-example options (multiple choice)
        if any(given):
            options = next(iter(given))
        elif label_order:
            options = tuple(label_order)
        else:
            options = tuple(sorted({record.output for record in rows}))
    label_names = tuple(options)
    return label_names, {s: [_with_options(r, label_names) for r in rs] for s, rs in splits.items()}


def _with_options(record: Record, options: tuple[str, ...]) -> Record:
    return Record(record.input, record.output, options, record.where)


def _example(record: Record) -> Example:
    return Example(record.input, record.output, tuple(record.options))
