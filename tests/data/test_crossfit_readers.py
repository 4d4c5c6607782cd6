"""CrossFit TSV and MetaICL JSONL: files, naming, k/seed selection and DPF_CROSSFIT_ROOT."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpf_continual.data import resolve_task
from dpf_continual.data.crossfit import parse_gym_name, read_crossfit_tsv, read_metaicl_jsonl
from dpf_continual.errors import DataFormatError, TaskSourceNotFoundError


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test here may reach the hub."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("DPF_CROSSFIT_ROOT", raising=False)


def test_gym_file_names_are_parsed():
    parsed = parse_gym_name(Path("tweet_eval-hate_16_100_dev.jsonl"))

    assert (parsed.task, parsed.k, parsed.seed, parsed.split, parsed.ext) == (
        "tweet_eval-hate", 16, 100, "dev", "jsonl",
    )  # fmt: skip
    assert parse_gym_name(Path("train.jsonl")) is None


def test_crossfit_tsv_reads_input_and_first_output(write):
    path = write("t.tsv", "question one\tanswer\tother answer\nquestion two\tsecond\n")

    records = read_crossfit_tsv(path)

    assert [(r.input, r.output, r.where) for r in records] == [
        ("question one", "answer", f"{path}: line 1"),
        ("question two", "second", f"{path}: line 2"),
    ]


def test_crossfit_tsv_without_a_tab_names_the_line(write):
    path = write("t.tsv", "fine\tyes\nno tab here\n")

    with pytest.raises(DataFormatError, match=r"t\.tsv: line 2: expected 'input<TAB>output'"):
        read_crossfit_tsv(path)


def test_metaicl_rows_and_their_errors(write, as_jsonl):
    good = write(
        "g.jsonl", as_jsonl([{"task": "t", "input": "i", "output": "a", "options": ["a"]}])
    )
    assert read_metaicl_jsonl(good)[0].options == ("a",)

    cases = [
        ({"input": "i"}, r"line 1: key 'output' is missing; expected a string"),
        ({"input": "i", "output": 3}, r"line 1: key 'output' is a int"),
        ({"input": "i", "output": "a", "options": "a,b"}, r"'options' must be a list of strings"),
    ]
    for row, message in cases:
        with pytest.raises(DataFormatError, match=message):
            read_metaicl_jsonl(write("bad.jsonl", as_jsonl([row])))


def test_metaicl_folder_by_path(gym):
    folder = gym("toy_task", options=("no", "yes"))

    task = resolve_task("toy_task", data=folder, k=4)

    assert task.split_sizes() == {"train": 4, "dev": 4, "test": 6}
    assert task.spec.kind == "choice"
    assert task.spec.label_names == ("no", "yes")
    assert task.spec.source == f"metaicl:{folder} (k=4, seed=100)"


def test_name_is_looked_up_under_the_crossfit_root(gym, monkeypatch):
    folder = gym("toy_task", seeds=(100, 13))
    monkeypatch.setenv("DPF_CROSSFIT_ROOT", str(folder.parent))

    task = resolve_task("toy_task", k=4, seed=13)

    assert task.splits["train"][0].input == "toy_task example 13"
    assert "test file of seed 100" in task.spec.source


def test_root_may_hold_the_files_directly(gym, monkeypatch):
    folder = gym("toy_task")
    monkeypatch.setenv("DPF_CROSSFIT_ROOT", f"/does/not/exist:{folder}")

    assert resolve_task("toy_task", k=4).split_sizes()["train"] == 4


def test_missing_test_file_means_dev_is_test(gym):
    task = resolve_task("toy_task", data=gym(test=None), k=4)

    assert task.splits["test"] == task.splits["dev"]
    assert task.spec.source.endswith("test=dev (no test split)")


def test_jsonl_is_preferred_over_tsv(gym):
    gym(ext="tsv")
    folder = gym(ext="jsonl")

    assert resolve_task("toy_task", data=folder, k=4).spec.source.startswith("metaicl:")


def test_crossfit_tsv_folder_infers_the_label_set(gym):
    task = resolve_task("toy_task", data=gym(ext="tsv", options=("b", "a")), k=4)

    assert task.spec.source.startswith("crossfit:")
    assert task.spec.label_names == ("a", "b")


def test_one_gym_file_selects_its_k_and_seed(gym):
    folder = gym(seeds=(100, 13))

    task = resolve_task("renamed", data=folder / "toy_task_4_13_train.jsonl")

    assert task.name == "renamed"
    assert task.spec.source == f"metaicl:{folder} (k=4, seed=13); test file of seed 100"


def test_unavailable_k_or_seed_lists_what_exists(gym):
    folder = gym(seeds=(100, 13))

    with pytest.raises(
        DataFormatError,
        match=r"no train file for k=16, seed=21; available: "
        r"k=4 seed=13, k=4 seed=100",
    ):
        resolve_task("toy_task", data=folder, k=16, seed=21)


def test_a_folder_with_several_tasks_needs_the_name(gym):
    gym("first_task", root="mixed", flat=True)
    root = gym("second_task", root="mixed", flat=True)

    assert resolve_task("first_task", data=root, k=4).name == "first_task"
    with pytest.raises(DataFormatError, match=r"holds the files of several tasks"):
        resolve_task("third_task", data=root, k=4)


def test_output_outside_options_names_file_and_line(gym, write, as_jsonl):
    folder = gym()
    row = {"task": "toy_task", "input": "x", "output": "maybe", "options": ["no", "yes"]}
    write(f"{folder.parent.name}/toy_task/toy_task_4_100_dev.jsonl", as_jsonl([row]))

    with pytest.raises(
        DataFormatError,
        match=r"toy_task_4_100_dev\.jsonl: line 1: output "
        r"'maybe' is not among the options",
    ):
        resolve_task("toy_task", data=folder, k=4)


def test_unknown_name_offline_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("DPF_CROSSFIT_ROOT", str(tmp_path))

    with pytest.raises(TaskSourceNotFoundError) as raised:
        resolve_task("glue-rte")

    message = str(raised.value)
    assert "\n" not in message
    assert f"looked in DPF_CROSSFIT_ROOT={tmp_path} for glue-rte/glue-rte_16_100_train" in message
    assert "hub is not reachable (HF_HUB_OFFLINE is set)" in message
    assert "point --data at the task's files" in message


def test_unknown_name_without_recipe_suggests_close_names():
    with pytest.raises(
        TaskSourceNotFoundError,
        match=r"DPF_CROSSFIT_ROOT \(unset\).*no built-in "
        r"hub recipe.*did you mean: glue-rte",
    ):
        resolve_task("glue-rtf")


def test_missing_path_and_unrecognised_folder(tmp_path, write):
    with pytest.raises(TaskSourceNotFoundError, match=r"--data .*nowhere: no such file or folder"):
        resolve_task("toy", data=tmp_path / "nowhere")
    write("odd/readme.md", "hello")
    with pytest.raises(DataFormatError, match=r"no task data recognised; expected CrossFit"):
        resolve_task("toy", data=tmp_path / "odd")


def test_empty_split_file_names_the_file(gym, write):
    folder = gym()
    write(f"{folder.parent.name}/toy_task/toy_task_4_100_dev.jsonl", "")

    with pytest.raises(DataFormatError, match=r"toy_task_4_100_dev\.jsonl: the file is empty"):
        resolve_task("toy_task", data=folder, k=4)


def test_header_only_table_has_no_examples(write):
    path = write("rows.csv", "input,output\n")

    with pytest.raises(DataFormatError, match=r"rows\.csv: split 'train' has no examples"):
        resolve_task("rows", data=path)
