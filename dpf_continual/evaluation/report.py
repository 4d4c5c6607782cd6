"""Accuracy matrices and their metrics as rich tables (for the CLI) and Markdown (for reports).

Row ``i`` of a matrix is "after training task ``i``", column ``j`` is "score on task ``j``"; see
:mod:`dpf_continual.evaluation.metrics` for the notation. Missing cells print as a dash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table

from dpf_continual.evaluation.metrics import Matrix, num_tasks

_MISSING = "–"
_CORNER = "after \\ on"


def _check_shape(task_names: Sequence[str], R: Matrix) -> None:
    T = num_tasks(R)
    if T > len(task_names):
        raise ValueError(
            f"R has {T} rows but task_names has {len(task_names)} names; expected a name per task"
        )
    for i, row in enumerate(R):
        if len(row) > len(task_names):
            raise ValueError(
                f"row {i} of R has {len(row)} cells but task_names has {len(task_names)} names"
            )


def _format(value: float | None, digits: int) -> str:
    return _MISSING if value is None else f"{value:.{digits}f}"


def _cells(task_names: Sequence[str], row: Sequence[float | None], digits: int) -> list[str]:
    padded = list(row) + [None] * (len(task_names) - len(row))
    return [_format(value, digits) for value in padded]


def format_matrix(
    task_names: Sequence[str], R: Matrix, *, digits: int = 3, title: str | None = None
) -> Table:
    """The accuracy matrix as a rich table, one row per trained task.

    Args:
        task_names: Name of each task in stream order; one column each.
        R: Accuracy matrix, ``R[i][j]`` the score on task ``j`` after training task ``i``.
        digits: Digits after the decimal point.
        title: Title printed above the table.

    Returns:
        A :class:`rich.table.Table` to print with a rich console.

    Raises:
        ValueError: If ``R`` is empty, holds a value that is not a number, or has more rows or
            columns than there are task names.
    """
    _check_shape(task_names, R)
    table = Table(title=title)
    table.add_column(_CORNER, style="bold")
    for name in task_names:
        table.add_column(name, justify="right")
    for name, row in zip(task_names, R, strict=False):
        table.add_row(name, *_cells(task_names, row, digits))
    return table


def matrix_to_markdown(task_names: Sequence[str], R: Matrix, *, digits: int = 3) -> str:
    """The accuracy matrix as a Markdown table, one row per trained task.

    Args:
        task_names: Name of each task in stream order; one column each.
        R: Accuracy matrix, ``R[i][j]`` the score on task ``j`` after training task ``i``.
        digits: Digits after the decimal point.

    Returns:
        The table, lines joined by newlines, ending with a newline.

    Raises:
        ValueError: If ``R`` is empty, holds a value that is not a number, or has more rows or
            columns than there are task names.
    """
    _check_shape(task_names, R)
    names = [name.replace("|", "\\|") for name in task_names]
    lines = [
        "| " + " | ".join([_CORNER, *names]) + " |",
        "|" + "---|" + "---:|" * len(names),
    ]
    for name, row in zip(names, R, strict=False):
        lines.append("| " + " | ".join([name, *_cells(names, row, digits)]) + " |")
    return "\n".join(lines) + "\n"


def format_summary(
    summary: Mapping[str, float | None], *, digits: int = 3, title: str | None = None
) -> Table:
    """Metrics such as the output of :func:`~dpf_continual.evaluation.metrics.summarize`.

    Args:
        summary: Metric name to value (``None`` where undefined).
        digits: Digits after the decimal point.
        title: Title printed above the table.

    Returns:
        A two-column :class:`rich.table.Table`: metric and value.
    """
    table = Table(title=title)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in summary.items():
        table.add_row(name, _format(value, digits))
    return table
