"""``dpf-cl train-stream`` and ``dpf-cl demo``: the training commands.

Heavy libraries (transformers, avalanche) are imported inside the commands only.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from dpf_continual.cli import main
from dpf_continual.cli.common import console, err_console, registry_url_option, user_errors


def _observer(progress: Progress):
    from dpf_continual.strategies.runner import Observer

    state: dict = {}

    def started(index: int, total: int, name: str, steps: int) -> None:
        if "bar" in state:
            progress.remove_task(state["bar"])
        label = f"task {index + 1} of {total}: {name}"
        state["bar"] = progress.add_task(label, total=steps, loss=float("nan"))

    def step(number: int, loss: float) -> None:
        progress.update(state["bar"], completed=number, loss=loss)

    def finished(name: str, version: int, scores: dict[str, float]) -> None:
        table = Table(title=f"after {name}: version {version}, test accuracy")
        for task in scores:
            table.add_column(task, justify="right")
        table.add_row(*(f"{score:.3f}" for score in scores.values()))
        progress.console.print(table)

    return Observer(task_started=started, step=step, task_finished=finished)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )


def run_stream(registry_url: str, config, *, resume: bool) -> int:
    """Train the pending tasks and print the final tables; returns the exit status."""
    from dpf_continual.evaluation.report import format_matrix, format_summary
    from dpf_continual.registry import Registry
    from dpf_continual.strategies.runner import train_stream

    registry = Registry.open(registry_url, create=True)
    if registry.created:
        err_console.print(f"created a new registry at {registry_url}")
    if not registry.pending():
        console.print("nothing to train: every registered task is trained")
        return 0
    if os.environ.get("RANK", "0") != "0":
        # Under torchrun only rank 0 reports; the others train silently.
        train_stream(registry, config, resume=resume)
        return 0
    with _progress() as progress:
        try:
            report = train_stream(registry, config, resume=resume, observer=_observer(progress))
        except KeyboardInterrupt:
            progress.stop()
            err_console.print(
                "interrupted: finished tasks are kept; run `dpf-cl train-stream --resume` "
                "to carry on"
            )
            return 130
    if report is None:  # another train-stream trained them in the meantime
        console.print("nothing to train: every registered task is trained")
        return 0
    console.print(format_matrix(report.tasks, report.live, title="accuracy matrix (live)"))
    console.print(format_matrix(report.tasks, report.served, title="accuracy matrix (served)"))
    console.print(format_summary(report.summary_live))
    console.print(
        f"run {report.run_id} stored in {registry_url} "
        f"(versions {', '.join(map(str, report.versions))}; {report.seconds:.0f} s)"
    )
    return 0


@main.command("train-stream")
@registry_url_option
@click.option(
    "--strategy",
    type=click.Choice(["dpf", "naive", "replay", "ewc", "lwf", "joint", "separate"]),
    default="dpf",
    show_default=True,
    help="Continual-learning method.",
)
@click.option("--epochs", type=int, default=1, show_default=True, help="Passes over each task.")
@click.option("--max-steps", type=int, default=None, help="Stop each task after N steps.")
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--lr", type=float, default=0.03, show_default=True, help="Learning rate.")
@click.option("--replay-size", type=int, default=64, show_default=True, help="Replay buffer size.")
@click.option(
    "--replay-policy",
    type=click.Choice(["experience-balanced", "reservoir"]),
    default="experience-balanced",
    show_default=True,
)
@click.option(
    "--loss-weighting",
    type=click.Choice(["equal", "uncertainty", "gradnorm", "dwa"]),
    default="uncertainty",
    show_default=True,
)
@click.option("--temperature", type=float, default=0.9, show_default=True)
@click.option("--prompts-per-task", type=int, default=2, show_default=True)
@click.option("--max-prompts", type=int, default=0, help="Pool cap (0: none).")
@click.option(
    "--old-prompts",
    type=click.Choice(["frozen", "reduced-lr"]),
    default="frozen",
    show_default=True,
)
@click.option("--serve-tolerance", type=float, default=0.0, show_default=True, help="Points.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1...")
@click.option(
    "--sequences-per-pass",
    type=int,
    default=64,
    show_default=True,
    help="Generative backbones: most (example, option) sequences per forward pass; lower it "
    "if a task with many options runs out of memory.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch.")
@click.option("--resume", is_flag=True, help="Carry on after an interrupted run.")
@user_errors
def train_stream_command(registry_url: str, resume: bool, threads: int | None, **options) -> None:
    """Train every pending task, in stream order.

    Example: dpf-cl train-stream --max-steps 80 --loss-weighting gradnorm
    """
    from dpf_continual.strategies.config import TrainConfig

    _set_threads(threads)
    config = TrainConfig(**options)
    sys.exit(run_stream(registry_url, config, resume=resume))


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@main.command("demo")
@click.option(
    "--registry",
    "registry_url",
    default=None,
    help="Registry URL to fill (default: a new one in a temporary folder).",
)
@click.option("--max-steps", type=int, default=30, show_default=True, help="Steps per task.")
@click.option("--max-length", type=int, default=64, show_default=True, help="Input tokens.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads for torch.")
@user_errors
def demo_command(
    registry_url: str | None, max_steps: int, max_length: int, threads: int | None
) -> None:
    """Run the whole flow offline: add the demo tasks, train the stream, query a prompt.

    Example: dpf-cl demo --max-steps 40
    """
    from dpf_continual.data.demo import demo_tasks
    from dpf_continual.registry import Registry
    from dpf_continual.strategies.config import TrainConfig
    from dpf_continual.tasks import register_task

    _set_threads(threads)
    folder = Path(tempfile.mkdtemp(prefix="dpf-demo-"))
    registry_url = registry_url or f"sqlite:///{folder / 'registry.db'}"
    console.print(f"demo registry: {registry_url}")

    from dpf_continual.backbones import load_backbone

    registry = Registry.open(registry_url, create=True)
    backbone = load_backbone(registry.settings.backbone)
    # Ten test examples per label keep the evaluation after every task short.
    for task in demo_tasks(test_per_label=10):
        result = register_task(registry, task, backbone)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in task.splits.items())
        console.print(f"add-task {task.spec.name}: {result.status} ({sizes})")

    config = TrainConfig(max_steps=max_steps, epochs=100, seed=0, max_length=max_length)
    status = run_stream(registry_url, config, resume=False)
    if status:
        sys.exit(status)

    first = registry.tasks()[0].name
    out = folder / f"{first}.safetensors"
    command = ["prompt", "--registry", registry_url, "--task", first, "--out", str(out)]
    console.print(f"$ dpf-cl {' '.join(command)}")
    main.main(command, standalone_mode=False)
    console.print(f"the registry stays in {folder}: try `dpf-cl tasks --registry {registry_url}`")
