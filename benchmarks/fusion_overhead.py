"""How much Dynamic Prompt Fusion adds to a training step, next to PEFT prompt tuning.

Goal: a DPF step takes at most 5% longer than a PEFT prompt-tuning step on the same frozen
backbone, with the same batch and the same prompt length.

Notation: b batch size, L prompt length, d width, K prompts in the pool, T tasks, O options per
row, N (row, option) pairs of a decoder batch, M target tokens of those pairs, V vocabulary.

The two steps, on one batch of b = 16 rows (4 tasks mixed, 4 options each, 30-40 tokens)::

    DPF:  prompt = fusion(task_ids)                       # [b, L, d], K = 8, T = 4
          scores = backbone.option_scores(prompt, batch)  # [b, O]
    PEFT: scores = PEFT's prompted forward of the same model, scored the same way  # [b, O]
    both: loss = cross_entropy(scores, labels); backward; AdamW step on the prompt parameters

How the PEFT step is wired, and why it is a fair comparison:

* ``peft.get_peft_model`` wraps the very model object the backbone holds, with
  ``PromptTuningConfig(num_virtual_tokens=L)``. Its own ``forward`` embeds the input, concatenates
  its prompt and extends the attention mask; only the scoring that follows is ours, and it is the
  backbone's scoring, written out again:
* encoder (``FEATURE_EXTRACTION``): mean pool over prompt and input positions, cosine to the
  cached option embeddings, times ``backbone.scale``.
* decoder (``CAUSAL_LM``): the (row, option) sequences of ``DecoderBackbone.collate``; the LM head
  runs only at target positions (``logits_to_keep`` as a boolean mask, so PEFT is not charged
  for full-vocabulary logits that our backbone never computes); mean log-probability per option.
* Before timing, the script checks that the PEFT path gives the same scores as
  ``backbone.option_scores`` fed with PEFT's prompt (``parity`` in the output), so the two steps
  differ only in where the prompt comes from.

The fusion is set up as it stands while the fourth task trains: 2 prompts per task, so each
older task has the newer prompts masked and ``_mix`` takes its per-mask-pattern path (the
slower one). All 8 prompts, the scheduler logits and the [d, d] gate are trainable (training
freezes old prompts by default; training them all is the costlier case). The loss is the plain
mean cross-entropy for both; per-task loss weighting belongs to the strategy, not the fusion.

Timing: steps alternate DPF and PEFT, with the order swapped every round (A B, B A, A B...) so
neither always runs first; a few warm-up rounds are dropped; the figure is the median of each.
The ratio is median DPF / median PEFT, in wall-clock time (the goal is judged on it). Process
CPU time is recorded beside it: other programs on a shared machine stretch wall-clock time at
random, but not this process's CPU time, so the CPU ratio is the steadier second opinion. The
prompt modules alone (forward, backward and AdamW step, no backbone) are timed too, to show
where a difference comes from; since nothing else differs between the steps, the PEFT step's
CPU time plus the modules' difference gives an estimated ratio (``est. ratio``) that needs no
quiet machine. The exit status is 1 when a backbone misses the goal on the measured ratio.

Example::

    .venv/bin/python benchmarks/fusion_overhead.py --quick
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import peft
import torch
import torch.nn.functional as F
import transformers
from peft import PromptTuningConfig, TaskType, get_peft_model
from rich.console import Console
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table
from torch import Tensor
from transformers import BatchEncoding

from dpf_continual.backbones import Backbone, DecoderBackbone, Item, load_backbone, mean_pool
from dpf_continual.fusion import DynamicPromptFusion

GOAL = 1.05
BATCH_SIZE = 16
PROMPT_LENGTH = 20
PROMPTS_PER_TASK = 2
LEARNING_RATE = 0.03  # TrainConfig's default
DEFAULT_BACKBONES = ("sentence-transformers/all-MiniLM-L6-v2", "smollm2")
RESULTS = Path(__file__).resolve().parent / "results" / "fusion_overhead.json"

# Four short tasks; the batch takes the rows in turn, so every task appears in it.
TASKS = {
    "sentiment": (
        ("positive", "negative", "neutral", "mixed"),
        [
            "The hotel room was small and the breakfast ran out early, but the staff were so "
            "friendly and helpful that we would happily book the same place again for our "
            "trip next summer.",
            "I waited forty minutes for a cold pizza, the driver was rude on the phone, and "
            "nobody from the restaurant has answered either of my emails about a refund yet.",
            "The new update moves the settings menu to the left side of the screen and adds "
            "a dark theme for the evening; otherwise the app works exactly the way it always did.",
            "Battery life is excellent and the screen is sharp, although the speakers sound "
            "thin at high volume and the case scratches far too easily for the price they ask.",
        ],
    ),
    "topic": (
        ("sports", "business", "science", "politics"),
        [
            "The home side scored twice in the last ten minutes to win the cup final, and "
            "their young goalkeeper saved a penalty in the first half to keep them in the game.",
            "Shares of the retailer fell eight percent after it cut its yearly forecast, "
            "blaming weak holiday sales, a warm winter and higher shipping costs in Europe.",
            "Astronomers found water vapour in the atmosphere of a planet twice the size of "
            "Earth, orbiting a small and quiet red star about a hundred light years away from us.",
            "The senate passed the budget bill late on Thursday after a long debate, sending "
            "it back to the lower house for a final vote that is expected early next week.",
        ],
    ),
    "intent": (
        ("question", "complaint", "request", "praise"),
        [
            "Could you tell me whether the museum is open on public holidays and if children "
            "under twelve still get in for free when they come along with an adult?",
            "This is the third time my parcel has been left outside in the rain even though "
            "I asked, twice, for it to be delivered to the neighbour across the road.",
            "Please send me a copy of last month's invoice and change the billing address on "
            "my account to the new office on River Street from the first of next month.",
            "Your support team fixed my connection problem within an hour and explained every "
            "step clearly, so thank you very much for the quick and patient help.",
        ],
    ),
    "inference": (
        ("entailment", "contradiction", "neutral", "unrelated"),
        [
            "Premise: A man in a red jacket is repairing an old bicycle on the pavement. "
            "Hypothesis: Someone is fixing a bike outside on the street near a shop.",
            "Premise: Two small children are building a sandcastle on a crowded beach. "
            "Hypothesis: The children are asleep in their beds at home in the city.",
            "Premise: A woman is reading a newspaper at a small table outside a cafe. "
            "Hypothesis: The woman is waiting for an old friend to arrive from the station.",
            "Premise: The orchestra tuned their instruments before the evening concert began. "
            "Hypothesis: The recipe needs two cups of flour, some butter and an egg.",
        ],
    ),
}

console = Console(width=None if sys.stdout.isatty() else 120)
progress = Console(stderr=True)


def make_items(batch_size: int = BATCH_SIZE) -> list[Item]:
    """``batch_size`` rows that cycle through the tasks (row i belongs to task i mod T)."""
    tasks = list(TASKS.values())
    items = []
    for row in range(batch_size):
        task_id = row % len(tasks)
        options, texts = tasks[task_id]
        text = texts[(row // len(tasks)) % len(texts)]
        items.append(Item(task_id, text, options[row % len(options)], options))
    return items


# -- the two prompt sources ------------------------------------------------------------------


def build_fusion(backbone: Backbone, *, prompt_length: int, seed: int = 0) -> DynamicPromptFusion:
    """A fusion module grown task by task, as it is while the last of the tasks trains."""
    generator = torch.Generator().manual_seed(seed)
    fusion = DynamicPromptFusion(prompt_length=prompt_length, hidden_size=backbone.hidden_size)
    embeddings = backbone.embed_texts([f"{name} classification" for name in TASKS])  # [T, d]
    for embedding in embeddings:
        fusion.add_prompts(
            PROMPTS_PER_TASK,
            backbone.vocabulary_prompts(PROMPTS_PER_TASK, prompt_length, generator),
        )
        fusion.add_task(embedding)  # sees every prompt so far; older tasks do not see the new
    return fusion.to(backbone.device)


def build_peft(backbone: Backbone, *, prompt_length: int, seed: int = 0) -> peft.PeftModel:
    """PEFT prompt tuning around the backbone's own model, its prompt started like ours."""
    decoder = isinstance(backbone, DecoderBackbone)
    kind = TaskType.CAUSAL_LM if decoder else TaskType.FEATURE_EXTRACTION
    config = PromptTuningConfig(task_type=kind, num_virtual_tokens=prompt_length)
    model = get_peft_model(backbone.model, config)
    generator = torch.Generator().manual_seed(seed + 1)
    init = backbone.vocabulary_prompts(1, prompt_length, generator)[0]  # [L, d]
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.copy_(init)
    return model


