"""The speed suite: the training step and prediction, side by side and against the machine's limit.

Every figure is measured in one run, next to what it is compared with, as a ratio where it can
be. Goals are from the issue that asked for the suite.

1. Step: a Dynamic Prompt Fusion training step against a PEFT prompt-tuning step on the same
   frozen MiniLM and the same batch (b = 16, 4 tasks mixed, L = 20; the set-up and both steps
   come from ``fusion_overhead.py``). Goal: ratio at most 1.05.
2. FLOP/s: achieved FLOP/s of the DPF training step, of the inference forward pass (64 rows of
   8 tasks) and of :meth:`Predictor.predict` end to end, against a 2048-square fp32 matmul
   timed in the same rounds. FLOPs are counted by ``torch.utils.flop_counter`` on the real calls
   (matmuls and attention, forward and backward, padding included). Goal: at least 70% of the
   matmul. The peak is the faster of the matmul on all threads and on one; a second figure per
   CPU-second (FLOPs over this process's CPU time, against the matmul's best) does not move
   when other programs load the machine.
3. Mixed batches: :meth:`Predictor.predict` on 64 rows of 8 tasks, against the same 64 texts
   all of one task (goal: throughput ratio at least 0.9), and against one call per task (as a
   server that holds one prompt at a time would do).

   1-3 share one timing loop: the calls run in turn each round, the order reversed every other
   round, and each figure is a median over rounds, so a change in the machine's load hits
   numerator and denominator alike. The step, the forward pass and the matmul are timed on all
   of torch's threads and on one thread: on a shared 2-core machine one thread is far faster.
4. Growth: the cost of adding task n (2, 10, 25, 50) at a fixed step budget and replay size.
   For each n, a registry of n synthetic tasks has tasks 1..n-1 already trained (the pool,
   scheduler, gate and one version per task are written directly, as a finished stream leaves
   them), and ``train_stream`` trains task n, as ``train-stream --resume`` would. The task's
   time is split into training (pool growth, replay, the steps), evaluation (every seen task on
   dev and test: it grows with n by design) and the registry write. Peak RSS is taken over the
   task. Goal, judged on the training time and the peak RSS: task 50 at most 1.2 times task 2.
   Also reported: the fusion module's own forward and backward on a replay-mixed batch, and
   the largest n evaluated a second way, with every task's rows in shared batches.
5. Sizes: trainable parameters and registry bytes added per task (in the growth rows).
6. Routing: accuracy of task routing on the LFPT5 test inputs (``routing.py``), when
   ``DPF_DATA_ROOT`` is set.

``--quick``: 6 rounds, 4 steps per task, 16/4/4 train/dev/test rows per synthetic task, one
growth round, 100 routed inputs per LFPT5 task. Full: 10 rounds, 8 steps, 32/8/8 rows, two
growth rounds (order reversed), all 3,300 LFPT5 test inputs.

Example::

    DPF_DATA_ROOT=../shared/data .venv/bin/python benchmarks/speed_suite.py --quick --threads 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import fusion_overhead as fo
import torch
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

from dpf_continual.backbones import DEFAULT_BACKBONE, Item, load_backbone
from dpf_continual.fusion import DynamicPromptFusion
from dpf_continual.inference import Predictor
from dpf_continual.registry import Registry, TaskPromptRecord

RESULTS = Path(__file__).resolve().parent / "results" / "speed.json"
GOALS = {"step_ratio": 1.05, "peak_fraction": 0.70, "mixed_ratio": 0.90, "growth_ratio": 1.2}
PEAK_SIZE = 2048
INFER_ROWS, INFER_TASKS = 64, 8

console = Console(width=120)
progress = Console(stderr=True)


# -- counting FLOPs ----------------------------------------------------------------------------


def _count_cpu_attention() -> None:
    """Teach the FLOP counter the CPU attention kernels (it knows only the CUDA ones)."""
    from torch.utils import flop_counter as fc

    aten = torch.ops.aten
    forward = aten._scaled_dot_product_flash_attention_for_cpu
    backward = aten._scaled_dot_product_flash_attention_for_cpu_backward
    if forward in fc.flop_registry:
        return
    register_flop_formula(forward)(
        lambda q, k, v, *args, out_shape=None, **kwargs: fc.sdpa_flop_count(q, k, v)
    )
    register_flop_formula(backward)(
        lambda g, q, k, v, *args, out_shape=None, **kwargs: fc.sdpa_backward_flop_count(g, q, k, v)
    )


def count_flops(call) -> int:
    """FLOPs of one call of ``call`` (matmuls and attention, forward and backward)."""
    with FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


# -- synthetic tasks and registries ------------------------------------------------------------

LABEL_WORDS = (
    "apple river engine violin tiger castle rocket garden winter doctor bridge candle desert "
    "forest guitar harbor island jacket kitchen ladder market needle ocean pencil planet rabbit "
    "saddle tunnel valley window basket camera dragon feather hammer lemon mirror orange pillow "
    "silver"
).split()
SUBJECTS = ["my neighbour", "the teacher", "a traveller", "our manager", "the farmer", "a student"]
PLACES = ["at the station", "in the park", "near the school", "by the lake", "after lunch"]
TEMPLATES = [
    "{subject} talked about the {label} {place}.",
    "I heard {subject} mention a {label} {place}.",
    "There was a {label} {place}, said {subject}.",
    "{subject} kept thinking about the {label} {place}.",
]


def synthetic_task(index: int, sizes: dict[str, int]) -> tuple[list[str], dict]:
    """Label words and splits of synthetic task ``index``: 4 labels, template sentences."""
    rng = random.Random(index)
    labels = rng.sample(LABEL_WORDS, 4)
    splits = {}
    for split, per_label in sizes.items():
        rows = []
        for label in labels * per_label:
            text = rng.choice(TEMPLATES).format(
                subject=rng.choice(SUBJECTS), label=label, place=rng.choice(PLACES)
            )
            rows.append({"input": text, "output": label, "options": labels})
        rng.shuffle(rows)
        splits[split] = rows
    return labels, splits


class SyntheticStream:
    """``count`` synthetic tasks, embedded once, that registries of any size n <= count reuse."""

    def __init__(self, backbone, count: int, sizes: dict[str, int]) -> None:
        self.backbone = backbone
        self.tasks = [synthetic_task(index, sizes) for index in range(count)]
        self.names = [f"synthetic-{index:02d}" for index in range(count)]
        inputs = [[row["input"] for row in splits["train"]] for _, splits in self.tasks]
        self.embeddings = [backbone.embed_texts(texts).mean(0) for texts in inputs]  # [d] each

    def registry(self, url: str, n: int, *, trained: int) -> Registry:
        """A registry of the first ``n`` tasks whose first ``trained`` tasks are trained."""
        registry = Registry.init(
            url, backbone=DEFAULT_BACKBONE, hidden_size=self.backbone.hidden_size
        )
        for name, (labels, splits), embedding in zip(
            self.names[:n], self.tasks[:n], self.embeddings[:n], strict=True
        ):
            checksum = hashlib.sha256(json.dumps(splits).encode()).hexdigest()
            registry.add_task(
                name=name,
                kind="choice",
                metric="accuracy",
                domain="synthetic",
                source="speed suite",
                label_names=labels,
                data_checksum=checksum,
                embedding=embedding,
                data=splits,
            )
        if trained:
            self._write_trained(registry, trained)
        return registry

    def _write_trained(self, registry: Registry, count: int) -> None:
        """One version per task, as a finished DPF stream of ``count`` tasks leaves them."""
        from dpf_continual.strategies.config import TrainConfig

        settings = registry.settings
        fusion = DynamicPromptFusion(
            prompt_length=settings.prompt_length, hidden_size=settings.hidden_size
        )
        generator = torch.Generator().manual_seed(0)
        norm = self.backbone.token_embedding_norm()
        for embedding in self.embeddings[:count]:
            init = self.backbone.vocabulary_prompts(2, settings.prompt_length, generator)
            fusion.add_prompts(2, init)  # the tasks before do not see them (masked)
            fusion.add_task(embedding * (norm / embedding.norm()))  # scaled as the runner does
        fusion.pool.freeze(list(range(fusion.num_prompts - 2)))
        fused = fusion.fused_prompts()  # [T, L, d]
        weights = fusion.weights(torch.arange(count)).detach()  # [T, K]
        state = fusion.state_for_storage()
        config = TrainConfig(device="cpu").to_dict()
        run_id = registry.start_run(strategy="dpf", config=config, seed=0)
        parent = None
        for task in range(count):
            prompts = {
                self.names[i]: TaskPromptRecord(fused[i], weights[i], 0.5, 0.5)
                for i in range(task + 1)
            }
            parent = registry.commit_version(
                run_id=run_id,
                parent=parent,
                state=state,
                prompts=prompts,
                trained_task=self.names[task],
                reason="speed suite: synthetic history",
            ).number
        registry.finish_run(run_id, "completed")


# -- sections 1-3: one timing loop ---------------------------------------------------------------


def matmul_step(size: int = PEAK_SIZE):
    left, right = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    return lambda: torch.mm(left, right, out=out), 2 * size**3


def inference_rows(predictor: Predictor) -> tuple[list[dict], list[dict]]:
    """64 texts of 30-40 tokens: spread over 8 tasks (mixed) and all of one task (single)."""
    texts = [text for _, group in fo.TASKS.values() for text in group]
    tasks = list(predictor.tasks)[:INFER_TASKS]
    mixed = [
        {"task": tasks[row % len(tasks)], "input": texts[row % len(texts)]}
        for row in range(INFER_ROWS)
    ]
    single = [{"task": tasks[0], "input": row["input"]} for row in mixed]
    return mixed, single


def inference_item(predictor: Predictor, row: dict) -> Item:
    labels = tuple(predictor.tasks[row["task"]].label_names)
    return Item(predictor.task_index[row["task"]], row["input"], "", labels)


def with_threads(count: int, call):
    def run() -> None:
        previous = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            call()
        finally:
            torch.set_num_threads(previous)

    return run


def side_by_side(backbone, predictor: Predictor, *, repeats: int, warmup: int) -> dict:
    """Sections 1-3: every step of the comparison timed in the same rounds."""
    batch = backbone.collate(fo.make_items())  # b = 16, 4 tasks
    labels, task_ids = batch["labels"], batch["task_ids"]
    fusion = fo.build_fusion(backbone, prompt_length=fo.PROMPT_LENGTH)
    backbone.option_embeddings()
    model = fo.build_peft(backbone, prompt_length=fo.PROMPT_LENGTH)
    fusion_params = [p for p in fusion.parameters() if p.requires_grad]
    peft_params = [p for p in model.parameters() if p.requires_grad]

    mixed, single = inference_rows(predictor)
    by_task: dict[str, list[dict]] = {}
    for row in mixed:
        by_task.setdefault(row["task"], []).append(row)
    collated = backbone.collate([inference_item(predictor, row) for row in mixed])

    matmul, matmul_flops = matmul_step()
    steps = {
        "matmul": matmul,
        "dpf_step": fo.make_step(
            lambda: backbone.option_scores(fusion(task_ids), batch), fusion_params, labels
        ),
        "peft_step": fo.make_step(
            lambda: fo.peft_encoder_scores(model, backbone, batch), peft_params, labels
        ),
        "infer_forward": lambda: predictor.score_batch(collated),
        "predict_mixed": lambda: predictor.predict(mixed),
        "predict_single": lambda: predictor.predict(single),
        "predict_loop": lambda: [predictor.predict(rows) for rows in by_task.values()],
    }
    flops = {name: count_flops(steps[name]) for name in FLOP_COUNTED}
    flops["matmul"] = matmul_flops
    if torch.get_num_threads() > 1:
        for name in THREAD_VARIANTS:
            steps[f"{name}{ONE_THREAD}"] = with_threads(1, steps[name])

    progress.log(f"timing {len(steps)} calls for {warmup} + {repeats} rounds")
    times = fo.time_interleaved(steps, repeats=repeats, warmup=warmup, sync=lambda: None)
    result = summarise_side_by_side(times, flops)
    result["shapes"] = {
        "train_batch": list(batch["attention_mask"].shape),
        "infer_batch": list(collated["attention_mask"].shape),
        "prompt_length": fo.PROMPT_LENGTH,
        "trainable_parameters": {
            "dpf": sum(p.numel() for p in fusion_params),
            "peft": sum(p.numel() for p in peft_params),
        },
    }
    return result


FLOP_COUNTED = ("dpf_step", "peft_step", "infer_forward", "predict_mixed")
THREAD_VARIANTS = ("matmul", "dpf_step", "peft_step", "infer_forward")
ONE_THREAD = "_1_thread"


def summarise_side_by_side(times: dict[str, list[float]], flops: dict[str, int]) -> dict:
    """Medians, FLOP rates against the matmul peak, and the ratios of sections 1-3."""
    median = {name: statistics.median(values) for name, values in times.items()}
    timed = [name for name in times if not name.endswith("_cpu")]

    def rates(name: str) -> tuple[float, float] | None:
        count = flops.get(name.removesuffix(ONE_THREAD))
        if count is None:
            return None
        return count / (median[name] / 1000), count / (median[f"{name}_cpu"] / 1000)

    # The peak is the faster matmul (all threads or one); per CPU-second, the best core.
    matmuls = [rates(name) for name in timed if name.startswith("matmul")]
    peak, core_peak = max(wall for wall, _ in matmuls), max(cpu for _, cpu in matmuls)
    figures = {}
    for name in timed:
        figure = {"ms": round(median[name], 1), "cpu_ms": round(median[f"{name}_cpu"], 1)}
        if (found := rates(name)) is not None:
            wall, cpu = found
            figure.update(
                gflop=round(flops[name.removesuffix(ONE_THREAD)] / 1e9, 2),
                gflops=round(wall / 1e9, 2),
                of_peak=round(wall / peak, 3),
                of_core_peak=round(cpu / core_peak, 3),
            )
        figures[name] = figure

    def ratio(top: str, bottom: str) -> float | None:
        if top not in median or bottom not in median:
            return None
        return round(median[top] / median[bottom], 4)

    return {
        "peak_gflops": round(peak / 1e9, 2),
        "core_peak_gflops_per_cpu_s": round(core_peak / 1e9, 2),
        "figures": figures,
        "step_ratio": ratio("dpf_step", "peft_step"),
        "step_ratio_cpu": ratio("dpf_step_cpu", "peft_step_cpu"),
        "step_ratio_1_thread": ratio(f"dpf_step{ONE_THREAD}", f"peft_step{ONE_THREAD}"),
        "mixed_vs_single": ratio("predict_single", "predict_mixed"),
        "mixed_vs_loop": ratio("predict_loop", "predict_mixed"),
        "goals": {key: GOALS[key] for key in ("step_ratio", "peak_fraction", "mixed_ratio")},
        "times_ms": {name: [round(v, 1) for v in values] for name, values in times.items()},
    }


# -- section 4: adding task n ------------------------------------------------------------------


def peak_rss_reset() -> bool:
    """Reset the process's peak RSS (Linux); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def rss_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1))


