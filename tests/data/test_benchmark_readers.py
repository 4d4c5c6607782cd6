"""O-LoRA JSON folders and LFPT5 TSV samples."""

from __future__ import annotations

import json

import pytest

from dpf_continual.data import resolve_task
from dpf_continual.errors import DataFormatError

NLI = ["entailment", "contradiction", "neutral"]


@pytest.fixture
def olora(write):
    """Factory: an O-LoRA task folder with the given split files; returns the folder."""

    def make(splits=("train", "dev", "test"), labels=NLI, rows=None):
        rows = rows or [{"label": NLI[i % 3], "sentence": f"sentence {i}"} for i in range(6)]
        for split in splits:
            # One item per line, so item i sits on line i + 2.
            write(f"olora/CB/{split}.json", "[\n" + ",\n".join(map(json.dumps, rows)) + "\n]")
        if labels is not None:
            write("olora/CB/labels.json", json.dumps(labels))
        return write("olora/CB/.keep", "").parent

    return make


def test_olora_folder_uses_labels_json_order(olora):
    task = resolve_task("cb", data=olora())

    assert task.split_sizes() == {"train": 6, "dev": 6, "test": 6}
    assert task.spec.label_names == tuple(NLI)
    assert task.splits["train"][0].input == "sentence 0"
    assert task.spec.source.startswith("olora:")


def test_olora_without_dev_or_test(olora):
    task = resolve_task("cb", data=olora(splits=("train",)), seed=3)

    assert task.split_sizes() == {"train": 5, "dev": 1, "test": 1}
    assert "dev carved from train (seed 3)" in task.spec.source


def test_olora_label_outside_labels_json_names_the_line(olora):
    rows = [{"label": "entailment", "sentence": "a"}, {"label": "maybe", "sentence": "b"}]

    with pytest.raises(DataFormatError, match=r"train\.json: line 3: output 'maybe' is not among"):
        resolve_task("cb", data=olora(rows=rows))


def test_olora_missing_key_and_bad_labels_file(olora, write):
    with pytest.raises(DataFormatError, match=r"train\.json: line 3: no column 'label'"):
        resolve_task(
            "cb", data=olora(rows=[{"label": "entailment", "sentence": "a"}, {"sentence": "b"}])
        )
    folder = olora()
    write("olora/CB/labels.json", '{"a": 1}')
    with pytest.raises(DataFormatError, match=r"labels\.json: expected a non-empty JSON list"):
        resolve_task("cb", data=folder)


@pytest.fixture
def lfpt5(write):
    """Factory: an LFPT5 task folder ``dbpedia_csv`` with samples ``0_42`` and ``1_142``."""

    def make(lines=None):
        lines = lines or ["Jodel aircraft maker\tcompany", "Usain Bolt sprinter\tthlete"]
        for sample in ("0_42", "1_142"):
            for name in ("train.txt", "valid.txt", "test.txt"):
                text = "\n".join(
                    f"{line} ({sample})" if "\t" not in line else line for line in lines
                )
                write(f"lfpt5/dbpedia_csv/{sample}/{name}", text + "\n")
        return write("lfpt5/dbpedia_csv/.keep", "").parent

    return make


def test_lfpt5_sample_by_seed_with_label_fixes(lfpt5):
    folder = lfpt5()

    task = resolve_task("dbpedia", data=folder, seed=142)

    assert task.spec.source == f"lfpt5:{folder / '1_142'}"
    assert task.splits["train"][1].output == "athlete"
    assert task.spec.label_names[:4] == ("company", "educational institution", "artist", "athlete")
    assert len(task.spec.label_names) == 14


def test_lfpt5_unknown_seed_falls_back_to_the_first_sample(lfpt5):
    folder = lfpt5()

    assert resolve_task("dbpedia", data=folder, seed=7).spec.source == f"lfpt5:{folder / '0_42'}"
    assert resolve_task("dbpedia", data=folder / "1_142").spec.source.endswith("1_142")


def test_lfpt5_unknown_labels_fall_back_to_the_labels_found(lfpt5):
    task = resolve_task("dbpedia", data=lfpt5(["a text\tcolour", "b text\tshape"]))

    assert task.spec.label_names == ("colour", "shape")


def test_lfpt5_line_without_tab(lfpt5):
    with pytest.raises(
        DataFormatError, match=r"0_42/train\.txt: line 2: expected 'text<TAB>label'"
    ):
        resolve_task("dbpedia", data=lfpt5(["fine\tcompany", "no tab"]), seed=42)
