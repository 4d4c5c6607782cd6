"""The task model: specs, splits, checksums and validation."""

from __future__ import annotations

import pytest

from dpf_continual.data import Example, Task, TaskSpec
from dpf_continual.errors import ConfigError, DataFormatError

LABELS = ("negative", "positive")


def make_task(name="toy", *, kind="choice", labels=LABELS, rows=None) -> Task:
    """A small valid task; ``rows`` replaces every split's examples when given."""
    options = labels if kind == "choice" else ()
    examples = rows or [Example(f"text {i}", labels[i % 2], options) for i in range(4)]
    spec = TaskSpec(
        name=name,
        kind=kind,
        metric="accuracy" if kind == "choice" else "em",
        label_names=labels if kind == "choice" else (),
    )
    return Task(spec=spec, splits={s: list(examples) for s in ("train", "dev", "test")})


def test_round_trip_through_registry_data():
    task = make_task()

    data = task.to_data()
    again = Task.from_data(task.spec, data)

    assert data["train"][0] == {"input": "text 0", "output": "negative", "options": list(LABELS)}
    assert again.splits == task.splits
    assert again.checksum() == task.checksum()


def test_checksum_follows_the_examples_only():
    task = make_task()
    renamed = make_task(name="other")
    changed = make_task()
    changed.splits["test"][0] = Example("text 0", "positive", LABELS)

    assert len(task.checksum()) == 64
    assert task.checksum() == renamed.checksum()
    assert task.checksum() != changed.checksum()


def test_split_sizes_and_options():
    task = make_task()
    task.splits["test"] = task.splits["test"][:1]

    assert task.split_sizes() == {"train": 4, "dev": 4, "test": 1}
    assert task.options() == LABELS


def test_options_of_a_multiple_choice_task_come_from_the_examples():
    rows = [Example("q1", "a", ("a", "b")), Example("q2", "c", ("c", "a"))]
    task = make_task(labels=(), rows=rows)

    assert task.validate() is task
    assert task.options() == ("a", "b", "c")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Bad Name"}, r"task name 'Bad Name' is not a slug"),
        ({"kind": "regression"}, r"kind 'regression' of task 'toy': expected one of"),
        ({"metric": "bleu"}, r"metric 'bleu' of task 'toy': expected one of"),
        ({"kind": "generation", "label_names": ("a",)}, r"generation task but has label names"),
        ({"label_names": ("a", "a")}, r"label names of task 'toy' repeat"),
    ],
)
def test_spec_rejects_bad_values(fields, message):
    values = {"name": "toy", "kind": "choice", "metric": "accuracy", **fields}

    with pytest.raises(ConfigError, match=message):
        TaskSpec(**values)


def test_validate_refuses_an_empty_split():
    task = make_task()
    task.splits["dev"] = []

    with pytest.raises(DataFormatError, match=r"task 'toy': split 'dev' has no examples"):
        task.validate()


@pytest.mark.parametrize(
    ("example", "message"),
    [
        (Example("  ", "positive", LABELS), r"test #1: the input is empty"),
        (Example("x", "", LABELS), r"test #1: the output is empty"),
        (Example("x", "neutral", LABELS), r"output 'neutral' is not among the options"),
        (Example("x", "positive", ()), r"no options for the choice task 'toy'"),
        (Example("x", "positive", ("positive", "negative")), r"differ from the task's label set"),
    ],
)
def test_validate_names_the_bad_example(example, message):
    task = make_task()
    task.splits["test"][0] = example

    with pytest.raises(DataFormatError, match=message):
        task.validate()


def test_generation_examples_take_no_options():
    task = make_task(kind="generation", labels=("a", "b"))
    task = Task(task.spec, {s: [Example("q", "a")] for s in ("train", "dev", "test")})
    assert task.validate() is task

    task.splits["train"] = [Example("q", "a", ("a",))]
    with pytest.raises(DataFormatError, match=r"options \['a'\] given for the generation task"):
        task.validate()