def stored_bytes(registry_file: Path) -> int:
    import sqlite3

    with sqlite3.connect(registry_file) as connection:
        return int(connection.execute("SELECT SUM(LENGTH(data)) FROM artifacts").fetchone()[0])


def mixed_batch_evaluate(parts, strategy, split: str, task_ids) -> dict[int, float]:
    """The checkpoint's evaluation done another way: every task's rows in shared batches.

    A stand-in for ``StrategyParts.evaluate`` (one Avalanche eval experience per task, so one
    small batch per task and split), to measure what batching all tasks together would gain.
    """
    from torch.utils.data import DataLoader

    model = strategy.model
    items = [item for task_id in task_ids for item in parts.tasks[task_id].splits[split]]
    loader = DataLoader(items, batch_size=strategy.eval_mb_size, collate_fn=model.backbone.collate)
    correct, seen = torch.zeros(len(parts.tasks)), torch.zeros(len(parts.tasks))
    with torch.no_grad():
        for batch in loader:
            batch = batch.to(model.backbone.device)
            hits = (model(batch).argmax(1) == batch["labels"]).float().cpu()  # [b]
            ids = batch["task_ids"].cpu()
            correct.index_add_(0, ids, hits)
            seen.index_add_(0, ids, torch.ones_like(hits))
    return {task_id: float(correct[task_id] / seen[task_id]) for task_id in task_ids}


