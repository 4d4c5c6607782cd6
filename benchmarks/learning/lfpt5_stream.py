"""Suite 1: few-shot lifelong text classification on LFPT5, every method side by side.

The stream: AG News, Amazon, DBpedia and Yahoo Answers (LFPT5's 16-per-class samples) in the
three standard orders, each order on the three data samples (``0_42``, ``1_142``, ``2_242``).
Every method trains on the same frozen backbone, the same tasks, the same number of optimiser
steps per task (``--steps``, batch 16), the same learning rate and the same seed:

* ``dpf-<policy>``: Dynamic Prompt Fusion with each loss-weighting policy (equal, uncertainty,
  gradnorm, dwa) and the package's other defaults (2 prompts per task, replay 64, tau 0.9);
* ``naive``, ``replay``, ``ewc``, ``lwf``, ``separate``: the package's baselines;
* ``joint``: all tasks at once (not continual; an upper bound), ``steps x tasks`` steps in all;
* ``peft-mpt``: PEFT's multitask prompt (``references.PeftMultitaskPrompt``), trained jointly on
  all tasks for ``steps x tasks`` steps: the outside reference, also not continual.

Reported for each method, as mean ± standard deviation over the runs (orders x samples): ACC,
BWT, FWT and forgetting of the live and the served accuracy matrices (points, 0-100). FWT is
measured against the bare backbone's zero-shot score. Joint methods have ACC only.

Learning rates come from ``calibration.py`` (chosen on AG News dev); EWC's lambda (100), LwF's
alpha (1) and temperature (2) and DPF's settings are the package defaults, not tuned. No test
split is looked at to choose anything.

Example::

    .venv/bin/python benchmarks/learning/lfpt5_stream.py --quick
"""

from __future__ import annotations

import os
import time

import harness
import references

POLICIES = ("equal", "uncertainty", "gradnorm", "dwa")
METHODS = (
    *(f"dpf-{p}" for p in POLICIES),
    "naive",
    "replay",
    "ewc",
    "lwf",
    "separate",
    "joint",
    "peft-mpt",
)
QUICK_METHODS = (
    "dpf-uncertainty",
    "naive",
    "replay",
    "ewc",
    "lwf",
    "separate",
    "joint",
    "peft-mpt",
)
METRICS = ("acc", "bwt", "fwt", "forgetting")
JOINT = ("joint", "peft-mpt")

# The full preset is the protocol (3 orders x 3 samples, every method) at a budget a
# 2-core machine finishes in about two hours with ``--jobs 2`` (measured: 119.8 min, about 2 min
# per run of four tasks in each of two one-thread processes): 24 steps per task, 8 test and 4 dev
# examples per class. Raise ``--steps`` and the caps when there is time (80 steps and whole
# splits are the calibration's budget; many hours here).
FULL = {
    "orders": [1, 2, 3],
    "samples": list(harness.LFPT5_SAMPLES),
    "methods": list(METHODS),
    "steps": 24,
    "test_per_class": 8,
    "dev_per_class": 4,
    "max_length": 64,
}
QUICK = {
    "orders": [1],
    "samples": ["0_42"],
    "methods": list(QUICK_METHODS),
    "steps": 10,
    "test_per_class": 5,
    "dev_per_class": 2,
    "max_length": 64,
}


def settings(args) -> dict:
    """The preset (quick or full) with any option given on the command line on top."""
    chosen = dict(QUICK if args.quick else FULL)
    for key in ("orders", "samples", "methods", "steps", "test_per_class", "dev_per_class"):
        if getattr(args, key) is not None:
            chosen[key] = getattr(args, key)
    unknown = set(chosen["methods"]) - set(METHODS)
    if unknown:
        raise SystemExit(f"--methods: unknown {sorted(unknown)}; expected some of {METHODS}")
    return chosen


def build_tasks(session, order: int, sample: str, plan: dict) -> list:
    return [
        harness.cap_task(
            harness.lfpt5_task(session, name, sample),
            test=plan["test_per_class"],
            dev=plan["dev_per_class"],
        )
        for name in harness.LFPT5_ORDERS[order]
    ]


def run_method(session, method: str, tasks: list, plan: dict, rates: dict, seed: int) -> dict:
    """One method on one stream: its matrices and summaries as a plain dict."""
    steps = plan["steps"]
    if method == "peft-mpt":
        return run_mpt(session, tasks, steps * len(tasks), rates["mpt_lr"], seed)
    strategy, _, policy = method.partition("-")
    config = harness.train_config(
        session,
        strategy=strategy,
        max_steps=steps * len(tasks) if strategy == "joint" else steps,
        lr=rates["lr"],
        loss_weighting=policy or "uncertainty",
        seed=seed,
    )
    return harness.run_stream(session, tasks, config).to_dict()