def peft_encoder_scores(model: peft.PeftModel, backbone: Backbone, batch) -> Tensor:
    """Option scores [b, O] from PEFT's prompted encoder forward, scored like the backbone."""
    mask = batch["attention_mask"]  # [b, s]
    table = backbone.option_embeddings()  # [n, d]
    with backbone.autocast():
        states = model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state

    # PEFT extends the mask inside its forward; pooling needs the same extended mask.
    prefix = states.shape[1] - mask.shape[1]  # L
    ones = torch.ones(mask.shape[0], prefix, dtype=mask.dtype, device=mask.device)
    full_mask = torch.cat([ones, mask], dim=1)  # [b, L + s]
    pooled = F.normalize(mean_pool(states.float(), full_mask), dim=-1)  # [b, d]
    option_ids = batch["option_ids"]  # [b, O]
    chosen = table[option_ids.clamp(min=0)]  # [b, O, d]
    scores = backbone.scale * torch.einsum("bd,bod->bo", pooled, chosen)
    return scores.masked_fill(option_ids < 0, float("-inf"))


def peft_decoder_scores(model: peft.PeftModel, backbone: Backbone, batch, length: int) -> Tensor:
    """Option scores [b, O] from PEFT's prompted causal-LM forward, scored like the backbone."""
    ids, mask, targets = batch["pair_ids"], batch["pair_mask"], batch["target_mask"]  # [N, s]

    # The state before each target token, shifted past the L prompt positions: [N, L + s].
    keep = F.pad(targets, (length - 1, 1)).bool()
    with backbone.autocast():
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=keep).logits  # [M, V]
    pair, position = targets.nonzero(as_tuple=True)  # [M], [M]
    log_probs = torch.log_softmax(logits.float(), dim=-1)  # [M, V]
    token = log_probs.gather(1, ids[pair, position][:, None]).squeeze(1)  # [M]
    total = torch.zeros(ids.shape[0], device=ids.device).index_add(0, pair, token)
    pair_scores = total / targets.sum(1).clamp(min=1)  # [N]
    padded = torch.cat([pair_scores, pair_scores.new_full((1,), float("-inf"))])
    return padded[batch["layout"]]  # [b, O]