def add_task_n(stream: SyntheticStream, template: Path, n: int, config, *, evaluate=None) -> dict:
    """Train task n of a copy of ``template`` and time its parts.

    Args:
        evaluate: A replacement for ``StrategyParts.evaluate`` (the package's when ``None``).
    """
    from dpf_continual.strategies import build
    from dpf_continual.strategies.runner import Observer, train_stream

    folder = Path(tempfile.mkdtemp(prefix=f"speed-n{n}-"))
    path = folder / "registry.db"
    shutil.copy(template, path)
    registry = Registry.open(f"sqlite:///{path}")
    before = stored_bytes(path)
    spent = {"evaluate": [0.0, 0.0], "commit": [0.0, 0.0]}  # wall and CPU seconds
    marks: dict = {}
    steps: list[float] = []

    def timed(key, call):
        def run(*args, **kwargs):
            start = clocks()
            try:
                return call(*args, **kwargs)
            finally:
                spent[key] = [
                    a + b - c for a, b, c in zip(spent[key], clocks(), start, strict=True)
                ]

        return run

    def started(*_):
        peak_rss_reset()
        marks.update(rss_start=rss_kib("VmRSS"), start=clocks())
        spent.update(evaluate=[0.0, 0.0], commit=[0.0, 0.0])

    def finished(name, version, scores):
        marks.update(end=clocks(), peak=rss_kib("VmHWM"), scores=scores)

    original = build.StrategyParts.evaluate
    build.StrategyParts.evaluate = timed("evaluate", evaluate or original)
    registry.commit_version = timed("commit", registry.commit_version)
    began = time.perf_counter()
    observer = Observer(
        task_started=started,
        step=lambda *_: steps.append(time.perf_counter()),
        task_finished=finished,
    )
    try:
        train_stream(registry, config, observer=observer, backbone=stream.backbone)
    finally:
        build.StrategyParts.evaluate = original
    wall, cpu = (end - start for end, start in zip(marks["end"], marks["start"], strict=True))
    intervals = [b - a for a, b in zip(steps, steps[1:], strict=False)]
    result = {
        "n": n,
        "setup_s": round(marks["start"][0] - began, 2),
        "task_s": round(wall, 2),
        "train_s": round(wall - spent["evaluate"][0] - spent["commit"][0], 2),
        "train_cpu_s": round(cpu - spent["evaluate"][1] - spent["commit"][1], 2),
        "evaluate_s": round(spent["evaluate"][0], 2),
        "commit_s": round(spent["commit"][0], 2),
        "step_ms": round(1000 * statistics.median(intervals), 1),
        "fusion_cpu_ms": fusion_cost(registry, n, config),
        "rss_start_mib": round(marks["rss_start"] / 1024, 1),
        "peak_rss_mib": round(marks["peak"] / 1024, 1),
        "rss_rise_mib": round((marks["peak"] - marks["rss_start"]) / 1024, 1),
        "registry_bytes_added": stored_bytes(path) - before,
        "trainable_parameters": trainable_now(registry),
        "test_scores": marks["scores"],
    }
    registry.close()
    shutil.rmtree(folder, ignore_errors=True)
    return result


