"""Continual-learning metrics computed from an accuracy matrix.

Notation:

- ``T``: number of tasks trained so far, in stream order ``0 … T-1``; it is the number of rows of
  the matrix.
- ``R[i][j]``: score on task ``j`` after training task ``i`` (accuracy, or whatever metric the task
  uses; every metric below is in the same units). A cell is ``None`` when task ``j`` was not
  evaluated at that point; rows may also be shorter than ``T`` for the same reason. Cells above the
  diagonal (``j > i``) are scores on tasks not trained yet, needed only for forward transfer.
  Columns past ``T - 1`` (later tasks of the stream) are ignored.
- ``b[j]``: baseline score of task ``j`` before any training (zero-shot or at initialisation).

Definitions, after Lopez-Paz & Ranzato (2017, GEM) and Chaudhry et al. (2018):

- average accuracy ``ACC = 1/T · Σ_{j<T} R[T-1][j]``;
- backward transfer ``BWT = 1/(T-1) · Σ_{j<T-1} (R[T-1][j] - R[j][j])``, negative when the
  model forgets;
- forward transfer ``FWT = 1/(T-1) · Σ_{0<j<T} (R[j-1][j] - b[j])``, the gain on a task from
  earlier training before that task is trained;
- forgetting ``F = 1/(T-1) · Σ_{j<T-1} (max_{j≤i<T-1} R[i][j] - R[T-1][j])``, the drop from each
  task's best score to its final one. Avalanche's ``Forgetting`` metric instead subtracts the final
  score from the first one, ``R[j][j]``; that is ``-BWT``.

A metric is ``None`` where it is undefined: BWT, FWT and forgetting for a single task, FWT without
a baseline, and any metric that needs a ``None`` cell. Forgetting only needs the final score and at
least one earlier score of each task; the maximum runs over the earlier scores present.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from numbers import Real

logger = logging.getLogger(__name__)

Matrix = Sequence[Sequence[float | None]]


def num_tasks(R: Matrix) -> int:
    """The number of tasks trained so far, ``T``, after checking the matrix.

    Args:
        R: Accuracy matrix, ``R[i][j]`` the score on task ``j`` after training task ``i``.

    Returns:
        ``T``, the number of rows.

    Raises:
        ValueError: If the matrix has no rows or a cell is neither a number nor ``None``.
    """
    if len(R) == 0:
        raise ValueError("accuracy matrix R is empty; expected one row per trained task")
    for i, row in enumerate(R):
        for j, value in enumerate(row):
            if value is not None and (isinstance(value, bool) or not isinstance(value, Real)):
                raise ValueError(f"R[{i}][{j}] is {value!r}; expected a number or None")
    return len(R)


def _cell(R: Matrix, i: int, j: int) -> float | None:
    row = R[i]
    if j >= len(row) or row[j] is None:
        return None
    return float(row[j])


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    if len(present) < len(values):
        return None
    return sum(present) / len(present)


def average_accuracy(R: Matrix) -> float | None:
    """Mean final score over the ``T`` tasks trained, ``ACC``.

    Args:
        R: Accuracy matrix (see the module docstring).

    Returns:
        ``ACC``, or ``None`` if a cell of the last row is missing.

    Raises:
        ValueError: If the matrix is empty or holds a value that is not a number.
    """
    T = num_tasks(R)
    return _mean([_cell(R, T - 1, j) for j in range(T)])


def backward_transfer(R: Matrix) -> float | None:
    """Mean change of each earlier task's score from just after its training to the end, ``BWT``.

    Args:
        R: Accuracy matrix (see the module docstring).

    Returns:
        ``BWT``, or ``None`` for a single task or when a needed cell is missing.

    Raises:
        ValueError: If the matrix is empty or holds a value that is not a number.
    """
    T = num_tasks(R)
    if T < 2:
        return None
    diffs = [_difference(_cell(R, T - 1, j), _cell(R, j, j)) for j in range(T - 1)]
    return _mean(diffs)


def forward_transfer(R: Matrix, baseline: Sequence[float | None] | None) -> float | None:
    """Mean gain on each task from training on the tasks before it, ``FWT``.

    Args:
        R: Accuracy matrix (see the module docstring); needs the cells ``R[j-1][j]``.
        baseline: ``b[j]``, the score of each task before any training.

    Returns:
        ``FWT``, or ``None`` for a single task, without a baseline, or when a needed cell or
        baseline value is missing.

    Raises:
        ValueError: If the matrix is empty or holds a value that is not a number.
    """
    T = num_tasks(R)
    if T < 2 or baseline is None:
        return None
    base = [float(b) if b is not None else None for b in baseline]
    base += [None] * (T - len(base))
    diffs = [_difference(_cell(R, j - 1, j), base[j]) for j in range(1, T)]
    return _mean(diffs)


def forgetting(R: Matrix) -> float | None:
    """Mean drop from each earlier task's best score to its final score (Chaudhry et al., 2018).

    Args:
        R: Accuracy matrix (see the module docstring).

    Returns:
        Forgetting ``F`` (positive when scores dropped), or ``None`` for a single task or when a
        task lacks its final score or every earlier score.

    Raises:
        ValueError: If the matrix is empty or holds a value that is not a number.
    """
    T = num_tasks(R)
    if T < 2:
        return None
    drops = []
    for j in range(T - 1):
        earlier = [_cell(R, i, j) for i in range(j, T - 1)]
        present = [value for value in earlier if value is not None]
        best = max(present) if present else None
        drops.append(_difference(best, _cell(R, T - 1, j)))
    return _mean(drops)


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def summarize(R: Matrix, baseline: Sequence[float | None] | None = None) -> dict[str, float | None]:
    """All four metrics of an accuracy matrix.

    Args:
        R: Accuracy matrix (see the module docstring).
        baseline: ``b[j]``, the score of each task before any training; needed for FWT.

    Returns:
        ``{"acc": ..., "bwt": ..., "fwt": ..., "forgetting": ...}``, ``None`` where undefined.

    Raises:
        ValueError: If the matrix is empty or holds a value that is not a number.
    """
    summary = {
        "acc": average_accuracy(R),
        "bwt": backward_transfer(R),
        "fwt": forward_transfer(R, baseline),
        "forgetting": forgetting(R),
    }
    logger.debug("Metrics over %d tasks: %s", len(R), summary)
    return summary
