"""Evaluation of a task stream: the accuracy matrix, ACC/BWT/FWT/forgetting, and reports."""

from dpf_continual.evaluation.metrics import (
    Matrix,
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
    num_tasks,
    summarize,
)
from dpf_continual.evaluation.report import format_matrix, format_summary, matrix_to_markdown

__all__ = [
    "Matrix",
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "format_matrix",
    "format_summary",
    "forward_transfer",
    "matrix_to_markdown",
    "num_tasks",
    "summarize",
]