def _median(values: list[float]) -> float | int:
    middle = statistics.median(values)
    return int(middle) if all(isinstance(v, int) for v in values) else round(middle, 2)


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def fusion_cost(registry: Registry, n: int, config, repeats: int = 20) -> float:
    """Median CPU ms of the fusion module's forward and backward on a batch as task n trains.

    The batch is drawn like a training batch: the new task's rows and an even share of the
    replay buffer for each earlier task, so it mixes more tasks (and mask patterns) as n grows.
    """
    module = DynamicPromptFusion.from_storage(registry.pool_state())  # trained on task n
    rng = random.Random(n)
    earlier = [task for task in range(n - 1) for _ in range(config.replay_size // (n - 1))]
    pool = [n - 1] * 16 + earlier
    task_ids = torch.tensor(rng.sample(pool, config.batch_size))
    upstream = torch.randn(config.batch_size, *module.pool.stacked().shape[1:])
    times = []
    for _ in range(repeats):
        start = time.process_time()
        (module(task_ids) * upstream).sum().backward()
        times.append(time.process_time() - start)
        module.zero_grad(set_to_none=True)
    return round(1000 * statistics.median(times), 2)


def trainable_now(registry: Registry) -> int:
    """Parameters trained for the newest task (its prompts, every scheduler logit, the gate)."""
    module = DynamicPromptFusion.from_storage(registry.pool_state())
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def growth(backbone, counts: list[int], *, repeats: int, steps: int, sizes: dict) -> dict:
    """Section 4 (and the registry half of 5): the cost of adding task n."""
    from dpf_continual.strategies.config import TrainConfig

    config = TrainConfig(
        max_steps=steps,
        epochs=1000,  # so every task runs exactly max_steps steps
        batch_size=16,
        eval_batch_size=64,
        replay_size=64,
        seed=0,
        device="cpu",
    )
    stream = SyntheticStream(backbone, max(counts), sizes)
    folder = Path(tempfile.mkdtemp(prefix="speed-templates-"))
    templates = {}
    for n in counts:
        progress.log(f"writing a registry with {n - 1} trained tasks and task {n} pending")
        templates[n] = folder / f"n{n}.db"
        stream.registry(f"sqlite:///{templates[n]}", n, trained=n - 1).close()

    runs: dict[int, list[dict]] = {n: [] for n in counts}
    for round_index in range(repeats):
        for n in counts if round_index % 2 == 0 else counts[::-1]:
            progress.log(f"round {round_index + 1}/{repeats}: adding task {n}")
            runs[n].append(add_task_n(stream, templates[n], n, config))
    largest = counts[-1]
    progress.log(f"adding task {largest} again, evaluating in mixed-task batches")
    probe = add_task_n(stream, templates[largest], largest, config, evaluate=mixed_batch_evaluate)
    shutil.rmtree(folder, ignore_errors=True)

    rows = []
    for n in counts:
        keys = [key for key in runs[n][0] if key not in ("n", "test_scores")]
        row = {key: _median([run[key] for run in runs[n]]) for key in keys}
        rows.append({"n": n, **row, "runs": runs[n]})
    first, last = rows[0], rows[-1]
    return {
        "steps_per_task": steps,
        "replay_size": config.replay_size,
        "batch_size": config.batch_size,
        "examples_per_task": {split: 4 * size for split, size in sizes.items()},
        "repeats": repeats,
        "rows": rows,
        "train_ratio": round(last["train_s"] / first["train_s"], 3),
        "train_cpu_ratio": round(last["train_cpu_s"] / first["train_cpu_s"], 3),
        "step_ratio": round(last["step_ms"] / first["step_ms"], 3),
        "peak_rss_ratio": round(last["peak_rss_mib"] / first["peak_rss_mib"], 3),
        "evaluate_ratio": round(last["evaluate_s"] / first["evaluate_s"], 3),
        "goal": GOALS["growth_ratio"],
        "mixed_evaluation": {
            "n": largest,
            "avalanche_s": last["evaluate_s"],
            "mixed_s": probe["evaluate_s"],
            "speedup": round(last["evaluate_s"] / probe["evaluate_s"], 2),
            "max_score_difference": max(
                abs(score - runs[largest][0]["test_scores"][task])
                for task, score in probe["test_scores"].items()
            ),
        },
    }


# -- output ------------------------------------------------------------------------------------


def _row(figure: str, value: str, goal: str = "", met: bool | None = None) -> tuple[str, ...]:
    return figure, value, goal, "" if met is None else ("met" if met else "not met")


def summary_rows(report: dict) -> list[tuple[str, ...]]:
    """(figure, value, goal, result) rows of the summary table."""
    rows = []
    if side := report.get("side_by_side"):
        figures = side["figures"]
        for suffix, note in (("", ""), (ONE_THREAD, ", 1 thread")):
            if (ratio := side[f"step_ratio{suffix}"]) is not None:
                dpf, peft = figures[f"dpf_step{suffix}"]["ms"], figures[f"peft_step{suffix}"]["ms"]
                value = f"{dpf:.0f} / {peft:.0f} ms = {ratio:.3f}"
                met = ratio <= GOALS["step_ratio"]
                rows.append(_row(f"DPF step / PEFT step{note}", value, "<= 1.05", met))
        peak = f"{side['peak_gflops']:.1f} GFLOP/s"
        rows.append(_row(f"matmul {PEAK_SIZE}² fp32, faster of all threads and 1 (peak)", peak))
        for name, label in LABELS.items():
            for suffix, note in (("", ""), (ONE_THREAD, ", 1 thread")):
                if (figure := figures.get(f"{name}{suffix}")) is None:
                    continue
                value = (
                    f"{figure['gflops']:.1f} GFLOP/s = {100 * figure['of_peak']:.0f}% "
                    f"(per CPU-second {100 * figure['of_core_peak']:.0f}%)"
                )
                met = figure["of_peak"] >= GOALS["peak_fraction"]
                rows.append(_row(f"{label}{note}: FLOP/s / peak", value, ">= 70%", met))
        mixed, single, loop = (figures[f"predict_{k}"]["ms"] for k in ("mixed", "single", "loop"))
        ratio = side["mixed_vs_single"]
        value = f"{single:.0f} / {mixed:.0f} ms = {ratio:.3f}"
        met = ratio >= GOALS["mixed_ratio"]
        rows.append(_row("64 rows of 8 tasks vs 64 rows of 1 task", value, ">= 0.9", met))
        value = f"{loop:.0f} / {mixed:.0f} ms = {side['mixed_vs_loop']:.2f}x faster"
        rows.append(_row("64 rows of 8 tasks vs one call per task", value))
    if grown := report.get("growth"):
        first, last = grown["rows"][0], grown["rows"][-1]
        pair = f"task {last['n']} / task {first['n']}"
        for key, label, unit in (("train_s", "training time", "s"),
                                 ("peak_rss_mib", "peak RSS", "MiB")):  # fmt: skip
            ratio = last[key] / first[key]
            value = f"{last[key]:.1f} / {first[key]:.1f} {unit} = {ratio:.2f}"
            rows.append(_row(f"{label}, {pair}", value, "<= 1.2", ratio <= GOALS["growth_ratio"]))
        ratio = grown["train_cpu_ratio"]
        value = f"{last['train_cpu_s']:.1f} / {first['train_cpu_s']:.1f} s = {ratio:.2f}"
        rows.append(_row(f"training CPU time, {pair}", value))
        value = f"{last['evaluate_s']:.1f} / {first['evaluate_s']:.1f} s"
        rows.append(_row(f"evaluation time, {pair} (grows with n)", value))
        if probe := grown.get("mixed_evaluation"):
            value = (
                f"{probe['avalanche_s']:.1f} -> {probe['mixed_s']:.1f} s "
                f"({probe['speedup']:.1f}x, scores differ by {probe['max_score_difference']})"
            )
            rows.append(_row(f"evaluation of task {last['n']} in mixed-task batches", value))
    if routing := report.get("routing"):
        rows.append(
            _row("routing accuracy, LFPT5 test inputs", f"{100 * routing['accuracy']:.1f}%")
        )
    return rows


LABELS = {
    "dpf_step": "DPF training step",
    "infer_forward": "inference forward, 64 rows",
    "predict_mixed": "Predictor.predict, 64 rows",
}


def render(rows: list[tuple[str, ...]]) -> Table:
    table = Table(title="Speed suite")
    for column in ("figure", "value", "goal", "result"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    return table


def markdown(rows: list[tuple[str, ...]]) -> str:
    lines = ["| figure | value | goal | result |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def growth_table(grown: dict) -> Table:
    title = (
        f"Adding task n ({grown['steps_per_task']} steps, replay {grown['replay_size']}, "
        f"medians of {grown['repeats']})"
    )
    table = Table(title=title)
    for header in GROWTH_COLUMNS.values():
        table.add_column(header, justify="right")
    for row in grown["rows"]:
        table.add_row(*(str(row[column]) for column in GROWTH_COLUMNS))
    return table


GROWTH_COLUMNS = {
    "n": "n",
    "train_s": "train s",
    "train_cpu_s": "train CPU s",
    "step_ms": "step ms",
    "fusion_cpu_ms": "fusion CPU ms",
    "evaluate_s": "eval s",
    "commit_s": "write s",
    "setup_s": "setup s",
    "peak_rss_mib": "peak RSS MiB",
    "rss_rise_mib": "RSS rise MiB",
    "registry_bytes_added": "registry bytes",
    "trainable_parameters": "trainable",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        epilog="Example: .venv/bin/python benchmarks/speed_suite.py --quick",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer rounds, fewer steps and smaller eval sets"
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["side", "growth", "routing"],
        choices=["side", "growth", "routing"],
    )
    parser.add_argument(
        "--counts",
        type=int,
        nargs="+",
        default=[2, 10, 25, 50],
        help="values of n for the growth section",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for the growth and routing sections (default: torch's choice); "
        "the side-by-side section always times all threads and one thread",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _count_cpu_attention()
    torch.manual_seed(0)
    started = time.perf_counter()
    report: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "mode": "quick" if args.quick else "full",
        "machine": {
            **fo.machine_info("cpu"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_before": os.getloadavg(),
        },
    }
    backbone = load_backbone(DEFAULT_BACKBONE, device="cpu")

    if "side" in args.sections:
        with tempfile.TemporaryDirectory() as folder:
            sizes = {"train": 4, "dev": 1, "test": 1}
            stream = SyntheticStream(backbone, INFER_TASKS, sizes)
            url = f"sqlite:///{folder}/predict.db"
            registry = stream.registry(url, INFER_TASKS, trained=INFER_TASKS)
            predictor = Predictor(registry, backbone=backbone, batch_size=INFER_ROWS)
            registry.close()
            repeats, warmup = (6, 1) if args.quick else (10, 2)
            report["side_by_side"] = side_by_side(
                backbone, predictor, repeats=repeats, warmup=warmup
            )
    if args.threads:
        torch.set_num_threads(args.threads)
    report["machine"]["threads_after_side_by_side"] = torch.get_num_threads()
    if "growth" in args.sections:
        sizes = (
            {"train": 4, "dev": 1, "test": 1} if args.quick else {"train": 8, "dev": 2, "test": 2}
        )
        report["growth"] = growth(
            backbone,
            sorted(args.counts),
            repeats=1 if args.quick else 2,
            steps=4 if args.quick else 8,
            sizes=sizes,
        )
    data_root = os.environ.get("DPF_DATA_ROOT")
    if "routing" in args.sections and data_root:
        from routing import QUICK_PER_TASK, routing_accuracy

        per_task = QUICK_PER_TASK if args.quick else None
        report["routing"] = routing_accuracy(Path(data_root), backbone=backbone, per_task=per_task)

    report["machine"]["load_after"] = os.getloadavg()
    report["wall_s"] = round(time.perf_counter() - started, 1)
    rows = summary_rows(report)
    report["markdown"] = markdown(rows)
    console.print(render(rows))
    if "growth" in report:
        console.print(growth_table(report["growth"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out} ({report['wall_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
