"""Tests of the continual-learning metrics and their reports, on hand-computed matrices."""

import pytest
from rich.console import Console

from dpf_continual.evaluation import (
    average_accuracy,
    backward_transfer,
    forgetting,
    format_matrix,
    format_summary,
    forward_transfer,
    matrix_to_markdown,
    summarize,
)

# Three tasks, every cell evaluated (future tasks too).
FULL = [
    [0.9, 0.2, 0.1],
    [0.7, 0.8, 0.3],
    [0.6, 0.5, 0.95],
]
BASELINE = [0.1, 0.1, 0.2]


def test_metrics_of_a_full_matrix():
    # ACC = (0.6 + 0.5 + 0.95) / 3
    assert average_accuracy(FULL) == pytest.approx(2.05 / 3)
    # BWT = ((0.6 - 0.9) + (0.5 - 0.8)) / 2
    assert backward_transfer(FULL) == pytest.approx(-0.3)
    # FWT = ((0.2 - 0.1) + (0.3 - 0.2)) / 2
    assert forward_transfer(FULL, BASELINE) == pytest.approx(0.1)
    # F = ((0.9 - 0.6) + (0.8 - 0.5)) / 2
    assert forgetting(FULL) == pytest.approx(0.3)


def test_forgetting_uses_the_best_earlier_score():
    # Task 0 improves after task 1 is trained, then drops: best 0.9, final 0.5.
    R = [[0.8], [0.9, 0.7], [0.5, 0.6, 0.9]]

    assert forgetting(R) == pytest.approx(((0.9 - 0.5) + (0.7 - 0.6)) / 2)
    assert backward_transfer(R) == pytest.approx(((0.5 - 0.8) + (0.6 - 0.7)) / 2)
    assert average_accuracy(R) == pytest.approx(2.0 / 3)


def test_future_cells_missing_leave_fwt_undefined():
    R = [[0.8, None], [0.9, 0.7], [0.5, 0.6, 0.9]]

    assert forward_transfer(R, BASELINE) is None
    assert summarize(R, BASELINE)["fwt"] is None
    assert summarize(R, BASELINE)["acc"] == pytest.approx(2.0 / 3)


def test_missing_cells_make_the_metrics_that_need_them_none():
    R = [[0.8, None, None], [None, None, None], [0.5, 0.6, None]]

    assert average_accuracy(R) is None  # final score of task 2 missing
    assert backward_transfer(R) is None  # R[1][1] missing
    # Task 1 has no earlier score at all.
    assert forgetting(R) is None


def test_forgetting_skips_missing_earlier_scores():
    R = [[0.8, None], [None, 0.7], [0.5, 0.6, 0.9]]

    assert forgetting(R) == pytest.approx(((0.8 - 0.5) + (0.7 - 0.6)) / 2)


def test_fwt_needs_a_full_baseline():
    assert forward_transfer(FULL, None) is None
    assert forward_transfer(FULL, [0.1, 0.1]) is None
    assert forward_transfer(FULL, [0.1, None, 0.2]) is None
    # b[0] is never used.
    assert forward_transfer(FULL, [None, 0.1, 0.2]) == pytest.approx(0.1)


def test_one_task():
    assert summarize([[0.7]], [0.5]) == {
        "acc": 0.7,
        "bwt": None,
        "fwt": None,
        "forgetting": None,
    }


def test_columns_of_later_tasks_are_ignored():
    assert average_accuracy([[0.5, 0.1, 0.2]]) == pytest.approx(0.5)


def test_integer_percentages():
    R = [[90, 10], [80, 70]]

    assert summarize(R, [0, 5]) == {"acc": 75.0, "bwt": -10.0, "fwt": 5.0, "forgetting": 10.0}


def test_summarize_of_full_matrix():
    summary = summarize(FULL, BASELINE)

    assert summary == pytest.approx({"acc": 2.05 / 3, "bwt": -0.3, "fwt": 0.1, "forgetting": 0.3})


def test_bad_matrices_raise():
    with pytest.raises(ValueError, match="accuracy matrix R is empty"):
        summarize([])
    with pytest.raises(ValueError, match=r"R\[0\]\[1\] is 'x'; expected a number or None"):
        average_accuracy([[0.5, "x"]])


# reports


def test_matrix_to_markdown():
    text = matrix_to_markdown(["sst2", "ag|news"], [[0.9], [0.85, 0.7]], digits=2)

    assert text == (
        "| after \\ on | sst2 | ag\\|news |\n"
        "|---|---:|---:|\n"
        "| sst2 | 0.90 | – |\n"
        "| ag\\|news | 0.85 | 0.70 |\n"
    )


def test_format_matrix_renders_every_cell():
    table = format_matrix(["sst2", "agnews", "dbpedia"], [[0.9], [0.85, 0.7]], title="live")
    console = Console(record=True, width=100)
    console.print(table)
    text = console.export_text()

    assert table.row_count == 2 and len(table.columns) == 4
    assert "live" in text and "dbpedia" in text
    assert "0.850" in text and "0.700" in text and "–" in text


def test_format_summary():
    console = Console(record=True, width=60)
    console.print(format_summary({"acc": 0.75, "fwt": None}))
    text = console.export_text()

    assert "acc" in text and "0.750" in text and "–" in text


def test_report_rejects_matrices_wider_than_the_names():
    with pytest.raises(ValueError, match="R has 2 rows but task_names has 1 names"):
        matrix_to_markdown(["sst2"], [[0.9], [0.8, 0.7]])
    with pytest.raises(ValueError, match="row 0 of R has 2 cells but task_names has 1 names"):
        format_matrix(["sst2"], [[0.9, 0.1]])
