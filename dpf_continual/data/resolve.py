"""From a task name and an optional path to a validated :class:`~dpf_continual.data.task.Task`.

Without a path, the name is a CrossFit task: its files are looked up under ``DPF_CROSSFIT_ROOT``
(CrossFit TSV or MetaICL JSONL), then built from the Hugging Face hub with a built-in recipe when
the machine is online. With a path, the layout is recognised from what is there:

==============================================  ===========================================
path                                            read as
==============================================  ===========================================
folder holding ``{name}/``                      that subfolder (a gym or benchmark root)
``{task}_{k}_{seed}_{split}.jsonl|tsv`` files   CrossFit/MetaICL gym (``--k``, ``--seed``)
``labels.json`` or ``train.json``               O-LoRA task folder
``train.txt`` or ``<i>_<seed>/train.txt``       LFPT5 sample or task folder
``train.csv|tsv|jsonl|json`` (+ dev, test)      named-column tables
one gym file                                    its task's files with that file's k and seed
one ``.tsv``/``.txt`` without a header          CrossFit ``input<TAB>output`` lines (train)
one ``.csv``/``.tsv``/``.jsonl``/``.json``      a named-column table (train)
==============================================  ===========================================

A single file is the train split; dev is carved from it and test reuses dev (see
:mod:`dpf_continual.data.assemble`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

from dpf_continual.data import benchmarks, crossfit, hub, tables
from dpf_continual.data.assemble import Choices, assemble_task
from dpf_continual.data.recipes import RECIPES, find_recipe
from dpf_continual.data.task import Task
from dpf_continual.errors import DataFormatError, TaskSourceNotFoundError
from dpf_continual.naming import close_matches, validate_task_name

logger = logging.getLogger(__name__)

SPLIT_ALIASES = {
    "train": ("train",),
    "dev": ("dev", "valid", "validation", "val"),
    "test": ("test",),
}


def resolve_task(
    name: str,
    *,
    data: str | Path | None = None,
    k: int = 16,
    seed: int = 100,
    choices: Choices = Choices(),
    input_columns: tuple[str, ...] = (),
    output_column: str | None = None,
) -> Task:
    """Find, read and validate the data of task ``name`` (see the module docstring).

    Raises:
        TaskSourceNotFoundError: Nothing found for the name, or the path does not exist.
        DataFormatError: The data is malformed (names the file and line).
        ConfigError: The name or a choice is invalid.
    """
    validate_task_name(name)
    recipe = find_recipe(name)
    if recipe is not None and choices.domain is None:
        choices = replace(choices, domain=recipe.domain)
    if data is None:
        return _from_name(name, k=k, seed=seed, choices=choices)
    path = Path(data).expanduser()
    columns = {"input_columns": input_columns, "output_column": output_column}
    if path.is_file():
        return _from_file(name, path, k=k, seed=seed, choices=choices, **columns)
    if path.is_dir():
        return _from_folder(name, path, k=k, seed=seed, choices=choices, **columns)
    raise TaskSourceNotFoundError(f"--data {path}: no such file or folder")


def _from_name(name: str, *, k: int, seed: int, choices: Choices) -> Task:
    roots = crossfit.crossfit_roots()
    files = crossfit.find_task_files(roots, name)
    if files:
        return _from_gym(name, files, k=k, seed=seed, choices=choices)
    recipe = find_recipe(name)
    reason = "there is no built-in hub recipe for it"
    if recipe is not None:
        online, why = hub.hub_status()
        if online:
            dataset = hub.load_hub_dataset(recipe)
            return hub.task_from_hub_dataset(recipe, dataset, k=k, seed=seed, choices=choices)
        reason = f"the Hugging Face hub is not reachable ({why})"
    raise TaskSourceNotFoundError(_not_found(name, roots, k=k, seed=seed, reason=reason))


def _not_found(name: str, roots: list[Path], *, k: int, seed: int, reason: str) -> str:
    looked = (
        f"{crossfit.CROSSFIT_ROOT_ENV}={os.pathsep.join(map(str, roots))}"
        if roots
        else f"{crossfit.CROSSFIT_ROOT_ENV} (unset)"
    )
    known = list(RECIPES) + [p.name for r in roots if r.is_dir() for p in r.iterdir() if p.is_dir()]
    hint = "" if name in RECIPES else close_matches(name, known)
    return (
        f"task {name!r} not found: looked in {looked} for {name}/{name}_{k}_{seed}_train.jsonl|tsv "
        f"and {reason}{hint}; point --data at the task's files or set "
        f"{crossfit.CROSSFIT_ROOT_ENV} to a CrossFit/MetaICL data folder"
    )


def _from_gym(name, files, *, k, seed, choices, where=None) -> Task:
    folder = files[0].path.parent
    chosen = crossfit.select_splits(files, k=k, seed=seed, where=str(where or folder))
    splits = {split: crossfit.read_gym_file(gym_file.path) for split, gym_file in chosen.items()}
    style = "metaicl" if chosen["train"].ext == "jsonl" else "crossfit"
    source = f"{style}:{folder} (k={k}, seed={seed})"
    if "test" in chosen and chosen["test"].seed != seed:
        source += f"; test file of seed {chosen['test'].seed}"
    recipe = find_recipe(chosen["train"].task)
    if recipe is not None:
        kind = choices.kind or (recipe.kind if style == "crossfit" else None)
        choices = replace(choices, kind=kind, domain=choices.domain or recipe.domain)
    return assemble_task(name, splits, source=source, seed=seed, choices=choices)


def _from_file(name, path, *, k, seed, choices, input_columns, output_column) -> Task:
    gym_file = crossfit.parse_gym_name(path)
    if gym_file is not None:
        files = [f for f in crossfit.scan_gym_folder(path.parent) if f.task == gym_file.task]
        return _from_gym(name, files, k=gym_file.k, seed=gym_file.seed, choices=choices)
    if path.suffix in (".tsv", ".txt") and not input_columns and not _has_header(path):
        records = crossfit.read_crossfit_tsv(path)
        source = f"crossfit:{path}"
    else:
        records = tables.read_table_file(
            path, input_columns=input_columns, output_column=output_column
        )
        source = f"table:{path}"
    return assemble_task(name, {"train": records}, source=source, seed=seed, choices=choices)


def _from_folder(name, path, *, k, seed, choices, input_columns, output_column) -> Task:
    if (path / name).is_dir():
        path = path / name
    columns = {"input_columns": input_columns, "output_column": output_column}
    files = crossfit.scan_gym_folder(path)
    if files:
        return _from_gym(name, _one_task(name, files, path), k=k, seed=seed, choices=choices)
    if benchmarks.is_olora_folder(path):
        splits, labels = benchmarks.read_olora(path, **columns)
        return _assemble(name, splits, f"olora:{path}", seed, choices, labels)
    if benchmarks.is_lfpt5_sample(path) or benchmarks.lfpt5_samples(path):
        sample = path
        if not benchmarks.is_lfpt5_sample(path):
            sample = benchmarks.pick_lfpt5_sample(path, seed)
        splits, labels = benchmarks.read_lfpt5(sample)
        return _assemble(name, splits, f"lfpt5:{sample}", seed, choices, labels)
    split_files = _split_files(path)
    if "train" in split_files:
        splits = {s: tables.read_table_file(p, **columns) for s, p in split_files.items()}
        return _assemble(name, splits, f"table:{path}", seed, choices, None)
    raise DataFormatError(
        f"--data {path}: no task data recognised; expected CrossFit/MetaICL files "
        f"({name}_{k}_{seed}_train.jsonl|tsv), an O-LoRA folder (train.json, labels.json), "
        "an LFPT5 sample (train.txt) or split files (train.csv|tsv|jsonl|json)"
    )


def _assemble(name, splits, source, seed, choices, labels) -> Task:
    return assemble_task(
        name, splits, source=source, seed=seed, choices=choices, label_order=labels
    )


def _one_task(name: str, files: list[crossfit.GymFile], folder: Path) -> list[crossfit.GymFile]:
    tasks = sorted({f.task for f in files})
    if name in tasks:
        return [f for f in files if f.task == name]
    if len(tasks) == 1:
        return files
    raise DataFormatError(
        f"--data {folder}: holds the files of several tasks ({', '.join(tasks[:5])}...); "
        "pass one of them as --name or point --data at one task's folder"
    )


def _split_files(folder: Path) -> dict[str, Path]:
    found = {}
    for split, stems in SPLIT_ALIASES.items():
        for stem in stems:
            paths = [folder / f"{stem}{suffix}" for suffix in tables.TABLE_SUFFIXES]
            existing = [p for p in paths if p.is_file()]
            if existing:
                found[split] = existing[0]
                break
    return found


def _has_header(path: Path) -> bool:
    """Whether the first line of a tab-separated file names an input and an output column."""
    with path.open("rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace")
    fields = {field.strip().lower() for field in first.split("\t")}
    return bool(fields & set(tables.INPUT_GUESSES)) and bool(fields & set(tables.OUTPUT_GUESSES))
