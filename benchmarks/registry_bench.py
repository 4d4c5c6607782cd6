"""Registry benchmark: prompt lookups in a warm process and a cold ``dpf-cl prompt --out``.

Builds a registry of ``--tasks`` tasks with ``--versions`` pool versions, each holding a prompt
``[L, d]`` for every task (so ``tasks x versions`` prompts in all), then measures:

- the latency of ``Registry.prompt()`` in a warm process (served, latest and a numbered version),
  p50 and p99 over random tasks;
- the wall time of a cold ``dpf-cl prompt --task X --out f.safetensors`` (a new process each run).

Goals: p50 under 2 ms; the cold CLI under 1.5 s. Prints a table and writes
``benchmarks/results/registry.json``.

Usage::

    python benchmarks/registry_bench.py                      # 1,000 tasks x 10 versions
    python benchmarks/registry_bench.py --tasks 100 --versions 3   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from dpf_continual.registry import DEFAULT_BACKBONE, Registry, TaskPromptRecord

RESULTS = Path(__file__).parent / "results" / "registry.json"
P50_GOAL_MS = 2.0
CLI_GOAL_S = 1.5
POOL = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks to register")
    parser.add_argument("--versions", type=int, default=10, help="pool versions to write")
    parser.add_argument("--length", type=int, default=20, help="prompt length L")
    parser.add_argument("--width", type=int, default=384, help="backbone width d")
    parser.add_argument("--lookups", type=int, default=2000, help="timed lookups per kind")
    parser.add_argument("--cli-runs", type=int, default=7, help="cold CLI runs")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: temp)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON")
    return parser.parse_args()


def build(url: str, args: argparse.Namespace) -> dict[str, float]:
    """Fill a new registry; returns how long each part took, in seconds."""
    started = time.perf_counter()
    registry = Registry.init(
        url, backbone=DEFAULT_BACKBONE, hidden_size=args.width, prompt_length=args.length
    )
    names = [f"task{i:04d}" for i in range(args.tasks)]
    for name in names:
        registry.add_task(
            name=name,
            kind="choice",
            metric="accuracy",
            domain="bench",
            source="bench",
            label_names=["no", "yes"],
            data_checksum=name,
            embedding=torch.randn(args.width),
            data={"train": [{"input": name, "output": "yes"}]},
        )
    tasks_done = time.perf_counter()

    run = registry.start_run(strategy="bench", config={}, seed=0)
    for number in range(args.versions):
        prompts = {
            name: TaskPromptRecord(
                prompt=torch.randn(args.length, args.width),
                weights=torch.softmax(torch.randn(POOL), 0),
                dev_score=0.5,
                test_score=0.5,
            )
            for name in names
        }
        registry.commit_version(
            run_id=run,
            parent=number or None,
            state={"pool": torch.randn(POOL, args.length, args.width)},
            prompts=prompts,
            trained_task=names[number % len(names)],
            reason=f"bench {number}",
        )
    registry.close()
    finished = time.perf_counter()
    return {"tasks_s": tasks_done - started, "versions_s": finished - tasks_done}


def time_lookups(url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """p50 and p99 of ``Registry.prompt`` in milliseconds, per version kind."""
    rng = random.Random(0)
    names = [f"task{i:04d}" for i in range(args.tasks)]
    kinds: dict[str, object] = {"served": "served", "latest": "latest", "numbered": 1}
    results = {}
    with Registry.open(url) as registry:
        for _ in range(100):  # warm up connections, statement caches and torch
            registry.prompt(rng.choice(names))
        for label, version in kinds.items():
            samples = []
            for _ in range(args.lookups):
                name = rng.choice(names)
                started = time.perf_counter()
                prompt = registry.prompt(name, version)
                samples.append((time.perf_counter() - started) * 1000)
            assert prompt.shape == (args.length, args.width)
            samples.sort()
            results[label] = {
                "p50_ms": statistics.median(samples),
                "p99_ms": samples[int(0.99 * (len(samples) - 1))],
                "mean_ms": statistics.fmean(samples),
            }
    return results


def time_cold_cli(url: str, workdir: Path, args: argparse.Namespace) -> dict[str, float]:
    """Wall and CPU time of a fresh ``dpf-cl prompt --task X --out f.safetensors``, in seconds.

    CPU time (user + system of the child) says what the command costs even on a busy machine.
    """
    command = shutil.which("dpf-cl", path=str(Path(sys.executable).parent)) or "dpf-cl"
    rng = random.Random(1)
    walls, cpus = [], []
    for run in range(args.cli_runs):
        out = workdir / f"cold{run}.safetensors"
        name = f"task{rng.randrange(args.tasks):04d}"
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            [command, "prompt", "--task", name, "--out", str(out), "--registry", url],
            check=True,
            capture_output=True,
        )
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        assert out.stat().st_size > args.length * args.width * 4
    return {
        "median_s": statistics.median(walls),
        "max_s": max(walls),
        "min_s": min(walls),
        "cpu_median_s": statistics.median(cpus),
    }


def report(results: dict) -> None:
    table = Table(title=f"registry: {results['tasks']} tasks x {results['versions']} versions")
    for column in ("measure", "value", "goal", "met"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for label, figures in results["lookup"].items():
        met = "yes" if figures["p50_ms"] < P50_GOAL_MS else "no"
        table.add_row(
            f".prompt({label}) p50", f"{figures['p50_ms']:.3f} ms", f"< {P50_GOAL_MS} ms", met
        )
        table.add_row(f".prompt({label}) p99", f"{figures['p99_ms']:.3f} ms", "", "")
    cli = results["cold_cli"]
    met = "yes" if cli["median_s"] < CLI_GOAL_S else "no"
    table.add_row(
        "cold dpf-cl prompt --out (median)", f"{cli['median_s']:.3f} s", f"< {CLI_GOAL_S} s", met
    )
    table.add_row("cold dpf-cl prompt --out (max)", f"{cli['max_s']:.3f} s", "", "")
    table.add_row("cold dpf-cl prompt --out (CPU, median)", f"{cli['cpu_median_s']:.3f} s", "", "")
    table.add_row("load average (1 min) before / after", results["load"], "", "")
    table.add_row("database size", f"{results['database_mb']:.0f} MB", "", "")
    table.add_row(
        "build: tasks / versions",
        f"{results['build']['tasks_s']:.1f} s / {results['build']['versions_s']:.1f} s",
        "",
        "",
    )
    Console().print(table)


def main() -> None:
    args = parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dpf-registry-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "registry.db"
    if database.exists():
        database.unlink()
    url = f"sqlite:///{database}"
    load_before = os.getloadavg()[0]
    results = {
        "tasks": args.tasks,
        "versions": args.versions,
        "prompt_shape": [args.length, args.width],
        "build": build(url, args),
        "lookup": time_lookups(url, args),
        "cold_cli": time_cold_cli(url, workdir, args),
        "database_mb": database.stat().st_size / 2**20,
        "goals": {"p50_ms": P50_GOAL_MS, "cold_cli_s": CLI_GOAL_S},
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
        },
    }
    results["load"] = f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