# -- timing ----------------------------------------------------------------------------------


def make_step(
    scores: Callable[[], Tensor], params: list[Tensor], labels: Tensor
) -> Callable[[], None]:
    """One training step: scores, cross-entropy, backward, AdamW step on ``params``."""
    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.0)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(scores(), labels).backward()
        optimizer.step()

    return step


def timed(step: Callable[[], None], sync: Callable[[], None]) -> tuple[float, float]:
    """Wall-clock and process CPU milliseconds of one call of ``step`` (device work included).

    CPU time counts every thread of this process and nothing of other processes, so it is the
    steadier figure on a shared machine; wall-clock time is the one a user waits for.
    """
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    step()
    sync()
    return (time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0


def time_interleaved(
    steps: dict[str, Callable[[], None]],
    *,
    repeats: int,
    warmup: int,
    sync: Callable[[], None],
    label: str | None = None,
) -> dict[str, list[float]]:
    """Run the steps in alternating order for ``warmup + repeats`` rounds; keep the last ones.

    Returns:
        Wall-clock ms under each step's name and CPU ms under ``<name>_cpu``, round by round.
        A progress bar goes to stderr when ``label`` is given.
    """
    names = list(steps)
    times: dict[str, list[float]] = {key: [] for name in names for key in (name, f"{name}_cpu")}
    columns = (*Progress.get_default_columns(), TimeElapsedColumn())
    with Progress(*columns, console=progress, disable=label is None) as bar:
        task = bar.add_task(label or "", total=warmup + repeats)
        gc.collect()
        gc.disable()  # a collection landing in one step would only add noise
        try:
            for round_index in range(warmup + repeats):
                order = names if round_index % 2 == 0 else names[::-1]
                for name in order:
                    wall, cpu = timed(steps[name], sync)
                    if round_index >= warmup:
                        times[name].append(wall)
                        times[f"{name}_cpu"].append(cpu)
                bar.advance(task)
        finally:
            gc.enable()
    return times


def time_prompt_modules(
    sources: dict[str, tuple[Callable[[], Tensor], list[Tensor]]],
    *,
    repeats: int,
    sync: Callable[[], None],
) -> dict[str, float]:
    """Median ms of forward, backward and AdamW step of each prompt source alone."""
    steps = {}
    for name, (forward, params) in sources.items():
        optimizer = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=0.0)
        upstream = torch.randn_like(forward())  # a stand-in for the backbone's gradient

        def step(forward=forward, optimizer=optimizer, upstream=upstream) -> None:
            optimizer.zero_grad(set_to_none=True)
            (forward() * upstream).sum().backward()
            optimizer.step()

        steps[name] = step
    times = time_interleaved(steps, repeats=repeats, warmup=5, sync=sync)
    return {name: statistics.median(values) for name, values in times.items()}  # wall and CPU


