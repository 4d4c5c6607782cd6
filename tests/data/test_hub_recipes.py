"""Built-in hub recipes, applied to local rows made here (this machine has no hub)."""

from __future__ import annotations

import pytest

from dpf_continual.data import Choices, resolve_task
from dpf_continual.data import hub as hub_module
from dpf_continual.data.hub import hub_status, task_from_hub_dataset
from dpf_continual.data.recipes import RECIPES, find_recipe, group_multirc
from dpf_continual.errors import TaskSourceNotFoundError

REQUIRED = [
    "glue-cola", "glue-sst2", "glue-mrpc", "glue-qqp", "glue-mnli", "glue-qnli", "glue-rte",
    "glue-wnli", "boolq", "superglue-cb", "superglue-copa", "superglue-multirc",
    "superglue-record", "superglue-rte", "superglue-wic", "superglue-wsc", "ag_news",
    "dbpedia_14", "yahoo_answers_topics", "amazon_polarity", "yelp_polarity", "imdb", "trec",
    "emotion", "tweet_eval-sentiment", "tweet_eval-hate", "tweet_eval-stance_abortion",
]  # fmt: skip


def pairs(count, **extra):
    """GLUE-like sentence-pair rows with labels cycling 0, 1."""
    return [
        {"sentence1": f"first {i}", "sentence2": f"second\t{i}", "label": i % 2, **extra}
        for i in range(count)
    ]


def test_every_common_crossfit_task_has_a_recipe():
    assert set(REQUIRED) <= set(RECIPES)
    assert find_recipe("no-such-task") is None


def test_glue_rte_is_linearised_like_crossfit():
    dataset = {"train": pairs(40), "validation": pairs(5) + [{**pairs(1)[0], "label": -1}]}

    task = task_from_hub_dataset(find_recipe("glue-rte"), dataset, k=8, seed=1)

    assert task.split_sizes() == {"train": 8, "dev": 8, "test": 5}
    assert task.spec.label_names == ("entailment", "not_entailment")
    assert task.spec.domain == "nli"
    assert task.spec.source == "hub:nyu-mll/glue[rte] (k=8, seed=1)"
    example = task.splits["test"][1]
    assert example.input == "sentence 1: first 1 [SEP] sentence 2: second 1"
    assert example.output == "not_entailment"


def test_sampling_is_seeded_and_train_dev_do_not_overlap():
    dataset = {"train": pairs(100), "validation": pairs(3)}
    recipe = find_recipe("glue-mrpc")

    one = task_from_hub_dataset(recipe, dataset, k=10, seed=5)
    same = task_from_hub_dataset(recipe, dataset, k=10, seed=5)
    other = task_from_hub_dataset(recipe, dataset, k=10, seed=6)

    assert one.splits == same.splits
    assert one.splits["train"] != other.splits["train"]
    assert not {e.input for e in one.splits["train"]} & {e.input for e in one.splits["dev"]}


def test_test_split_is_capped_keeping_order():
    dataset = {"train": pairs(20), "validation": pairs(50)}

    task = task_from_hub_dataset(find_recipe("glue-rte"), dataset, k=4, seed=0, max_test=10)

    numbers = [int(e.input.rsplit(" ", 1)[1]) for e in task.splits["test"]]
    assert len(numbers) == 10 and numbers == sorted(numbers)


def test_mnli_uses_validation_matched_and_caller_choices():
    rows = [{"premise": f"p{i}", "hypothesis": f"h{i}", "label": i % 3} for i in range(12)]
    dataset = {"train": rows, "validation_matched": rows[:3]}

    task = task_from_hub_dataset(
        find_recipe("glue-mnli"), dataset, name="mnli-small", k=3, choices=Choices(domain="fiction")
    )

    assert task.name == "mnli-small"
    assert task.spec.domain == "fiction"
    assert task.splits["test"][2].input == "premise: p2 [SEP] hypothesis: h2"
    assert task.splits["test"][2].output == "contradiction"
    assert task.spec.label_names == ("contradiction", "entailment", "neutral")


def test_missing_split_is_reported():
    with pytest.raises(
        TaskSourceNotFoundError, match=r"has no split 'validation' \(it has train\)"
    ):
        task_from_hub_dataset(find_recipe("glue-rte"), {"train": pairs(4)}, k=2)


def test_copa_gives_per_example_options():
    rows = [
        {
            "premise": "The road was wet.",
            "choice1": "It rained.",
            "choice2": "It was sunny.",
            "question": "cause",
            "label": 0,
        },
        {
            "premise": "I dropped the glass.",
            "choice1": "It broke.",
            "choice2": "It sang.",
            "question": "effect",
            "label": 0,
        },
    ] * 4

    task = task_from_hub_dataset(
        find_recipe("superglue-copa"), {"train": rows, "validation": rows}, k=2
    )

    effect = next(e for e in task.splits["test"] if e.input.startswith("Effect:"))
    assert effect.input == "Effect: The road was wet."
    assert effect.options == ("Cause: It rained.", "Cause: It was sunny.")
    assert effect.output == "Cause: It rained."
    assert task.spec.label_names == ()


