"""Suite 3: the paper's sensitivity studies, as plots with error bars.

* Scheduler temperature tau in 0.5, 0.7, 0.9, 1.1, 1.3: Dynamic Prompt Fusion on the LFPT5
  stream of order 1 (dbpedia -> amazon -> yahoo -> ag_news); ACC of the live and the served
  matrices after the last task, mean ± std over the runs (data samples in the full run; two
  training seeds on one sample in the quick one). The registry and the scheduler both get tau.
* Number of tasks 4, 8, 12, 16, 20: Dynamic Prompt Fusion on a stream of CrossFit tasks
  (a different seeded order of the task list per run); ACC after the N-th task. Nothing in a run
  looks ahead (pool growth, scheduler rows and the replay buffer only use tasks already seen, and
  every task's randomness is seeded by its position), so ACC after N tasks of the long stream is
  what a stream of those N tasks would give; each run is therefore one stream of the largest N.

Every run uses the package defaults apart from tau, the learning rate chosen by
``calibration.py`` on AG News dev and the steps per task. Nothing is chosen on a test split.

Writes ``sensitivity.json``, ``sensitivity.md``, ``sensitivity_temperature.png`` and
``sensitivity_tasks.png``.

Example::

    .venv/bin/python benchmarks/learning/sensitivity.py --quick
"""

from __future__ import annotations

import random

import harness
from crossfit_transfer import SOURCES, TARGETS

STREAM_TASKS = (*SOURCES, *TARGETS, "rotten_tomatoes", "tweet_eval-hate")  # 20 tasks

# Budgets sized for a 2-core machine: the full preset takes about 40 minutes, the quick one
# under 15. Both cover every point the paper plots; they differ in steps, test sizes and runs.
FULL = {
    "temperatures": [0.5, 0.7, 0.9, 1.1, 1.3],
    "temperature_samples": ["0_42", "1_142", "2_242"],
    "temperature_seeds": [0],
    "task_counts": [4, 8, 12, 16, 20],
    "task_runs": 3,
    "steps": 10,
    "test_per_class": 6,
    "dev_per_class": 3,
    "max_length": 64,
}
QUICK = {
    "temperatures": [0.5, 0.7, 0.9, 1.1, 1.3],
    "temperature_samples": ["0_42"],
    "temperature_seeds": [0, 1],
    "task_counts": [4, 8, 12, 16, 20],
    "task_runs": 2,
    "steps": 5,
    "test_per_class": 3,
    "dev_per_class": 1,
    "max_length": 64,
}
KEYS = (
    "temperatures",
    "temperature_samples",
    "temperature_seeds",
    "task_counts",
    "task_runs",
    "steps",
    "test_per_class",
    "dev_per_class",
)


def temperature_runs(session, plan: dict, rates: dict) -> list[dict]:
    runs = []
    for sample in plan["temperature_samples"]:
        tasks = [
            harness.cap_task(
                harness.lfpt5_task(session, name, sample),
                test=plan["test_per_class"],
                dev=plan["dev_per_class"],
            )
            for name in harness.LFPT5_ORDERS[1]
        ]
        for seed in plan["temperature_seeds"]:
            for tau in plan["temperatures"]:
                config = harness.train_config(
                    session,
                    strategy="dpf",
                    max_steps=plan["steps"],
                    lr=rates["lr"],
                    temperature=tau,
                    seed=seed,
                )
                result = harness.run_stream(session, tasks, config)
                runs.append(
                    {
                        "temperature": tau,
                        "sample": sample,
                        "seed": seed,
                        "acc_live": result.summary_live["acc"],
                        "acc_served": result.summary_served["acc"],
                        "result": result.to_dict(),
                    }
                )
                harness.logger.info(
                    "tau %.1f, sample %s, seed %d: ACC %.3f",
                    tau,
                    sample,
                    seed,
                    result.summary_live["acc"],
                )
    return runs


def task_count_runs(session, plan: dict, rates: dict) -> list[dict]:
    longest = max(plan["task_counts"])
    runs = []
    for run in range(plan["task_runs"]):
        names = list(STREAM_TASKS)
        random.Random(run).shuffle(names)
        tasks = [
            harness.cap_task(
                harness.crossfit_task(session, name),
                test=plan["test_per_class"],
                dev=plan["dev_per_class"],
            )
            for name in names[:longest]
        ]
        config = harness.train_config(
            session, strategy="dpf", max_steps=plan["steps"], lr=rates["lr"], seed=run
        )
        result = harness.run_stream(session, tasks, config)
        acc = {}
        for count in plan["task_counts"]:
            for kind, matrix in (("live", result.live), ("served", result.served)):
                row = matrix[count - 1][:count]
                acc.setdefault(kind, {})[count] = sum(row) / count
        harness.logger.info("task-count run %d: %s", run, acc["live"])
        runs.append({"run": run, "tasks": names[:longest], "acc": acc, "result": result.to_dict()})
    return runs