# -- one backbone ----------------------------------------------------------------------------


@dataclass
class Contest:
    """One backbone, one batch, and the two prompt sources that compete on it."""

    backbone: Backbone
    batch: BatchEncoding
    fusion: DynamicPromptFusion
    peft_model: peft.PeftModel

    def dpf_scores(self) -> Tensor:
        """Option scores [b, O] with the fused prompts, through ``backbone.option_scores``."""
        return self.backbone.option_scores(self.fusion(self.batch["task_ids"]), self.batch)

    def peft_scores(self) -> Tensor:
        """Option scores [b, O] through PEFT's own prompted forward."""
        if isinstance(self.backbone, DecoderBackbone):
            return peft_decoder_scores(self.peft_model, self.backbone, self.batch, PROMPT_LENGTH)
        return peft_encoder_scores(self.peft_model, self.backbone, self.batch)

    def parity(self) -> float:
        """Largest |difference| between PEFT's path and ``option_scores`` fed PEFT's prompt."""
        with torch.no_grad():
            prompt = self.peft_model.get_prompt(batch_size=BATCH_SIZE)  # [b, L, d]
            reference = self.backbone.option_scores(prompt, self.batch)  # [b, O]
            ours = self.peft_scores()  # [b, O]
        finite = torch.isfinite(reference)
        if not torch.equal(finite, torch.isfinite(ours)):
            raise RuntimeError("PEFT scores and backbone scores disagree on padded options")
        return float((reference[finite] - ours[finite]).abs().max())


def set_up(name: str, device: str) -> Contest:
    """Load the backbone, collate the batch, and build both prompt sources around it."""
    backbone = load_backbone(name, device=device)
    if isinstance(backbone, DecoderBackbone):
        # One full sequence per (example, option) pair, the layout PEFT's prompted forward
        # needs: both sides then do the same work and only the prompts differ.
        backbone.shared_prefix = False
    batch = backbone.collate(make_items()).to(backbone.device)
    if not isinstance(backbone, DecoderBackbone):
        backbone.option_embeddings()  # embed the option texts once, as training does
    fusion = build_fusion(backbone, prompt_length=PROMPT_LENGTH)
    with torch.no_grad():
        before = backbone.option_scores(fusion(batch["task_ids"]), batch)  # [b, O]

    # Wrapping the model in PEFT must not change what the DPF path computes.
    contest = Contest(backbone, batch, fusion, build_peft(backbone, prompt_length=PROMPT_LENGTH))
    with torch.no_grad():
        torch.testing.assert_close(contest.dpf_scores(), before)
    return contest