def test_multirc_groups_answers_per_question():
    def answer(q, text, label):
        return {
            "paragraph": "Tom has a red ball.",
            "question": f"question {q}?",
            "answer": text,
            "label": label,
            "idx": {"paragraph": 0, "question": q, "answer": 0},
        }

    rows = []
    for q in range(4):
        rows += [answer(q, "red", 1), answer(q, "blue", 0)]
    rows += [answer(9, "green", 0), answer(9, "blue", 0)]  # no correct answer: skipped

    assert len(group_multirc(rows)) == 5
    task = task_from_hub_dataset(
        find_recipe("superglue-multirc"), {"train": rows, "validation": rows}, k=2
    )

    assert task.split_sizes()["test"] == 4
    first = task.splits["test"][0]
    assert first.input == "context: Tom has a red ball. [SEP] question: question 0?"
    assert (first.output, first.options) == ("red", ("red", "blue"))


def test_record_is_a_generation_task():
    rows = [
        {
            "query": f"@placeholder won {i}",
            "passage": "Ann and Bo played.\nAnn won.",
            "answers": ["Ann"] if i < 6 else [],
        }
        for i in range(8)
    ]

    task = task_from_hub_dataset(
        find_recipe("superglue-record"), {"train": rows, "validation": rows}, k=2
    )

    assert (task.spec.kind, task.spec.metric) == ("generation", "em")
    assert task.split_sizes()["test"] == 6
    assert task.splits["test"][0].input == (
        "question: @placeholder won 0 context: Ann and Bo played. Ann won."
    )


@pytest.mark.parametrize(
    ("name", "row", "expected_input", "expected_output"),
    [
        ("boolq", {"question": "is it", "passage": "it is", "answer": True},
         "question: is it [SEP] context: it is", "yes"),
        ("yahoo_answers_topics", {"question_title": "Why?", "question_content": "Really\nwhy",
                                  "best_answer": "Because", "topic": 4},
         "question_title: Why? [SEP] question_content: Really why [SEP] best_answer: Because",
         "Computers & Internet"),
        ("trec", {"text": "Who is he ?", "coarse_label": 3, "fine_label": 0}, "Who is he ?",
         "HUM"),
        ("amazon_polarity", {"title": "Great", "content": "Loved it", "label": 1},
         "title: Great [SEP] content: Loved it", "positive"),
        ("superglue-wic", {"word": "bank", "sentence1": "a", "sentence2": "b", "label": 0},
         "word: bank [SEP] sentence 1: a [SEP] sentence 2: b", "false"),
        ("tweet_eval-stance_abortion", {"text": "@user my body", "label": 2}, "@user my body",
         "favor"),
        ("dbpedia_14", {"title": "X", "content": "X is a plant.", "label": 10}, "X is a plant.",
         "Plant"),
    ],
)  # fmt: skip
def test_recipes_format_rows(name, row, expected_input, expected_output):
    recipe = find_recipe(name)

    text, output, options = recipe.format(row)

    assert (text, output) == (expected_input, expected_output)
    assert output in options


def test_recipes_read_a_datasets_dataset():
    datasets = pytest.importorskip("datasets")
    rows = {"text": [f"news {i}" for i in range(12)], "label": [i % 4 for i in range(12)]}
    dataset = datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict(rows), "test": datasets.Dataset.from_dict(rows)}
    )

    task = task_from_hub_dataset(find_recipe("ag_news"), dataset, k=4)

    assert task.spec.label_names == ("Business", "Sci/Tech", "Sports", "World")
    assert task.splits["test"][3].output == "Sci/Tech"


def test_name_falls_back_to_the_hub_when_online(monkeypatch):
    monkeypatch.delenv("DPF_CROSSFIT_ROOT", raising=False)
    dataset = {"train": pairs(30), "validation": pairs(4)}
    monkeypatch.setattr(hub_module, "hub_status", lambda: (True, ""))
    monkeypatch.setattr(hub_module, "load_hub_dataset", lambda recipe: dataset)

    task = resolve_task("glue-rte", k=4, seed=2)

    assert task.spec.source == "hub:nyu-mll/glue[rte] (k=4, seed=2)"
    assert task.split_sizes() == {"train": 4, "dev": 4, "test": 4}


def test_hub_status_honours_offline_settings(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")

    assert hub_status() == (False, "HF_DATASETS_OFFLINE is set")
