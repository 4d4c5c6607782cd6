"""``dpf-cl predict``: answer requests for many tasks at once with the served prompts.

torch and transformers are imported inside the command, so ``dpf-cl --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dpf_continual.cli import main
from dpf_continual.cli.common import err_console, registry_url_option, user_errors
from dpf_continual.errors import DataFormatError

SCORE_DIGITS = 4


def read_rows(path: str) -> tuple[list[Any], list[int], list[dict[str, Any]]]:
    """Rows of a JSONL file (``-`` is stdin), with their line numbers; blank lines are skipped.

    Returns:
        The parsed rows, their line numbers, and one error result per line that is not JSON.

    Raises:
        DataFormatError: The file is missing, not UTF-8 text, or holds no rows.
    """
    if path != "-" and not Path(path).is_file():
        raise DataFormatError(f"--input-file {path!r}: no such file")
    try:
        with click.open_file(path, "r", encoding="utf-8") as stream:
            numbered = list(enumerate(stream, start=1))
    except UnicodeDecodeError:
        raise DataFormatError(f"--input-file {path!r} is not UTF-8 text") from None

    rows, lines, errors = [], [], []
    for number, text in numbered:
        if not text.strip():
            continue
        try:
            rows.append(json.loads(text))
            lines.append(number)
        except json.JSONDecodeError as error:
            message = f"not valid JSON ({error.msg} at column {error.colno})"
            errors.append({"line": number, "task": None, "routed": False, "error": message})
    if not rows and not errors:
        raise DataFormatError(
            f"--input-file {path!r} holds no rows: expected one JSON object a line"
        )
    return rows, lines, errors


def format_result(result: dict[str, Any]) -> str:
    """One JSON line; scores and similarities rounded for reading."""
    shown = dict(result)
    if "similarity" in shown:
        shown["similarity"] = round(shown["similarity"], SCORE_DIGITS)
    if "scores" in shown:
        shown["scores"] = {k: round(v, SCORE_DIGITS) for k, v in shown["scores"].items()}
    return json.dumps(shown, ensure_ascii=False)


@main.command("predict")
@registry_url_option
@click.argument("texts", nargs=-1)
@click.option(
    "--task",
    help="Task of every text (and of file rows that name none). Without it, each row goes to "
    "the trained task whose embedding is nearest to its input.",
)
@click.option(
    "--input-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help='JSONL file of rows {"task"?, "input", "options"?}, tasks mixed; - reads stdin.',
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, allow_dash=True, writable=True),
    default="-",
    show_default="stdout",
    help="Where to write the JSONL predictions.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Rows per forward pass.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1...")
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="CPU threads for torch (default: torch's choice; 1 is fastest on a busy shared machine).",
)
@user_errors
def predict_command(
    registry_url: str,
    texts: tuple[str, ...],
    task: str | None,
    input_file: str | None,
    out: str,
    batch_size: int,
    device: str,
    threads: int | None,
) -> None:
    """Predict with the trained tasks' served prompts: one JSON line per input.

    Each line holds the line number, the task, whether it was routed (and the cosine similarity
    of the routing), then the prediction and every option's score, or an error. Rows of
    different tasks share each forward pass. A bad row is reported by its line and the others
    are still predicted; the exit status is then 1.

    \b
    Example: dpf-cl predict --task ag_news "Stocks fell sharply on Monday"
             dpf-cl predict --input-file requests.jsonl --out predictions.jsonl
    """
    from transformers.utils import logging as transformers_logging

    from dpf_continual.inference import Predictor, untrained_error
    from dpf_continual.registry import Registry

    transformers_logging.disable_progress_bar()  # stderr is for the failed rows only
    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    if bool(texts) == bool(input_file):
        raise click.UsageError("give either TEXTS or --input-file (one of them, not both)")
    if texts:
        rows, lines, errors = [{"input": text} for text in texts], None, []
    else:
        rows, lines, errors = read_rows(input_file)

    # A bad --task fails here, before the backbone loads.
    with Registry.open(registry_url) as registry:
        if task is not None and registry.task(task).served_version is None:
            raise untrained_error(task)
        predictor = Predictor(registry, device=device, batch_size=batch_size)
    if task is not None:
        rows = [_with_task(row, task) for row in rows]
    results = sorted(predictor.predict(rows, lines=lines) + errors, key=lambda r: r["line"])
    with click.open_file(out, "w", encoding="utf-8") as stream:
        for result in results:
            stream.write(format_result(result) + "\n")
    _report_failures(results)


def _with_task(row: Any, task: str) -> Any:
    if isinstance(row, dict) and "task" not in row:
        return {**row, "task": task}
    return row


def _report_failures(results: list[dict[str, Any]]) -> None:
    failed = [result for result in results if "error" in result]
    if not failed:
        return
    for result in failed:
        err_console.print(f"line {result['line']}: {result['error']}", markup=False, soft_wrap=True)
    err_console.print(f"{len(failed)} of {len(results)} rows failed; the others were predicted")
    click.get_current_context().exit(1)