def bench_backbone(name: str, *, repeats: int, warmup: int, device: str) -> dict:
    """Time DPF and PEFT steps on one backbone; returns the row of the results file."""
    started = time.perf_counter()
    progress.log(f"loading {name}")
    contest = set_up(name, device)
    parity = contest.parity()
    fusion, model, batch = contest.fusion, contest.peft_model, contest.batch
    fusion_params = [p for p in fusion.parameters() if p.requires_grad]
    peft_params = [p for p in model.parameters() if p.requires_grad]
    steps = {
        "dpf": make_step(contest.dpf_scores, fusion_params, batch["labels"]),
        "peft": make_step(contest.peft_scores, peft_params, batch["labels"]),
    }
    sync = _sync_for(contest.backbone.device)
    label = f"{name.rsplit('/', 1)[-1]}: {warmup} warm-up + {repeats} rounds"
    times = time_interleaved(steps, repeats=repeats, warmup=warmup, sync=sync, label=label)
    sources = {
        "dpf": (lambda: fusion(batch["task_ids"]), fusion_params),
        "peft": (lambda: model.get_prompt(batch_size=BATCH_SIZE), peft_params),
    }
    alone = time_prompt_modules(sources, repeats=max(20, repeats), sync=sync)

    row = _summarise(name, contest.backbone, times, alone)
    sequences = batch["pair_mask"] if "pair_mask" in batch else batch["attention_mask"]
    row.update(
        sequences=int(sequences.shape[0]),
        mean_sequence_tokens=round(float(sequences.sum(1).float().mean()), 1),
        prompts=fusion.num_prompts,
        tasks=fusion.num_tasks,
        trainable_parameters={"dpf": _count(fusion_params), "peft": _count(peft_params)},
        parity_max_abs_diff=parity,
        seconds=round(time.perf_counter() - started, 1),
    )
    return row


def _summarise(name: str, backbone: Backbone, times: dict, alone: dict) -> dict:
    dpf, base = statistics.median(times["dpf"]), statistics.median(times["peft"])
    paired = [a / b for a, b in zip(times["dpf"], times["peft"], strict=True)]
    dpf_cpu, base_cpu = statistics.median(times["dpf_cpu"]), statistics.median(times["peft_cpu"])

    # The steps differ only in the prompt module, so its extra time over a PEFT step predicts
    # the ratio with far less noise than two whole steps. CPU time, except where a GPU works.
    suffix = "" if backbone.device.type == "cuda" else "_cpu"
    extra = alone[f"dpf{suffix}"] - alone[f"peft{suffix}"]
    estimate = 1 + extra / statistics.median(times[f"peft{suffix}"])
    return {
        "backbone": name,
        "kind": backbone.kind,
        "hidden_size": backbone.hidden_size,
        "b": BATCH_SIZE,
        "L": PROMPT_LENGTH,
        "median_ms_dpf": round(dpf, 2),
        "median_ms_peft": round(base, 2),
        "ratio": round(dpf / base, 4),
        "median_paired_ratio": round(statistics.median(paired), 4),
        "median_cpu_ms_dpf": round(dpf_cpu, 2),
        "median_cpu_ms_peft": round(base_cpu, 2),
        "cpu_ratio": round(dpf_cpu / base_cpu, 4),
        "module_estimate_ratio": round(estimate, 4),
        "iqr_pct_dpf": round(100 * _iqr(times["dpf"]) / dpf, 1),
        "iqr_pct_peft": round(100 * _iqr(times["peft"]) / base, 1),
        "goal": GOAL,
        "passed": dpf / base <= GOAL,
        "prompt_module_alone_ms": {key: round(value, 3) for key, value in alone.items()},
        "times_ms": {key: [round(v, 2) for v in values] for key, values in times.items()},
    }


