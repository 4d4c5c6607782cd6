"""Continual-learning benchmark layouts: O-LoRA's JSON folders and LFPT5's TSV samples.

O-LoRA (``CL_Benchmark/<group>/<task>/``): ``train.json``, ``dev.json`` and ``test.json``, each
a JSON array of ``{"sentence": str, "label": str}``, plus ``labels.json``, the list of labels.
Some tasks lack dev or test; :mod:`dpf_continual.data.assemble` then carves or reuses a split.

LFPT5 (``<task>/<i>_<seed>/``): ``train.txt``, ``valid.txt`` and ``test.txt`` with one
``text<TAB>label`` line per example. A task folder holds several samples (``0_42``, ``1_142``,
``2_242``); the sample whose name ends in ``_<seed>`` is used, else the first one (the source
records which). LFPT5's label words are kept, except a few run-together or clipped ones
(``thlete``, ``educationalinstitution``...), which are spelled out so a backbone can read them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from dpf_continual.data.assemble import Record
from dpf_continual.data.tables import read_table_file
from dpf_continual.data.textfile import read_json, read_lines
from dpf_continual.errors import DataFormatError

logger = logging.getLogger(__name__)

OLORA_SPLITS = {"train": "train.json", "dev": "dev.json", "test": "test.json"}
LFPT5_SPLITS = {"train": "train.txt", "dev": "valid.txt", "test": "test.txt"}

LFPT5_LABEL_FIXES = {
    "thlete": "athlete",
    "educationalinstitution": "educational institution",
    "meanoftransportation": "means of transportation",
    "naturalplace": "natural place",
    "officeholder": "office holder",
    "writtenwork": "written work",
    "entertainment and Music": "entertainment and music",
}

# The datasets' own class order, after the fixes above.
LFPT5_LABEL_ORDER = {
    "ag_news_csv": ("world", "sports", "business", "science"),
    "amazon_review_full_csv": ("terrible", "bad", "middle", "good", "wonderful"),
    "dbpedia_csv": (
        "company", "educational institution", "artist", "athlete", "office holder",
        "means of transportation", "building", "natural place", "village", "animal", "plant",
        "album", "film", "written work",
    ),
    "yahoo_answers_csv": (
        "society and culture", "science", "health", "education and reference",
        "computers and internet", "sports", "business", "entertainment and music",
        "family and relationships", "politics and government",
    ),
}  # fmt: skip


def is_olora_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like an O-LoRA task folder."""
    return (folder / "labels.json").is_file() or (folder / "train.json").is_file()


def read_olora(
    folder: Path, *, input_columns: Sequence[str] = (), output_column: str | None = None
) -> tuple[dict[str, list[Record]], tuple[str, ...] | None]:
    """Read an O-LoRA task folder as ``(rows per split, labels from labels.json or None)``.

    The split files are read as tables (:mod:`dpf_continual.data.tables`), whose column guesses
    find ``sentence`` and ``label``; other column names can be given.
    """
    labels = _read_labels(folder / "labels.json")
    splits = {
        split: read_table_file(
            folder / file_name, input_columns=input_columns, output_column=output_column
        )
        for split, file_name in OLORA_SPLITS.items()
        if (folder / file_name).is_file()
    }
    return splits, labels


def _read_labels(path: Path) -> tuple[str, ...] | None:
    if not path.is_file():
        return None
    labels = read_json(path)
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise DataFormatError(f"{path}: expected a non-empty JSON list of label strings")
    return tuple(labels)


def is_lfpt5_sample(folder: Path) -> bool:
    """Whether ``folder`` is one LFPT5 sample (holds ``train.txt``)."""
    return (folder / "train.txt").is_file()


def lfpt5_samples(folder: Path) -> list[Path]:
    """The LFPT5 sample folders (``<i>_<seed>``) inside a task folder, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and is_lfpt5_sample(p))


def pick_lfpt5_sample(folder: Path, seed: int) -> Path:
    """The sample of ``folder`` named ``*_<seed>``, else the first one."""
    samples = lfpt5_samples(folder)
    if not samples:
        raise DataFormatError(f"{folder}: no LFPT5 sample folders (<i>_<seed>/train.txt) inside")
    for sample in samples:
        if sample.name.rsplit("_", 1)[-1] == str(seed):
            return sample
    logger.info("no LFPT5 sample for seed %d in %s; using %s", seed, folder, samples[0].name)
    return samples[0]


def read_lfpt5(sample: Path) -> tuple[dict[str, list[Record]], tuple[str, ...] | None]:
    """Read one LFPT5 sample as ``(rows per split, the dataset's label order or None)``."""
    splits = {
        split: read_lfpt5_split(sample / file_name)
        for split, file_name in LFPT5_SPLITS.items()
        if (sample / file_name).is_file()
    }
    order = LFPT5_LABEL_ORDER.get(sample.parent.name)
    seen = {record.output for rows in splits.values() for record in rows}
    if order is not None and not seen <= set(order):
        order = None  # not the dataset we know: fall back to the labels found
    return splits, order


def read_lfpt5_split(path: Path) -> list[Record]:
    """One LFPT5 split: ``text<TAB>label`` lines.

    Raises:
        DataFormatError: A line has no tab (names the file and line).
    """
    records = []
    for number, line in read_lines(path):
        text, tab, label = line.rpartition("\t")
        if not tab:
            raise DataFormatError(
                f"{path}: line {number}: expected 'text<TAB>label', found no tab in {line[:60]!r}"
            )
        label = LFPT5_LABEL_FIXES.get(label.strip(), label.strip())
        records.append(Record(text.strip(), label, (), f"{path}: line {number}"))
    return records
