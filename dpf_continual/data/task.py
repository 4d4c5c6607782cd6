"""The task model: a spec plus train/dev/test splits of examples.

A task is what the registry stores and what training reads: a :class:`TaskSpec` (name, kind,
metric, domain, source, label names) and three splits of :class:`Example`. For a ``choice`` task
every example lists its options and its output is one of them; for a ``generation`` task the
options are empty and the output is free text.

Options are per example. Most choice tasks have one fixed label set, which is then also the
spec's ``label_names`` and every example's ``options``; multiple-choice sources (MetaICL's
``superglue-copa``, ``openbookqa``...) give each example its own options, and then ``label_names``
is empty.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dpf_continual.errors import ConfigError, DataFormatError
from dpf_continual.naming import validate_task_name

SPLITS = ("train", "dev", "test")
KINDS = ("choice", "generation")
METRICS = ("accuracy", "f1", "em")
DEFAULT_METRIC = {"choice": "accuracy", "generation": "em"}


@dataclass(frozen=True)
class Example:
    """One example: the input text, the expected output and, for choice tasks, the options."""

    input: str
    output: str
    options: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in the registry: ``{"input", "output", "options"}``."""
        return {"input": self.input, "output": self.output, "options": list(self.options)}

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Example:
        """Inverse of :meth:`to_dict` (``options`` may be missing)."""
        return cls(str(row["input"]), str(row["output"]), tuple(row.get("options") or ()))


@dataclass(frozen=True)
class TaskSpec:
    """What a task is, apart from its examples.

    Args:
        name: A slug (see :func:`dpf_continual.naming.validate_task_name`).
        kind: ``choice`` (pick one of the options) or ``generation`` (free text).
        metric: ``accuracy``, ``f1`` or ``em``.
        domain: A free word for the text's domain (``news``, ``reviews``...), used in reports.
        source: Where the data came from, e.g. ``metaicl:/data/ag_news (k=16, seed=100)``.
        label_names: The fixed label set of a choice task, or empty when options vary per
            example and for generation tasks.
    """

    name: str
    kind: str
    metric: str
    domain: str = "general"
    source: str = ""
    label_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_task_name(self.name)
        if self.kind not in KINDS:
            raise ConfigError(f"kind {self.kind!r} of task {self.name!r}: expected one of {KINDS}")
        if self.metric not in METRICS:
            raise ConfigError(
                f"metric {self.metric!r} of task {self.name!r}: expected one of {METRICS}"
            )
        if self.kind == "generation" and self.label_names:
            raise ConfigError(
                f"task {self.name!r} is a generation task but has label names "
                f"{list(self.label_names)}: expected none (use kind 'choice' for labels)"
            )
        if len(set(self.label_names)) != len(self.label_names):
            raise ConfigError(f"label names of task {self.name!r} repeat: {list(self.label_names)}")


@dataclass
class Task:
    """A spec and its splits ``{"train": [...], "dev": [...], "test": [...]}``."""

    spec: TaskSpec
    splits: dict[str, list[Example]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The task's name (from the spec)."""
        return self.spec.name

    def split_sizes(self) -> dict[str, int]:
        """Number of examples in each split, in :data:`SPLITS` order."""
        return {split: len(self.splits.get(split, [])) for split in SPLITS}

    def options(self) -> tuple[str, ...]:
        """The label set, or the first few distinct options of a multiple-choice task."""
        if self.spec.label_names:
            return self.spec.label_names
        seen: dict[str, None] = {}
        for example in self.splits.get("train", []):
            seen.update(dict.fromkeys(example.options))
        return tuple(seen)

    def to_data(self) -> dict[str, list[dict[str, Any]]]:
        """The splits as plain JSON-ready data, the form stored in the registry."""
        return {
            split: [example.to_dict() for example in self.splits.get(split, [])] for split in SPLITS
        }

    @classmethod
    def from_data(cls, spec: TaskSpec, data: Mapping[str, Sequence[Mapping[str, Any]]]) -> Task:
        """Inverse of :meth:`to_data`."""
        splits = {split: [Example.from_dict(r) for r in data.get(split, [])] for split in SPLITS}
        return cls(spec=spec, splits=splits)

    def checksum(self) -> str:
        """SHA-256 (hex) of a canonical JSON of the splits: same examples, same checksum."""
        text = json.dumps(self.to_data(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def validate(self) -> Task:
        """Check the splits against the spec; return ``self`` so calls can chain.

        Raises:
            DataFormatError: A split is missing or empty, an input or output is blank, a choice
                example's output is not among its options, or options disagree with the label set.
        """
        for split in SPLITS:
            examples = self.splits.get(split)
            if not examples:
                raise DataFormatError(
                    f"task {self.name!r}: split {split!r} has no examples; every task needs "
                    f"non-empty {', '.join(SPLITS)} splits"
                )
            for index, example in enumerate(examples):
                check_example(self.spec, example, where=f"task {self.name!r}, {split} #{index + 1}")
        return self


def check_example(spec: TaskSpec, example: Example, *, where: str) -> None:
    """Raise :class:`DataFormatError` (prefixed with ``where``) when ``example`` breaks ``spec``."""
    if not example.input.strip():
        raise DataFormatError(f"{where}: the input is empty")
    if not example.output.strip():
        raise DataFormatError(f"{where}: the output is empty")
    if spec.kind == "generation":
        if example.options:
            raise DataFormatError(
                f"{where}: options {_short(example.options)} given for the generation task "
                f"{spec.name!r}; expected none (use kind 'choice')"
            )
        return
    if not example.options:
        raise DataFormatError(f"{where}: no options for the choice task {spec.name!r}")
    if example.output not in example.options:
        raise DataFormatError(
            f"{where}: output {example.output!r} is not among the options {_short(example.options)}"
        )
    if spec.label_names and tuple(example.options) != spec.label_names:
        raise DataFormatError(
            f"{where}: options {_short(example.options)} differ from the task's label set "
            f"{_short(spec.label_names)}"
        )


def _short(values: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(repr(value) for value in values[:limit])
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return f"[{shown}{more}]"
