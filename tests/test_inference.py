"""Prediction: mixed-task batches, routing, bad rows, and ``dpf-cl predict``."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from dpf_continual.backbones import load_backbone
from dpf_continual.cli import main
from dpf_continual.errors import ConfigError, TaskNotFoundError
from dpf_continual.inference import Predictor, TaskRouter
from dpf_continual.registry import Registry
from dpf_continual.strategies.config import TrainConfig
from dpf_continual.strategies.runner import train_stream
from tests.strategies.conftest import TASK_WORDS, task_data

FAST = dict(max_steps=4, batch_size=4, eval_batch_size=32, replay_size=6, lr=0.05)
TEXTS = {
    "sentiment": ["the movie was good", "a bad film", "very good service"],
    "topic": ["news of the sport team", "money and the bank", "computer science news"],
    "truth": ["the answer is true", "that was false", "not true at all"],
}


def register(url: str, model_dir, backbone, names) -> Registry:
    registry = Registry.init(url, backbone=str(model_dir), hidden_size=32, prompt_length=4)
    for name in names:
        data = task_data(name)
        embedding = backbone.embed_texts([row["input"] for row in data["train"]]).mean(0)
        registry.add_task(
            name=name, kind="choice", metric="accuracy", domain="test", source="test",
            label_names=TASK_WORDS[name], data_checksum=f"sum-{name}",
            embedding=embedding, data=data,
        )  # fmt: skip
    return registry


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny model runs fastest on one thread, and far faster on a busy shared machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def backbone(tiny_model_dir):
    return load_backbone(str(tiny_model_dir("encoder")), device="cpu")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir, backbone):
    """URL of a registry whose three tasks are trained, plus a fourth one left pending."""
    url = f"sqlite:///{tmp_path_factory.mktemp('predict') / 'reg.db'}"
    registry = register(url, tiny_model_dir("encoder"), backbone, list(TASK_WORDS))
    train_stream(registry, TrainConfig(**FAST), backbone=backbone)
    data = task_data("truth", seed=1)
    registry.add_task(
        name="pending", kind="choice", metric="accuracy", domain="test", source="test",
        label_names=["true", "false"], data_checksum="sum-pending",
        embedding=torch.ones(32), data=data,
    )  # fmt: skip
    registry.close()
    return url


@pytest.fixture(scope="module")
def predictor(trained, backbone):
    with Registry.open(trained) as registry:
        return Predictor(registry, backbone=backbone, batch_size=4)


def test_a_mixed_batch_scores_like_one_batch_per_task(predictor):
    # Rows of the three tasks in turn: sentiment, topic, truth, sentiment, ...
    mixed = [{"task": task, "input": TEXTS[task][index]} for index in range(3) for task in TEXTS]
    predictor.batch_size = 9  # every row in one forward pass
    together = predictor.predict(mixed)
    predictor.batch_size = 4

    for task, texts in TEXTS.items():
        alone = predictor.predict([{"task": task, "input": text} for text in texts])
        mine = [row for row in together if row["task"] == task]
        for left, right in zip(mine, alone, strict=True):
            assert left["prediction"] == right["prediction"]
            torch.testing.assert_close(
                torch.tensor(list(left["scores"].values())),
                torch.tensor(list(right["scores"].values())),
            )


def test_predictions_reproduce_the_served_test_scores(trained, predictor):
    registry = Registry.open(trained)
    for name in TASK_WORDS:
        rows = task_data(name)["test"]
        results = predictor.predict([{"task": name, "input": row["input"]} for row in rows])
        predicted = [result["prediction"] for result in results]
        accuracy = sum(p == row["output"] for p, row in zip(predicted, rows, strict=True)) / len(
            rows
        )
        assert accuracy == pytest.approx(registry.task_prompt(name).test_score)


def test_routing_picks_the_task_with_the_nearest_embedding(trained, predictor, backbone):
    registry = Registry.open(trained)
    texts = [text for group in TEXTS.values() for text in group]
    results = predictor.predict([{"input": text} for text in texts])

    for text, result in zip(texts, results, strict=True):
        nearest, similarity = registry.similar_to(backbone.embed_texts([text])[0], k=2)[0]
        if nearest == "pending":  # trained tasks only
            nearest, similarity = registry.similar_to(backbone.embed_texts([text])[0], k=2)[1]
        assert (result["task"], result["routed"]) == (nearest, True)
        assert result["similarity"] == pytest.approx(similarity, abs=1e-5)
        assert set(result["scores"]) == set(TASK_WORDS[nearest])


def test_router_picks_the_constructed_nearest_embedding():
    embeddings = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    router = TaskRouter(names=["a", "b", "c"], embeddings=embeddings * 5)
    states = torch.tensor([[0.1, 0.9, 0.2], [3.0, 0.0, 0.1], [0.0, -1.0, 0.5]])

    names, similarity = router.route(states)

    assert names == ["b", "a", "c"]
    torch.testing.assert_close(similarity, torch.nn.functional.normalize(states, dim=-1).max(1)[0])


def test_router_rejects_embeddings_that_do_not_fit_the_names():
    with pytest.raises(ValueError, match=r"embeddings of shape \(2, 3\) do not fit 3 task names"):
        TaskRouter(names=["a", "b", "c"], embeddings=torch.zeros(2, 3))


def test_bad_rows_are_reported_by_line_and_the_rest_predicted(predictor):
    rows = [
        {"task": "sentiment", "input": "a good movie"},
        {"task": "sentimnt", "input": "a good movie"},
        {"task": "topic"},
        {"task": "pending", "input": "true"},
        ["not", "an", "object"],
        {"task": "truth", "input": "false news", "options": ["true", "true"]},
        {"task": "truth", "input": "false news", "options": ["yes", "no"]},
    ]
    results = predictor.predict(rows, lines=[1, 2, 3, 5, 6, 7, 9])

    assert [r["line"] for r in results] == [1, 2, 3, 5, 6, 7, 9]
    assert [r.get("error") for r in results] == [
        None,
        "task 'sentimnt' is not registered (did you mean: sentiment?)",
        "'input' is missing: expected a non-empty string",
        "task 'pending' is registered but not trained yet, so it has no prompt to serve "
        "(run dpf-cl train-stream)",
        'expected an object {"task"?, "input", "options"?}, got list',
        "'options' ['true', 'true'] repeat a value: expected distinct options",
        None,
    ]
    assert results[0]["prediction"] in TASK_WORDS["sentiment"]
    assert list(results[6]["scores"]) == ["yes", "no"]


def test_a_registry_without_trained_tasks_cannot_predict(tmp_path, tiny_model_dir, backbone):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    registry = register(url, tiny_model_dir("encoder"), backbone, ["topic"])
    with pytest.raises(ConfigError, match="has no trained task to predict with"):
        Predictor(registry, backbone=backbone)


def test_require_task_names_close_matches(predictor):
    with pytest.raises(TaskNotFoundError, match=r"task 'topik' is not registered \(did you mean"):
        predictor.require_task("topik")


# -- the command line ------------------------------------------------------------------------


def expected_line(result: dict) -> str:
    shown = dict(result)
    if "similarity" in shown:
        shown["similarity"] = round(shown["similarity"], 4)
    if "scores" in shown:
        shown["scores"] = {k: round(v, 4) for k, v in shown["scores"].items()}
    return json.dumps(shown) + "\n"


def test_cli_predicts_texts_of_one_task(trained, predictor):
    texts = ["the movie was good", "a bad film"]
    args = ["predict", "--registry", trained, "--task", "sentiment", *texts]
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    expected = predictor.predict([{"task": "sentiment", "input": text} for text in texts])
    assert result.stdout == "".join(expected_line(row) for row in expected)
    assert json.loads(result.stdout.splitlines()[0])["routed"] is False


def test_cli_predicts_a_mixed_file_and_reports_bad_lines(tmp_path, trained, predictor):
    lines = [
        json.dumps({"task": "topic", "input": "money and the bank"}),
        json.dumps({"input": "the answer is true"}),
        "",
        json.dumps({"task": "nope", "input": "x"}),
        "{not json",
        json.dumps({"task": "sentiment", "input": "a bad film", "options": ["bad", "good"]}),
    ]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"

    result = CliRunner().invoke(
        main, ["predict", "--registry", trained, "--input-file", str(path), "--out", str(out)]
    )

    assert result.exit_code == 1
    good = predictor.predict([json.loads(lines[i]) for i in (0, 1, 5)], lines=[1, 2, 6])
    bad = [
        '{"line": 4, "task": "nope", "routed": false, "error": "task \'nope\' is not '
        'registered"}\n',
        '{"line": 5, "task": null, "routed": false, "error": "not valid JSON (Expecting property '
        'name enclosed in double quotes at column 2)"}\n',
    ]
    good_lines = [expected_line(row) for row in good]
    assert out.read_text(encoding="utf-8") == "".join([*good_lines[:2], *bad, good_lines[2]])
    assert result.stderr == (
        "line 4: task 'nope' is not registered\n"
        "line 5: not valid JSON (Expecting property name enclosed in double quotes at column 2)\n"
        "2 of 5 rows failed; the others were predicted\n"
    )


def test_cli_task_fills_rows_without_one(tmp_path, trained, predictor):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"input": "very good service"}\n', encoding="utf-8")

    args = ["--task", "sentiment", "--input-file", str(path), "--threads", "1"]
    result = CliRunner().invoke(main, ["predict", "--registry", trained, *args])

    assert result.exit_code == 0, result.output
    expected = predictor.predict([{"task": "sentiment", "input": "very good service"}])
    assert result.stdout == expected_line(expected[0])


def test_cli_unknown_task_is_one_clear_line(trained):
    result = CliRunner().invoke(main, ["predict", "--registry", trained, "--task", "sentimnt", "x"])

    assert result.exit_code == 1
    assert result.output == "Error: task 'sentimnt' is not registered (did you mean: sentiment?)\n"


def test_cli_untrained_task_is_one_clear_line(trained):
    result = CliRunner().invoke(main, ["predict", "--registry", trained, "--task", "pending", "x"])

    assert result.exit_code == 1
    assert result.output == (
        "Error: task 'pending' is registered but not trained yet, so it has no prompt to serve "
        "(run dpf-cl train-stream)\n"
    )


def test_cli_needs_texts_or_a_file(trained):
    result = CliRunner().invoke(main, ["predict", "--registry", trained])

    assert result.exit_code == 2
    assert "give either TEXTS or --input-file (one of them, not both)" in result.output


def test_cli_empty_or_missing_file_is_one_clear_line(tmp_path, trained):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")

    result = CliRunner().invoke(
        main, ["predict", "--registry", trained, "--input-file", str(empty)]
    )
    assert result.exit_code == 1
    assert result.output == (
        f"Error: --input-file '{empty}' holds no rows: expected one JSON object a line\n"
    )

    missing = tmp_path / "missing.jsonl"
    result = CliRunner().invoke(
        main, ["predict", "--registry", trained, "--input-file", str(missing)]
    )
    assert result.exit_code == 1
    assert result.output == f"Error: --input-file '{missing}': no such file\n"