def run_mpt(session, tasks: list, steps: int, lr: float, seed: int) -> dict:
    """PEFT's multitask prompt trained on every task at once; scored on each task's test set."""
    backbone = session.backbone
    module = references.PeftMultitaskPrompt(backbone=backbone, num_tasks=len(tasks))
    train = [item for i, task in enumerate(tasks) for item in references.items_of(task, "train", i)]
    started = time.perf_counter()
    references.fit(backbone, module, train, steps=steps, lr=lr, seed=seed)
    row = [
        references.accuracy(backbone, module, references.items_of(t, "test", i))
        for i, t in enumerate(tasks)
    ]
    seconds = time.perf_counter() - started  # training and test evaluation, like train_stream's
    summary = {"acc": sum(row) / len(row), "bwt": None, "fwt": None, "forgetting": None}
    return {
        "tasks": [t.name for t in tasks],
        "live": [row],
        "served": [row],
        "summary_live": summary,
        "summary_served": summary,
        "seconds": seconds,
        "config": {"steps": steps, "lr": lr, "seed": seed, "num_ranks": 1},
    }


def aggregate(runs: list[dict], methods: list[str]) -> dict:
    """Mean and standard deviation of each metric of each method over its runs."""
    table = {}
    for method in methods:
        mine = [run for run in runs if run["method"] == method]
        table[method] = {
            f"{metric}_{kind}": harness.mean_std(
                [
                    None if method in JOINT and metric != "acc" else run[f"summary_{kind}"][metric]
                    for run in mine
                ]
            )
            for metric in METRICS
            for kind in ("live", "served")
        }
        table[method]["train_seconds"] = harness.mean_std([run["seconds"] for run in mine])
    return table


def markdown(payload: dict) -> str:
    plan, table = payload["settings"], payload["table"]
    header = [
        "method",
        *(
            f"{m.upper() if m != 'forgetting' else 'F'} {k}"
            for k in ("live", "served")
            for m in METRICS
        ),
        "seconds",
    ]
    rows = []
    for method, stats in table.items():
        cells = [
            harness.points(stats[f"{m}_{k}"], signed=m in ("bwt", "fwt"))
            for k in ("live", "served")
            for m in METRICS
        ]
        rows.append([method, *cells, f"{stats['train_seconds']['mean']:.0f}"])
    caps = "full test and dev splits"
    if plan["test_per_class"]:
        caps = (
            f"test capped at {plan['test_per_class']} and dev at {plan['dev_per_class']} "
            "per class (random, seed 0)"
        )
    return (
        f"### LFPT5 few-shot lifelong text classification ({payload['mode']})\n\n"
        f"Orders {plan['orders']}, samples {plan['samples']}, {plan['steps']} steps of batch 16 "
        f"per task, lr {payload['learning_rates']['lr']:g} (PEFT MPT "
        f"{payload['learning_rates']['mpt_lr']:g}), seed {payload['seed']}, {caps}; inputs "
        f"truncated to {payload['max_length']} tokens. Points (0-100), mean ± std over "
        f"{len(plan['orders']) * len(plan['samples'])} run(s); F = forgetting; FWT is defined "
        "on the live matrix only (a task has no served prompt before it is trained); joint "
        "methods are not continual and have ACC only. Seconds: one run, training and every "
        f"evaluation (mean over runs); the runs were shared by {payload.get('jobs', 1)} "
        "process(es) of one torch thread each.\n\n" + harness.markdown_table(header, rows)
    )


def main() -> None:
    parser = harness.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, nargs="+", choices=[1, 2, 3])
    parser.add_argument("--samples", nargs="+", choices=list(harness.LFPT5_SAMPLES))
    parser.add_argument("--methods", nargs="+")
    parser.add_argument("--steps", type=int, help="optimiser steps per task")
    parser.add_argument("--test-per-class", type=int, help="test examples per class (0: all)")
    parser.add_argument("--dev-per-class", type=int, help="dev examples per class (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    harness.add_parallel_options(parser)
    args = parser.parse_args()
    plan = settings(args)
    if args.max_length is None:
        args.max_length = plan["max_length"]
    helpers = harness.spawn_helpers(args)
    session = harness.start(args)
    rates = harness.chosen_learning_rates(session)

    def run_unit(unit: tuple[int, str]) -> list[dict]:
        order, sample = unit
        tasks = build_tasks(session, order, sample, plan)
        runs = []
        for method in plan["methods"]:
            harness.logger.info("order %d, sample %s: %s", order, sample, method)
            result = run_method(session, method, tasks, plan, rates, args.seed)
            runs.append(
                {"order": order, "sample": sample, "method": method, "pid": os.getpid(), **result}
            )
            harness.logger.info(
                "  %s: %s (%.0f s)", method, result["summary_live"], result["seconds"]
            )
        return runs

    units = [(order, sample) for order in plan["orders"] for sample in plan["samples"]]
    identity = {"plan": plan, "seed": args.seed, "max_length": args.max_length, "rates": rates}
    parts = harness.run_units(
        session, "lfpt5_stream", identity, units, run_unit, worker=args.worker, helpers=helpers
    )
    if parts is None:
        return  # a helper process: the first process aggregates
    runs = [run for part in parts for run in part]

    payload = {
        "settings": plan,
        "seed": args.seed,
        "max_length": args.max_length,
        "learning_rates": rates,
        "table": aggregate(runs, plan["methods"]),
        "jobs": len({run["pid"] for run in runs}),
        "compute_seconds": round(sum(run["seconds"] for run in runs), 1),
        "runs": runs,
    }
    payload["mode"] = "quick" if args.quick else "full"
    harness.write_results(session, "lfpt5_stream", payload, markdown(payload))


if __name__ == "__main__":
    main()