def curve(runs: list[dict], xs: list, value) -> dict:
    """``{x: mean_std}`` of ``value(run, x)`` over the runs that have it."""
    return {x: harness.mean_std([value(run, x) for run in runs]) for x in xs}


def plot(path, xs: list, curves: dict[str, dict], *, xlabel: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.4), dpi=120)
    for label, points in curves.items():
        means = [100 * points[x]["mean"] for x in xs]
        errors = [100 * points[x]["std"] for x in xs]
        axes.errorbar(xs, means, yerr=errors, marker="o", capsize=4, label=label)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("ACC (points)")
    axes.set_xticks(xs)
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def markdown(payload: dict) -> str:
    plan = payload["settings"]
    temps, counts = payload["temperature"], payload["tasks"]
    temp_rows = [
        [f"{tau:g}", harness.points(temps["live"][tau]), harness.points(temps["served"][tau])]
        for tau in plan["temperatures"]
    ]
    count_rows = [
        [str(n), harness.points(counts["live"][n]), harness.points(counts["served"][n])]
        for n in plan["task_counts"]
    ]
    runs = len(plan["temperature_samples"]) * len(plan["temperature_seeds"])
    caps = (
        f"test capped at {plan['test_per_class']} and dev at {plan['dev_per_class']} per class"
        if plan["test_per_class"]
        else "full test and dev splits"
    )
    return (
        f"### Sensitivity ({payload['mode']})\n\n"
        f"{plan['steps']} steps of batch 16 per task, lr {payload['learning_rates']['lr']:g}, "
        f"{caps}, inputs truncated to {payload['max_length']} tokens. Points, mean ± std.\n\n"
        f"Scheduler temperature (LFPT5 order 1, samples {plan['temperature_samples']}, seeds "
        f"{plan['temperature_seeds']}: {runs} run(s) per point):\n\n"
        + harness.markdown_table(["tau", "ACC live", "ACC served"], temp_rows)
        + "\n![temperature](sensitivity_temperature.png)\n\n"
        f"Number of tasks (CrossFit stream, {plan['task_runs']} seeded task orders):\n\n"
        + harness.markdown_table(["tasks", "ACC live", "ACC served"], count_rows)
        + "\n![number of tasks](sensitivity_tasks.png)\n"
    )


def main() -> None:
    parser = harness.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--temperatures", type=float, nargs="+")
    parser.add_argument("--temperature-samples", nargs="+", choices=list(harness.LFPT5_SAMPLES))
    parser.add_argument("--temperature-seeds", type=int, nargs="+")
    parser.add_argument("--task-counts", type=int, nargs="+")
    parser.add_argument("--task-runs", type=int)
    parser.add_argument("--steps", type=int, help="optimiser steps per task")
    parser.add_argument("--test-per-class", type=int)
    parser.add_argument("--dev-per-class", type=int)
    parser.add_argument("--skip", choices=["temperature", "tasks"], help="leave one study out")
    args = parser.parse_args()
    plan = dict(QUICK if args.quick else FULL)
    plan.update({key: getattr(args, key) for key in KEYS if getattr(args, key) is not None})
    if max(plan["task_counts"]) > len(STREAM_TASKS):
        raise SystemExit(f"--task-counts: at most {len(STREAM_TASKS)} tasks are listed")
    if args.max_length is None:
        args.max_length = plan["max_length"]
    session = harness.start(args)
    rates = harness.chosen_learning_rates(session)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)

    temps = temperature_runs(session, plan, rates) if args.skip != "temperature" else []
    counts = task_count_runs(session, plan, rates) if args.skip != "tasks" else []
    xs_t, xs_n = plan["temperatures"], plan["task_counts"]
    temperature = {
        kind: curve(
            [r for r in temps],
            xs_t,
            lambda run, x, kind=kind: run[f"acc_{kind}"] if run["temperature"] == x else None,
        )
        for kind in ("live", "served")
    }
    tasks = {
        kind: curve(counts, xs_n, lambda run, x, kind=kind: run["acc"][kind][x])
        for kind in ("live", "served")
    }
    if temps:
        plot(
            out / "sensitivity_temperature.png",
            xs_t,
            temperature,
            xlabel="scheduler temperature",
            title="DPF on LFPT5 order 1: ACC after the last task",
        )
    if counts:
        plot(
            out / "sensitivity_tasks.png",
            xs_n,
            tasks,
            xlabel="tasks in the stream",
            title="DPF on a CrossFit stream: ACC after N tasks",
        )
    payload = {
        "settings": plan,
        "max_length": args.max_length,
        "learning_rates": rates,
        "mode": "quick" if args.quick else "full",
        "temperature": temperature,
        "tasks": tasks,
        "temperature_runs": temps,
        "task_runs": counts,
    }
    harness.write_results(session, "sensitivity", payload, markdown(payload))


if __name__ == "__main__":
    main()