def _iqr(values: list[float]) -> float:
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[2] - quartiles[0]


def _count(params: list[Tensor]) -> int:
    return sum(p.numel() for p in params)


def _sync_for(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


# -- command line ----------------------------------------------------------------------------


def machine_info(device: str) -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "cuda_device": (
            torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
        ),
    }


def render_table(rows: list[dict]) -> Table:
    table = Table(title="Training step: Dynamic Prompt Fusion vs PEFT prompt tuning")
    columns = (
        "backbone",
        "b",
        "L",
        "DPF ms",
        "PEFT ms",
        "ratio",
        "CPU ratio",
        "est. ratio",
        "goal",
        "result",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "backbone" else "right")
    for row in rows:
        table.add_row(
            row["backbone"].rsplit("/", 1)[-1],
            str(row["b"]),
            str(row["L"]),
            f"{row['median_ms_dpf']:.1f}",
            f"{row['median_ms_peft']:.1f}",
            f"{row['ratio']:.3f}",
            f"{row['cpu_ratio']:.3f}",
            f"{row['module_estimate_ratio']:.3f}",
            f"<= {row['goal']:.2f}",
            "pass" if row["passed"] else "FAIL",
        )
    return table


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0],
        epilog="Example: .venv/bin/python benchmarks/fusion_overhead.py --quick",
    )
    parser.add_argument(
        "--quick", action="store_true", help="MiniLM only, 8 rounds, 2 warm-up rounds"
    )
    parser.add_argument("--repeats", type=int, help="timed rounds (default 20; 8 with --quick)")
    parser.add_argument("--warmup", type=int, help="untimed rounds first (default 3; 2 quick)")
    parser.add_argument(
        "--backbones", nargs="+", help=f"names to load (default: {' '.join(DEFAULT_BACKBONES)})"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1...")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"JSON file (default {RESULTS})")
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (8 if args.quick else 20)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 3)
    if args.backbones is None:
        args.backbones = list(DEFAULT_BACKBONES[:1] if args.quick else DEFAULT_BACKBONES)
    if args.repeats < 2 or args.warmup < 0:
        parser.error(f"--repeats must be >= 2 and --warmup >= 0, got {args.repeats}, {args.warmup}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    # PEFT asks the model a question transformers has renamed; the notice is not ours to act on.
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    torch.manual_seed(0)
    info = machine_info(args.device)
    progress.log(f"torch threads: {info['torch_threads']} (cpu count {info['cpu_count']})")
    rows = [
        bench_backbone(name, repeats=args.repeats, warmup=args.warmup, device=args.device)
        for name in args.backbones
    ]

    console.print(render_table(rows))
    console.print(f"torch threads: {info['torch_threads']}, rounds: {args.repeats}")
    for row in rows:
        alone = row["prompt_module_alone_ms"]
        console.print(
            f"{row['backbone']}: paired ratio {row['median_paired_ratio']:.3f}, "
            f"IQR {row['iqr_pct_dpf']}% / {row['iqr_pct_peft']}% of the medians; "
            f"prompt modules alone {alone['dpf']:.2f} ms (fusion) vs {alone['peft']:.2f} ms "
            f"(PEFT) wall, {alone['dpf_cpu']:.2f} vs {alone['peft_cpu']:.2f} ms CPU; "
            f"parity {row['parity_max_abs_diff']:.1e}"
        )

    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "mode": "quick" if args.quick else ("full" if _is_full(args) else "custom"),
        "backbones": args.backbones,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "machine": info,
        "results": rows,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    console.print(f"wrote {args.out} ({report['wall_s']} s)")
    return 0 if all(row["passed"] for row in rows) else 1


def _is_full(args: argparse.Namespace) -> bool:
    return args.repeats == 20 and args.warmup == 3 and args.backbones == list(DEFAULT_BACKBONES)


if __name__ == "__main__":
    sys.exit(main())
