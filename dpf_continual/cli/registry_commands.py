"""Registry commands: ``init``, ``tasks``, ``show``, ``versions``, ``similar``, ``prompt``,
``rollback`` and ``check``.

They import neither torch nor transformers (the stored prompts are already safetensors bytes),
so they start fast; only ``init`` with a backbone given by hub name imports transformers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from dpf_continual.cli import main
from dpf_continual.cli.common import (
    console,
    err_console,
    json_option,
    print_json,
    registry_url_option,
    user_errors,
)
from dpf_continual.registry import (
    DEFAULT_BACKBONE,
    DEFAULT_PROMPT_LENGTH,
    DEFAULT_TEMPERATURE,
    PromptArtifact,
    Registry,
)
from dpf_continual.registry.backbone_config import PEFT_TASK_TYPES


class VersionSpecType(click.ParamType):
    """``served``, ``latest`` or a version number."""

    name = "served|latest|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value in ("served", "latest"):
            return value
        if isinstance(value, str) and value.isdigit() and int(value) >= 1:
            return int(value)
        self.fail(f"{value!r} is not 'served', 'latest' or a version number >= 1", param, ctx)


@main.command("init")
@registry_url_option
@click.option(
    "--backbone",
    default=DEFAULT_BACKBONE,
    show_default=True,
    help="Hugging Face name or local folder of the frozen backbone.",
)
@click.option(
    "--prompt-length",
    type=click.IntRange(min=1),
    default=DEFAULT_PROMPT_LENGTH,
    show_default=True,
    help="Virtual tokens per prompt (L).",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TEMPERATURE,
    show_default=True,
    help="Scheduler temperature (τ).",
)
@json_option
@user_errors
def init_command(
    registry_url: str, backbone: str, prompt_length: int, temperature: float, as_json: bool
) -> None:
    """Create a registry bound to one backbone.

    Running it again with the same settings changes nothing; with other settings it is an error.

    Example: dpf-cl init --backbone ./models/minilm --prompt-length 20
    """
    from dpf_continual.registry.backbone_config import hidden_size_of, read_backbone_config

    width = hidden_size_of(read_backbone_config(backbone), name=backbone)
    with Registry.init(
        registry_url,
        backbone=backbone,
        hidden_size=width,
        prompt_length=prompt_length,
        temperature=temperature,
    ) as registry:
        settings = registry.settings
        if as_json:
            print_json({"url": registry.safe_url, "created": registry.created, **settings.__dict__})
            return
        verb = "Created" if registry.created else "Already initialised:"
        _say(
            f"{verb} registry {registry.safe_url}: backbone {settings.backbone}, "
            f"d={settings.hidden_size}, L={settings.prompt_length}, τ={settings.temperature}"
        )


@main.command("tasks")
@registry_url_option
@json_option
@user_errors
def tasks_command(registry_url: str, as_json: bool) -> None:
    """List every registered task in stream order.

    Example: dpf-cl tasks --json
    """
    with Registry.open(registry_url) as registry:
        tasks = registry.tasks()
    if as_json:
        print_json([task.to_json() for task in tasks])
        return
    table = Table(title=f"{len(tasks)} tasks")
    for column in ("#", "task", "kind", "metric", "domain", "status", "served", "latest", "train"):
        table.add_column(column, justify="right" if column in ("#", "train") else "left")
    for task in tasks:
        table.add_row(
            str(task.position),
            task.name,
            task.kind,
            task.metric,
            task.domain,
            task.status,
            _text(task.served_version),
            _text(task.latest_version),
            str(task.split_sizes.get("train", 0)),
        )
    console.print(table)


@main.command("show")
@click.argument("task")
@registry_url_option
@json_option
@user_errors
def show_command(task: str, registry_url: str, as_json: bool) -> None:
    """Show one task: its spec, splits, versions and scores.

    Example: dpf-cl show ag_news
    """
    with Registry.open(registry_url) as registry:
        info = registry.task(task)
        held = [v.number for v in registry.versions() if task in v.tasks]
    if as_json:
        print_json({**info.to_json(), "versions": held})
        return
    table = Table(show_header=False, title=f"task {info.name}")
    table.add_column(style="bold")
    table.add_column()
    fields = {**info.to_json(), "versions": held}
    for key, value in fields.items():
        table.add_row(key, _text(value))
    console.print(table)


@main.command("versions")
@registry_url_option
@json_option
@user_errors
def versions_command(registry_url: str, as_json: bool) -> None:
    """List every pool version, oldest first.

    Example: dpf-cl versions
    """
    with Registry.open(registry_url) as registry:
        versions = registry.versions()
    if as_json:
        print_json([version.to_json() for version in versions])
        return
    table = Table(title=f"{len(versions)} pool versions")
    for column in ("version", "parent", "trained", "K", "L", "d", "tasks", "hash", "reason"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            str(v.number),
            _text(v.parent),
            _text(v.trained_task),
            str(v.num_prompts),
            str(v.prompt_length),
            str(v.hidden_size),
            str(len(v.tasks)),
            v.content_hash[:12],
            v.reason,
        )
    console.print(table)


@main.command("similar")
@click.argument("task")
@click.option(
    "-k",
    "k",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="How many tasks to list.",
)
@registry_url_option
@json_option
@user_errors
def similar_command(task: str, k: int, registry_url: str, as_json: bool) -> None:
    """List the tasks most similar to TASK (cosine of task embeddings).

    Example: dpf-cl similar ag_news -k 3
    """
    with Registry.open(registry_url) as registry:
        neighbours = registry.similar(task, k=k)
    if as_json:
        print_json([{"task": name, "cosine": score} for name, score in neighbours])
        return
    table = Table(title=f"tasks most similar to {task}")
    table.add_column("task")
    table.add_column("cosine", justify="right")
    for name, score in neighbours:
        table.add_row(name, f"{score:.4f}")
    console.print(table)


@main.command("prompt")
@click.option("--task", "task", required=True, help="Task name.")
@click.option(
    "--version",
    "version",
    type=VersionSpecType(),
    default="served",
    show_default=True,
    help="'served', 'latest' or a pool version number.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write here: a .safetensors file, or a folder with --format peft.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["safetensors", "peft"]),
    default="safetensors",
    show_default=True,
    help="What --out holds.",
)
@click.option(
    "--task-type",
    type=click.Choice(PEFT_TASK_TYPES),
    default=None,
    help="PEFT task type (default: from the backbone's config).",
)
@registry_url_option
@json_option
@user_errors
def prompt_command(
    task: str,
    version: Any,
    out: Path | None,
    file_format: str,
    task_type: str | None,
    registry_url: str,
    as_json: bool,
) -> None:
    """Write a task's prompt [L, d] to a file, or print a summary (--json: shape and values).

    The file holds tensor `prompt` and metadata (task, version, backbone, shape). With
    --format peft, --out is a folder holding a PEFT prompt-tuning adapter for the backbone.

    Example: dpf-cl prompt --task ag_news --out ag_news.safetensors
    """
    if file_format == "peft" and out is None:
        raise click.UsageError("--format peft needs --out DIR")
    with Registry.open(registry_url) as registry:
        artifact = registry.prompt_artifact(task, version)
        backbone = registry.settings.backbone
    summary = {"task": artifact.task, "version": artifact.version, "shape": artifact.shape}
    if out is None:
        _print_prompt(summary, artifact, as_json=as_json)
        return
    try:
        from dpf_continual.registry.peft_export import export_peft, write_atomically

        if file_format == "peft":
            written = export_peft(out, artifact, backbone=backbone, task_type=task_type)
        else:
            write_atomically(out, artifact.to_file(backbone=backbone))
            written = [out]
    except OSError as error:
        raise click.ClickException(f"cannot write --out {str(out)!r}: {error.strerror}") from None
    summary.update(format=file_format, files=[str(path) for path in written])
    if as_json:
        print_json(summary)
    else:
        _say(f"Wrote the prompt of {task} (version {artifact.version}) to {out}")


@main.command("rollback")
@click.option("--task", "task", required=True, help="Task name.")
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    required=True,
    help="Pool version whose prompt the task should serve.",
)
@registry_url_option
@json_option
@user_errors
def rollback_command(task: str, version: int, registry_url: str, as_json: bool) -> None:
    """Make TASK serve its prompt from an earlier (or later) pool version.

    Example: dpf-cl rollback --task ag_news --version 3
    """
    with Registry.open(registry_url) as registry:
        before = registry.task(task).served_version
        registry.rollback(task, version)
    if as_json:
        print_json({"task": task, "served_before": before, "served": version})
    else:
        _say(f"Task {task} now serves version {version} (was {_text(before)}).")


@main.command("check")
@registry_url_option
@json_option
@user_errors
def check_command(registry_url: str, as_json: bool) -> None:
    """Check the registry: stored tensors against their digests, references, whole versions.

    Exits with status 1 when a problem is found.

    Example: dpf-cl check
    """
    with Registry.open(registry_url) as registry:
        problems = registry.check_integrity()
    if as_json:
        print_json({"ok": not problems, "problems": problems})
    elif problems:
        for problem in problems:
            _say(f"problem: {problem}", err=True)
    else:
        _say(f"Registry {registry.safe_url} is sound.")
    if problems:
        raise SystemExit(1)


def _print_prompt(summary: dict[str, Any], artifact: PromptArtifact, *, as_json: bool) -> None:
    if as_json:
        print_json({**summary, "values": artifact.values()})
        return
    table = Table(title=f"prompt of {summary['task']}")
    for column in ("version", "shape", "mean", "std", "min", "max"):
        table.add_column(column, justify="right")
    figures = artifact.statistics()
    table.add_row(
        str(summary["version"]),
        json.dumps(summary["shape"]),
        *(f"{figures[name]:.4f}" for name in ("mean", "std", "min", "max")),
    )
    console.print(table)


def _say(text: str, *, err: bool = False) -> None:
    # One unwrapped line, so that paths and URLs stay whole and copyable.
    (err_console if err else console).print(text, soft_wrap=True, markup=False, highlight=False)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
