"""Routing accuracy on the LFPT5 tasks: is each test input sent to the task it came from?

Without ``--task``, ``dpf-cl predict`` sends a row to the task whose embedding ``e_t`` (the mean
pooled state of up to 64 training inputs) is nearest to the input's pooled state, by cosine
similarity. Training does not change ``e_t``, so routing is measured on registered tasks with
no training: the four LFPT5 tasks (AG News, Amazon, DBpedia, Yahoo Answers; sample ``0_42``) are
registered in a temporary registry and every test input is routed among them with
:class:`~dpf_continual.inference.TaskRouter`, the router the Predictor uses.

Reads ``$DPF_DATA_ROOT/lfpt5_textcls`` (or ``--data-root``); ``--quick`` routes 100 test inputs
per task (drawn with seed 0) instead of all 3,300. The speed suite (``speed_suite.py``) runs
this too and keeps the result in ``results/speed.json``.

Example::

    DPF_DATA_ROOT=../shared/data .venv/bin/python benchmarks/routing.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

LFPT5 = {
    "lfpt5-ag-news": "ag_news_csv",
    "lfpt5-amazon": "amazon_review_full_csv",
    "lfpt5-dbpedia": "dbpedia_csv",
    "lfpt5-yahoo": "yahoo_answers_csv",
}
QUICK_PER_TASK = 100

console = Console()
progress = Console(stderr=True)


def routing_accuracy(
    data_root: Path, *, backbone=None, per_task: int | None = None, seed: int = 0
) -> dict:
    """Register the LFPT5 tasks in a temporary registry and route their test inputs.

    Args:
        data_root: The shared data folder (holding ``lfpt5_textcls``).
        backbone: A loaded MiniLM backbone (loaded here when ``None``).
        per_task: Route this many test inputs per task (all when ``None``).
        seed: Seed of that sample.

    Returns:
        Accuracy overall and per task, the confusion counts, and sizes.
    """
    from dpf_continual.backbones import DEFAULT_BACKBONE, load_backbone
    from dpf_continual.inference import TaskRouter
    from dpf_continual.registry import Registry
    from dpf_continual.tasks import load_task, register_task

    backbone = backbone or load_backbone(DEFAULT_BACKBONE, device="cpu")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        registry = Registry.init(
            f"sqlite:///{folder}/routing.db",
            backbone=DEFAULT_BACKBONE,
            hidden_size=backbone.hidden_size,
        )
        tests = {}
        for name, subfolder in LFPT5.items():
            task = load_task(name, data=str(data_root / "lfpt5_textcls" / subfolder), seed=42)
            register_task(registry, task, backbone)
            inputs = [example.input for example in task.splits["test"]]
            if per_task is not None and per_task < len(inputs):
                inputs = random.Random(f"{seed}-{name}").sample(inputs, per_task)
            tests[name] = inputs
        router = TaskRouter.from_registry(registry, list(LFPT5))
        registry.close()

    confusion = {name: dict.fromkeys(LFPT5, 0) for name in LFPT5}
    for name, inputs in tests.items():
        progress.log(f"routing {len(inputs)} test inputs of {name}")
        routed, _ = router.route(backbone.embed_texts(inputs, batch_size=64))
        for chosen in routed:
            confusion[name][chosen] += 1
    correct = sum(confusion[name][name] for name in LFPT5)
    total = sum(len(inputs) for inputs in tests.values())
    return {
        "backbone": DEFAULT_BACKBONE,
        "sample": "0_42",
        "inputs_per_task": {name: len(inputs) for name, inputs in tests.items()},
        "accuracy": round(correct / total, 4),
        "per_task": {name: round(confusion[name][name] / len(tests[name]), 4) for name in LFPT5},
        "confusion": confusion,
        "seconds": round(time.perf_counter() - started, 1),
    }


def render(result: dict) -> Table:
    table = Table(title=f"Routing on LFPT5 (accuracy {100 * result['accuracy']:.1f}%)")
    table.add_column("true task \\ routed to")
    for name in LFPT5:
        table.add_column(name.removeprefix("lfpt5-"), justify="right")
    table.add_column("accuracy", justify="right")
    for name, row in result["confusion"].items():
        cells = [str(row[other]) for other in LFPT5]
        table.add_row(name, *cells, f"{100 * result['per_task'][name]:.1f}%")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        epilog="Example: DPF_DATA_ROOT=../shared/data .venv/bin/python benchmarks/routing.py",
    )
    parser.add_argument("--data-root", type=Path, default=os.environ.get("DPF_DATA_ROOT"))
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_PER_TASK} test inputs per task"
    )
    parser.add_argument("--out", type=Path, help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    if args.data_root is None:
        parser.error("set DPF_DATA_ROOT or pass --data-root (the shared data folder)")
    result = routing_accuracy(args.data_root, per_task=QUICK_PER_TASK if args.quick else None)
    console.print(render(result))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
