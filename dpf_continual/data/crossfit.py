"""CrossFit TSV and MetaICL JSONL: the two file formats of the CrossFit few-shot gym.

CrossFit writes ``{task}_{k}_{seed}_{split}.tsv`` with one ``input<TAB>output`` line per example;
MetaICL rebuilt the same gym as ``{task}_{k}_{seed}_{split}.jsonl`` with one
``{"task", "input", "output", "options"}`` object per line (``options`` empty for generation
tasks). A task's files sit either in ``ROOT/{task}/`` or directly in ``ROOT/``.

Choosing files: train and dev come from the requested ``k`` and ``seed``. The test file is the
same for every seed in both builds, so when ``{task}_{k}_{seed}_test`` is missing the test file
of another seed with the same ``k`` is used; when there is none at all, dev doubles as test (see
:mod:`dpf_continual.data.assemble`). Where both formats exist, JSONL wins: it carries options.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from dpf_continual.data.assemble import Record
from dpf_continual.data.textfile import read_jsonl, read_lines
from dpf_continual.errors import DataFormatError

logger = logging.getLogger(__name__)

CROSSFIT_ROOT_ENV = "DPF_CROSSFIT_ROOT"
FILE_PATTERN = re.compile(
    r"^(?P<task>.+)_(?P<k>\d+)_(?P<seed>\d+)_(?P<split>train|dev|test)\.(?P<ext>jsonl|tsv)$"
)
EXTENSIONS = ("jsonl", "tsv")


@dataclass(frozen=True)
class GymFile:
    """One file of the gym, with the parts of its name."""

    path: Path
    task: str
    k: int
    seed: int
    split: str
    ext: str


def parse_gym_name(path: Path) -> GymFile | None:
    """Parse ``{task}_{k}_{seed}_{split}.{tsv|jsonl}``; ``None`` when the name does not fit."""
    match = FILE_PATTERN.match(path.name)
    if match is None:
        return None
    return GymFile(
        path=path,
        task=match["task"],
        k=int(match["k"]),
        seed=int(match["seed"]),
        split=match["split"],
        ext=match["ext"],
    )


def scan_gym_folder(folder: Path) -> list[GymFile]:
    """All gym files directly inside ``folder`` (sorted by name)."""
    if not folder.is_dir():
        return []
    found = (parse_gym_name(path) for path in sorted(folder.iterdir()) if path.is_file())
    return [gym_file for gym_file in found if gym_file is not None]


def crossfit_roots() -> list[Path]:
    """The folders listed in ``DPF_CROSSFIT_ROOT`` (``os.pathsep``-separated), in order."""
    value = os.environ.get(CROSSFIT_ROOT_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


def find_task_files(roots: list[Path], task: str) -> list[GymFile]:
    """The gym files of ``task`` under the first root that has any (``ROOT/task/`` or ``ROOT/``)."""
    for root in roots:
        for folder in (root / task, root):
            files = [f for f in scan_gym_folder(folder) if f.task == task]
            if files:
                return files
    return []


def select_splits(files: list[GymFile], *, k: int, seed: int, where: str) -> dict[str, GymFile]:
    """Pick each split's file for ``k`` and ``seed`` (test from another seed when missing).

    Raises:
        DataFormatError: No train file exists for this ``k`` and ``seed`` (lists what exists).
    """
    chosen: dict[str, GymFile] = {}
    for split in ("train", "dev", "test"):
        exact = [f for f in files if (f.k, f.seed, f.split) == (k, seed, split)]
        if not exact and split == "test":
            exact = [f for f in files if (f.k, f.split) == (k, "test")]
        if exact:
            chosen[split] = min(exact, key=lambda f: (EXTENSIONS.index(f.ext), f.seed))
    if "train" not in chosen:
        available = sorted({(f.k, f.seed) for f in files if f.split == "train"})
        listing = ", ".join(f"k={a} seed={b}" for a, b in available) or "none"
        raise DataFormatError(
            f"{where}: no train file for k={k}, seed={seed}; available: {listing} "
            "(choose with --k and --seed)"
        )
    return chosen


def read_gym_file(path: Path) -> list[Record]:
    """Read a CrossFit ``.tsv`` or MetaICL ``.jsonl`` file by its extension."""
    if path.suffix == ".jsonl":
        return read_metaicl_jsonl(path)
    return read_crossfit_tsv(path)


def read_crossfit_tsv(path: Path) -> list[Record]:
    """CrossFit TSV: ``input<TAB>output`` per line.

    Raises:
        DataFormatError: A line has no tab, or an empty input (names the file and line).
    """
    records = []
    for number, line in read_lines(path):
        fields = line.split("\t")
        if len(fields) < 2:
            raise DataFormatError(
                f"{path}: line {number}: expected 'input<TAB>output', found no tab in {line[:60]!r}"
            )
        # TODO: CrossFit appends extra reference answers as more tab-separated fields; only the
        # first is kept, because an Example holds one output (EM against the first reference).
        records.append(Record(fields[0], fields[1], (), f"{path}: line {number}"))
    return records


def read_metaicl_jsonl(path: Path) -> list[Record]:
    """MetaICL JSONL: ``{"input": str, "output": str, "options": [str, ...]}`` per line.

    Raises:
        DataFormatError: A key is missing or has the wrong type (names the file and line).
    """
    records = []
    for number, row in read_jsonl(path):
        where = f"{path}: line {number}"
        for key in ("input", "output"):
            if not isinstance(row.get(key), str):
                found = "missing" if key not in row else f"a {type(row[key]).__name__}"
                raise DataFormatError(
                    f"{where}: key {key!r} is {found}; expected a string "
                    "(MetaICL rows are {task, input, output, options})"
                )
        options = row.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise DataFormatError(f"{where}: 'options' must be a list of strings, got {options!r}")
        records.append(Record(row["input"], row["output"], tuple(options), where))
    return records
