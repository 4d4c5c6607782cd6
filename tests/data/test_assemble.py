"""Shared rules: missing splits, kind and options, row-level validation."""

from __future__ import annotations

import pytest

from dpf_continual.data import Choices, Record, assemble_task
from dpf_continual.data.assemble import carve
from dpf_continual.errors import DataFormatError


def rows(count, outputs=("a", "b"), *, prefix="x", options=()):
    return [
        Record(f"{prefix} {i}", outputs[i % len(outputs)], options, f"f.tsv: line {i + 1}")
        for i in range(count)
    ]


def test_missing_dev_is_carved_from_train_with_the_seed():
    splits = {"train": rows(10), "test": rows(4, prefix="t")}

    first = assemble_task("toy", splits, source="f.tsv", seed=7)
    again = assemble_task("toy", splits, source="f.tsv", seed=7)
    other = assemble_task("toy", splits, source="f.tsv", seed=8)

    assert first.split_sizes() == {"train": 8, "dev": 2, "test": 4}
    assert first.splits == again.splits
    assert first.splits["dev"] != other.splits["dev"]
    assert "dev carved from train (seed 7)" in first.spec.source
    train_inputs = {e.input for e in first.splits["train"]}
    assert not train_inputs & {e.input for e in first.splits["dev"]}


def test_missing_test_reuses_dev_and_says_so():
    task = assemble_task("toy", {"train": rows(4), "dev": rows(2, prefix="d")}, source="s", seed=0)

    assert task.splits["test"] == task.splits["dev"]
    assert task.spec.source == "s; test=dev (no test split)"


def test_carving_needs_two_examples():
    with pytest.raises(DataFormatError, match=r"line 1: train has 1 example\(s\); need at least 2"):
        carve(rows(1), seed=0)


def test_empty_or_missing_splits_are_errors():
    with pytest.raises(DataFormatError, match=r"src: split 'dev' has no examples"):
        assemble_task("toy", {"train": rows(4), "dev": []}, source="src", seed=0)
    with pytest.raises(DataFormatError, match=r"src: no train split found"):
        assemble_task("toy", {"test": rows(4)}, source="src", seed=0)


def test_kind_is_inferred_from_repeating_outputs():
    labels = assemble_task("toy", {"train": rows(8)}, source="s", seed=0)
    answers = assemble_task(
        "toy", {"train": rows(8, outputs=[str(i) for i in range(8)])}, source="s", seed=0
    )

    assert (labels.spec.kind, labels.spec.metric, labels.spec.label_names) == (
        "choice",
        "accuracy",
        ("a", "b"),
    )
    assert (answers.spec.kind, answers.spec.metric, answers.spec.label_names) == (
        "generation",
        "em",
        (),
    )
    assert all(e.options == () for e in answers.splits["train"])


def test_label_order_and_given_options_win_over_sorting():
    splits = {"train": rows(4, outputs=("b", "a"))}

    ordered = assemble_task("toy", splits, source="s", seed=0, label_order=["b", "a"])
    given = assemble_task(
        "toy", splits, source="s", seed=0, choices=Choices(options=("b", "a", "c"))
    )

    assert ordered.spec.label_names == ("b", "a")
    assert given.spec.label_names == ("b", "a", "c")
    assert given.splits["dev"][0].options == ("b", "a", "c")


def test_output_outside_given_options_names_file_and_line():
    splits = {"train": rows(4, outputs=("a", "z"))}

    with pytest.raises(
        DataFormatError, match=r"f\.tsv: line 2: output 'z' is not among the options"
    ):
        assemble_task("toy", splits, source="s", seed=0, choices=Choices(options=("a", "b")))


def test_per_example_options_are_kept():
    train = [Record("q1", "x", ("x", "y"), "f: line 1"), Record("q2", "w", ("v", "w"), "f: line 2")]

    task = assemble_task("toy", {"train": train, "dev": train}, source="s", seed=0)

    assert task.spec.label_names == ()
    assert task.splits["train"][1].options == ("v", "w")


def test_explicit_generation_drops_options():
    train = rows(4, options=("a", "b"))

    task = assemble_task(
        "toy", {"train": train}, source="s", seed=0, choices=Choices(kind="generation", domain="qa")
    )

    assert task.spec.kind == "generation"
    assert task.spec.domain == "qa"
    assert all(e.options == () for e in task.splits["train"])
