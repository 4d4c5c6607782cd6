"""What a backbone costs here: seconds per training step and per scored example, on LFPT5.

For each backbone of ``--backbones`` (default: the offline MiniLM encoder and, when
``make generative`` installed it, the offline SmolLM2-135M decoder), on each LFPT5 task of sample
``0_42``:

1. score ``--test-per-class`` test examples per class with the bare backbone (zero-shot accuracy
   and seconds per example);
2. train a 20-token prompt for ``--steps`` optimiser steps of batch 16 with the benchmarks' own
   loop (seconds per step; the first step of the first task also pays for warm-up).

From those times it projects the training part of the LFPT5 suite's full preset (24 steps per
task, 4 tasks, 99 runs) on this machine, which is what decides whether a suite can run on a
generative backbone without a GPU. An encoder's cost barely depends on the number of options (the
option texts are embedded once); a decoder reads every input once per option.

Example::

    .venv/bin/python benchmarks/learning/backbone_cost.py --backbones smollm2 --steps 2
"""

from __future__ import annotations

import time

import harness
import references

SAMPLE = "0_42"
SMOLLM2 = "smollm2"
LFPT5_FULL_RUNS = 99  # 3 orders x 3 samples x 11 methods
LFPT5_FULL_STEPS = 24
COLUMNS = [
    "backbone",
    "task (options)",
    "zero-shot",
    "ms / scored example",
    "s / step",
    "peak GiB",
    "",
]


def measure(backbone, tasks: list, steps: int, lr: float) -> list[dict]:
    """Zero-shot scoring and ``steps`` training steps on each task; seconds of each."""
    rows = []
    for index, task in enumerate(tasks):
        test = references.items_of(task, "test")
        started = time.perf_counter()
        zero_shot = references.accuracy(backbone, None, test, batch_size=16)
        scoring = (time.perf_counter() - started) / len(test)

        module = references.PlainPrompt(references.vocabulary_prompt(backbone, index))
        started = time.perf_counter()
        losses = references.fit(
            backbone, module, references.items_of(task, "train"), steps=steps, lr=lr
        )
        step = (time.perf_counter() - started) / steps
        rows.append(
            {
                "task": task.name,
                "options": len(task.options()),
                "zero_shot": zero_shot,
                "scored": len(test),
                "seconds_per_example": scoring,
                "seconds_per_step": step,
                "peak_rss_gib": _peak_rss_gib(),
                "losses": losses,
            }
        )
        harness.logger.info(
            "  %s: zero-shot %.3f, %.3f s per scored example, %.2f s per step",
            task.name, zero_shot, scoring, step,
        )  # fmt: skip
    return rows


def _layout(backbone) -> str:
    """How the backbone reads the options of an example."""
    if backbone.kind == "encoder":
        return "options embedded once"
    if getattr(backbone, "reads_input_once", False):
        return "input once, options on its cache"
    return "one sequence per pair"


def _peak_rss_gib() -> float:
    """The process's peak resident memory so far (it only grows), GiB."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**30 if sys.platform == "darwin" else 2**20), 2)


def markdown(payload: dict) -> str:
    rows = []
    for result in payload["backbones"]:
        if "error" in result:
            reason = f"not run: {result['error'][:160]}"
            rows.append([result["backbone"], "–", "–", "–", "–", "–", reason])
            continue
        for row in result["tasks"]:
            rows.append(
                [
                    f"{result['backbone']} ({result['kind']}; {result['layout']})",
                    f"{row['task']} ({row['options']})",
                    f"{100 * row['zero_shot']:.1f}",
                    f"{1000 * row['seconds_per_example']:.0f}",
                    f"{row['seconds_per_step']:.2f}",
                    f"{row['peak_rss_gib']:.1f}",
                    "",
                ]
            )
        rows.append(
            [
                f"**{result['backbone']}**",
                "",
                "",
                "",
                "",
                "",
                f"LFPT5 full preset, training only: **{result['lfpt5_full_hours']:.1f} h**",
            ]
        )
    plan = payload["settings"]
    return (
        "### Backbone cost\n\n"
        f"LFPT5 sample {SAMPLE}: {plan['test_per_class']} test examples per class scored by the "
        f"bare backbone, then {plan['steps']} steps of batch 16 training a "
        f"{harness.PROMPT_LENGTH}-token prompt (lr {plan['lr']:g}); inputs truncated to "
        f"{payload['max_length']} tokens; a generative backbone runs at most "
        f"{payload['sequences_per_pass']} (example, option) sequences per forward pass. "
        "Peak memory is the process's resident peak so far (backbones run one after the other). "
        "The projection multiplies the mean seconds per step by "
        f"{LFPT5_FULL_STEPS} steps x 4 tasks x {LFPT5_FULL_RUNS} runs (scoring not included).\n\n"
        + harness.markdown_table(COLUMNS, rows)
    )


def main() -> None:
    parser = harness.parser(__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backbones",
        nargs="+",
        default=[harness.DEFAULT_BACKBONE, SMOLLM2],
        help="hub names, folders or .gguf files (default: MiniLM and SmolLM2)",
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=list(harness.LFPT5_FOLDERS),
        default=list(harness.LFPT5_FOLDERS),
    )
    parser.add_argument("--steps", type=int, default=2, help="optimiser steps per task")
    parser.add_argument("--test-per-class", type=int, default=4, help="scored examples per class")
    parser.add_argument(
        "--full-sequences",
        action="store_true",
        help="decoders: one full sequence per (example, option) pair instead of reading each "
        "input once (the layout before the shared input; for comparison)",
    )
    args = parser.parse_args()
    if args.max_length is None:
        args.max_length = 64
    args.backbone = args.backbones[0]
    session = harness.start(args)
    lr = harness.chosen_learning_rates(session)["lr"]
    tasks = [
        harness.cap_task(harness.lfpt5_task(session, name, SAMPLE), test=args.test_per_class)
        for name in args.tasks
    ]

    from dpf_continual.backbones import load_backbone

    results = []
    for name in args.backbones:
        harness.logger.info("backbone %s", name)
        started = time.perf_counter()
        try:
            if name == args.backbone:
                backbone, load_seconds = session.backbone, None  # loaded by harness.start
            else:
                backbone = load_backbone(
                    name,
                    device=args.device,
                    max_length=args.max_length,
                    sequences_per_pass=args.sequences_per_pass,
                )
                load_seconds = round(time.perf_counter() - started, 1)
        except Exception as error:  # a backbone that is not installed is reported, not fatal
            results.append({"backbone": name, "error": f"{type(error).__name__}: {error}"})
            harness.logger.info("  not loaded: %s", results[-1]["error"])
            continue
        if hasattr(backbone, "shared_prefix"):
            backbone.shared_prefix = not args.full_sequences
        rows = measure(backbone, tasks, args.steps, lr)
        mean_step = sum(row["seconds_per_step"] for row in rows) / len(rows)
        results.append(
            {
                "backbone": name,
                "kind": backbone.kind,
                "layout": _layout(backbone),
                "identity": backbone.identity,
                "load_seconds": load_seconds,
                "tasks": rows,
                "lfpt5_full_hours": mean_step * LFPT5_FULL_STEPS * 4 * LFPT5_FULL_RUNS / 3600,
            }
        )
    payload = {
        "settings": {
            "tasks": args.tasks,
            "steps": args.steps,
            "test_per_class": args.test_per_class,
            "lr": lr,
        },
        "max_length": args.max_length,
        "sequences_per_pass": args.sequences_per_pass,
        "backbones": results,
    }
    harness.write_results(session, "backbone_cost", payload, markdown(payload))


if __name__ == "__main__":
    main()
