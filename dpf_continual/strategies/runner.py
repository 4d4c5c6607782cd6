"""``train_stream``: train every pending task of a registry, in stream order.

This is what ``dpf-cl train-stream`` calls. It loads the backbone and the latest pool version,
builds the Avalanche benchmark of all registered tasks, and trains the pending ones one
experience at a time with :class:`~dpf_continual.strategies.dpf.DPFStrategy`; the checkpoint
plugin writes a registry version after each. Everything a run decides is seeded, so a run on
the CPU is repeatable for a given seed (also across an interruption and ``--resume``).
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.utils.data import DataLoader

from dpf_continual.errors import (
    BackboneMismatchError,
    ConfigError,
    RegistryError,
    TrainingError,
)
from dpf_continual.evaluation.metrics import summarize
from dpf_continual.strategies import distributed

# Avalanche must be imported before a process group exists: some of its modules create
# loggers at import time, which it refuses to do on ranks other than 0.
from dpf_continual.strategies.build import build_strategy
from dpf_continual.strategies.config import StrategyName, TrainConfig
from dpf_continual.strategies.distributed import DistributedContext
from dpf_continual.strategies.stream import StreamTask, stream_task

logger = logging.getLogger(__name__)


@dataclass
class StreamReport:
    """What a run did: the accuracy matrices (rows: after each task; 0-1) and their summaries.

    ``initial`` holds each trained task's test score at initialisation (after pool growth,
    before its first step; ``None`` for ``joint``), so a stream of one task keeps it too.
    """

    run_id: int
    tasks: list[str]
    live: list[list[float | None]]
    served: list[list[float | None]]
    zero_shot: list[float]
    summary_live: dict
    summary_served: dict
    seconds: float
    versions: list[int] = field(default_factory=list)
    avalanche: dict = field(default_factory=dict)
    initial: list[float | None] = field(default_factory=list)


@dataclass
class Observer:
    """Callbacks for progress display; every one is optional."""

    task_started: Callable[[int, int, str, int], None] | None = None  # i, T, name, steps
    step: Callable[[int, float], None] | None = None  # step, loss
    task_finished: Callable[[str, int, dict[str, float]], None] | None = None  # name, v, scores


def _steps_per_task(config: TrainConfig, examples: int) -> int:
    per_epoch = -(-examples // config.batch_size)
    total = per_epoch * config.epochs
    return min(total, config.max_steps) if config.max_steps else total


def evaluate_bare(backbone, items, batch_size: int) -> float:
    """Accuracy of the backbone with no prompt at all (the zero-shot baseline of FWT)."""
    loader = DataLoader(items, batch_size=batch_size, collate_fn=backbone.collate)
    correct = total = 0
    with torch.no_grad():
        for batch in loader:
            batch = batch.to(backbone.device)
            predicted = backbone.option_scores(None, batch).argmax(1)
            correct += int((predicted == batch["labels"]).sum())
            total += len(predicted)
    return correct / max(1, total)


class _Run:
    """State of one ``train_stream`` call (kept out of the function to keep steps short)."""

    def __init__(self, registry, config: TrainConfig, backbone, observer: Observer) -> None:
        self.registry = registry
        self.config = config
        self.backbone = backbone
        self.observer = observer
        self.rows: list[dict[str, float]] = []
        self.versions: list[int] = []
        self.context = DistributedContext()

    def load_tasks(self) -> tuple[list[StreamTask], int]:
        infos = self.registry.tasks()
        token_norm = self.backbone.token_embedding_norm()
        tasks, self.embeddings = [], {}
        for task_id, info in enumerate(infos):
            data = self.registry.task_data(info.name)
            tasks.append(stream_task(info.name, task_id, info.kind, data))
            embedding = self.registry.task_embedding(info.name).float()
            # Scale e_t to the size of token embeddings: it is mixed into the prompt.
            self.embeddings[task_id] = embedding * (token_norm / embedding.norm().clamp(min=1e-6))
        first_pending = next((i for i, t in enumerate(infos) if t.status == "pending"), len(infos))
        late = [t.name for t in infos[first_pending:] if t.status != "pending"]
        if late:
            raise ConfigError(
                f"task {late[0]!r} is trained but comes after pending task "
                f"{infos[first_pending].name!r}; tasks train in stream order"
            )
        return tasks, first_pending

    def load_module(self, first_pending: int):
        from dpf_continual.strategies.prompt_modules import module_from_storage, new_module

        latest = self.registry.latest_version()
        settings = self.registry.settings
        if latest is None:
            return new_module(
                self.config.strategy.value,
                prompt_length=settings.prompt_length,
                hidden_size=settings.hidden_size,
                temperature=self.config.temperature,
            )
        previous = self.registry.run(latest.run_id).config.get("strategy")
        if previous != self.config.strategy.value:
            raise ConfigError(
                f"--strategy {self.config.strategy.value!r} does not match this registry, whose "
                f"pool was trained with {previous!r}; use --strategy {previous} or a new registry"
            )
        module = module_from_storage(previous, self.registry.pool_state(latest.number))
        if module.num_tasks != first_pending:
            raise ConfigError(
                f"the latest version holds {module.num_tasks} tasks but {first_pending} tasks "
                "come before the first pending one; was a trained task replaced? "
                "Roll back or use a new registry"
            )
        return module


def train_stream(
    registry,
    config: TrainConfig,
    *,
    resume: bool = False,
    observer: Observer | None = None,
    backbone=None,
) -> StreamReport | None:
    """Train the registry's pending tasks; ``None`` when nothing is pending.

    Args:
        registry: An open registry.
        config: Training settings (with ``resume``, the interrupted run's settings win).
        resume: Carry on after an interrupted run, with that run's settings.
        observer: Progress callbacks.
        backbone: An already loaded backbone (tests and benchmarks); loaded from the registry's
            backbone name when ``None``.

    Raises:
        TrainingError: A loss became NaN or infinite (the task is not written).
        ConfigError: Settings that do not fit the registry.
    """
    observer = observer or Observer()
    if not registry.pending():
        return None
    if resume:
        config = _resumed_config(registry, config)
    context, device = distributed.setup(config.device)
    if context.enabled and config.batch_size % context.world_size:
        raise ConfigError(
            f"--batch-size {config.batch_size} is the global batch and must divide evenly "
            f"over {context.world_size} processes"
        )
    if not context.is_main:
        registry = distributed.FollowerRegistry(registry)
    if backbone is None:
        from dpf_continual.backbones import load_backbone

        backbone = load_backbone(
            registry.settings.backbone,
            device=device,
            max_length=config.max_length,
            sequences_per_pass=config.sequences_per_pass,
        )
    if backbone.hidden_size != registry.settings.hidden_size:
        raise BackboneMismatchError(
            f"backbone {backbone.name!r} has width {backbone.hidden_size}, but the registry "
            f"holds prompts of width {registry.settings.hidden_size}"
        )
    torch.manual_seed(config.seed)
    run = _Run(registry, config, backbone, observer)
    run.context = context
    tasks, first, module = _load_consistent(run)
    if first == len(tasks):
        # Another train-stream trained every pending task between the check above and now.
        logger.info("nothing left to train: another train-stream trained the pending tasks")
        distributed.teardown()
        return None
    run_id = registry.start_run(
        strategy=config.strategy.value,
        config={
            **config.to_dict(),
            "resumed": resume,
            "host": platform.node(),
            "global_batch": config.batch_size,
            "per_rank_batch": config.batch_size // context.world_size,
        },
        seed=config.seed,
        world_size=context.world_size,
    )
    started = time.perf_counter()
    try:
        report = _train(run, tasks, first, module, run_id)
    except KeyboardInterrupt:
        registry.finish_run(run_id, "interrupted", {"seconds": time.perf_counter() - started})
        raise
    except (TrainingError, RegistryError):  # a NaN loss, or another trainer got there first
        registry.finish_run(run_id, "failed", {"seconds": time.perf_counter() - started})
        raise
    finally:
        distributed.teardown()
    report.seconds = time.perf_counter() - started
    registry.finish_run(
        run_id,
        "completed",
        {"seconds": report.seconds, "zero_shot": report.zero_shot, "avalanche": report.avalanche},
    )
    return report


def _load_consistent(run: _Run, attempts: int = 5):
    """Tasks and the latest module, read again if another trainer committed in between.

    Tasks and the pool are two reads; a version written between them makes them disagree. That
    is retried while the latest version keeps moving; a disagreement with no version written
    meanwhile is a real one and raised at once.
    """
    for attempt in range(attempts):
        before = _latest_number(run.registry)
        tasks, first = run.load_tasks()
        try:
            return tasks, first, run.load_module(first)
        except ConfigError:
            after = _latest_number(run.registry)
            if after == before:
                raise
            if attempt == attempts - 1:
                raise RegistryError(
                    f"the registry moved on {attempts} times while this train-stream read it "
                    f"(latest version {after}); another train-stream is using this registry"
                ) from None
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _latest_number(registry) -> int | None:
    latest = registry.latest_version()
    return latest.number if latest is not None else None


def _resumed_config(registry, config: TrainConfig) -> TrainConfig:
    unfinished = [r for r in registry.runs() if r.status in ("interrupted", "running", "failed")]
    if not unfinished:
        logger.info("no interrupted run to resume; starting a new run")
        return config
    fields = TrainConfig.__dataclass_fields__
    saved = {k: v for k, v in unfinished[-1].config.items() if k in fields}
    saved["device"] = config.device
    return TrainConfig(**saved)


def _train(run: _Run, tasks: list[StreamTask], first: int, module, run_id: int) -> StreamReport:
    config, backbone = run.config, run.backbone
    pending = tasks[first:]
    zero_shot = [evaluate_bare(backbone, t.splits["test"], config.eval_batch_size) for t in pending]

    def on_version(name: str, number: int, test: dict, dev: dict) -> None:
        run.versions.append(number)
        run.rows.append({tasks[i].name: score for i, score in test.items()})
        if run.observer.task_finished:
            run.observer.task_finished(name, number, {tasks[i].name: s for i, s in test.items()})

    parts = build_strategy(
        config=config,
        backbone=backbone,
        module=module,
        tasks=tasks,
        embeddings=run.embeddings,
        registry=run.registry,
        run_id=run_id,
        on_version=on_version,
        on_step=run.observer.step,
        context=run.context,
    )
    parts.restore_replay(first)
    init_scores = []
    if config.strategy == StrategyName.JOINT:
        init_scores = [None] * len(pending)
        _announce(run, 0, pending, sum(len(t.splits["train"]) for t in pending))
        parts.strategy.train(parts.joint_experience(first))
    for index, task in enumerate(pending if config.strategy != StrategyName.JOINT else []):
        torch.manual_seed(config.seed * 1000 + task.task_id)
        _announce(run, index, pending, len(task.splits["train"]))
        parts.growth.prepare(parts.strategy, task.task_id)
        init_scores.append(parts.evaluate(parts.strategy, "test", [task.task_id])[task.task_id])
        parts.strategy.train(parts.benchmark.train_stream[task.task_id])
    return _report(run, tasks[first:], run_id, zero_shot, init_scores, parts)


def _announce(run: _Run, index: int, pending, examples: int) -> None:
    examples += run.config.replay_size * (index > 0)
    steps = _steps_per_task(run.config, examples)
    warn_if_dwa_is_idle(run.config, pending[index].name, examples)
    if run.observer.task_started:
        run.observer.task_started(index, len(pending), pending[index].name, steps)


def warn_if_dwa_is_idle(config: TrainConfig, name: str, examples: int) -> bool:
    """Warn when ``dwa`` cannot weigh anything in this task; returns whether it warned.

    Each task starts a fresh weighter, and DWA needs two finished epochs of loss history, so a
    task trained for two epochs or fewer trains exactly as with ``equal``.
    """
    if getattr(config.loss_weighting, "value", config.loss_weighting) != "dwa":
        return False
    per_epoch = -(-examples // config.batch_size)
    steps = _steps_per_task(config, examples)
    if steps > 2 * per_epoch:
        return False
    logger.warning(
        "task %r: --loss-weighting dwa weighs tasks from the third epoch on, but this task "
        "trains %d steps (%.1f epochs of %d steps); it trains as with 'equal'",
        name, steps, steps / per_epoch, per_epoch,
    )  # fmt: skip
    return True


def _report(run: _Run, trained, run_id, zero_shot, init_scores, parts) -> StreamReport:
    names = [task.name for task in trained]
    live = [[row.get(name) for name in names] for row in run.rows]
    if run.context.is_main:
        served_names, served = run.registry.accuracy_matrix(run_id, kind="served")
    else:  # other ranks keep no registry record of their own
        served_names, served = names, [list(row) for row in live]
    served = [[row[served_names.index(n)] if n in served_names else None for n in names]
              for row in served]  # fmt: skip
    if len(init_scores) == len(names) and all(s is not None for s in init_scores):
        # FWT needs R[j-1][j]: the score of task j at initialisation, before training it.
        for j in range(1, min(len(names), len(live))):
            live[j - 1][j] = init_scores[j] if live[j - 1][j] is None else live[j - 1][j]
    metrics = parts.strategy.evaluator.get_last_metrics()
    return StreamReport(
        run_id=run_id,
        tasks=names,
        live=live,
        served=served,
        zero_shot=zero_shot,
        summary_live=summarize(live, baseline=zero_shot),
        summary_served=summarize(served, baseline=zero_shot),
        seconds=0.0,
        versions=run.versions,
        avalanche={k: float(v) for k, v in metrics.items() if isinstance(v, int | float)},
        initial=list(init_scores),
    )
