"""Calibration: one prompt on AG News, against the issue's reference point.

Reference (measured by the issue's author on a 2-core machine): a 20-token prompt on the frozen
MiniLM, scoring the four label names by scaled cosine similarity, goes from 0.58 zero-shot to
0.81 test accuracy on LFPT5 AG News sample ``0_42`` after 80 steps of batch 16 (about 45 s).

What runs, all on that task and sample, 80 steps of batch 16 each:

1. the bare backbone on dev and test (zero-shot);
2. the package's ``separate`` strategy (one prompt, through ``train_stream``) at each learning
   rate of ``--lrs``; the rate is chosen on the dev split (64 examples), and that run's test
   accuracy is the calibration figure;
3. the benchmark's own loop (``references.fit``) with the chosen rate, to check that SPoT and
   MPT, which train through it, are trained like the package's methods (parity);
4. PEFT's multitask prompt (one task) at each rate of ``--mpt-lrs``, chosen on dev the same way;
   the suites use the two chosen rates.

The whole test split (400) is used here; nothing is subsampled (dev and test are only put in
order of length, which changes no score).

Example::

    .venv/bin/python benchmarks/learning/calibration.py --quick
"""

from __future__ import annotations

import time

import harness
import references

SAMPLE = "0_42"
BATCH = 16
# One preset for both modes (``--quick`` changes nothing here), so the quick and the full suites
# read the same learning rates. The sweep is short because each point costs 80 steps of the
# reference budget; wider sweeps go through ``--lrs`` and ``--mpt-lrs`` (PEFT MPT at 0.3 scored
# below 0.03 on dev, 78.1 against 79.7, in an earlier run of this script).
PROMPT_LRS = (0.03, 0.1)
MPT_LRS = (0.03,)


def separate_run(session, task, lr: float) -> dict:
    config = harness.train_config(
        session,
        strategy="separate",
        max_steps=session.args.steps,
        batch_size=BATCH,
        lr=lr,
        replay_size=0,
    )
    result = harness.run_stream(session, [task], config)
    return {
        "lr": lr,
        "dev": result.dev[-1][0],
        "test": result.live[-1][0],
        "train_seconds": round(result.seconds, 1),
    }


def loop_run(session, task, module, lr: float) -> dict:
    started = time.perf_counter()
    losses = references.fit(
        session.backbone,
        module,
        references.items_of(task, "train"),
        steps=session.args.steps,
        lr=lr,
    )
    seconds = time.perf_counter() - started
    return {
        "lr": lr,
        "dev": references.accuracy(session.backbone, module, references.items_of(task, "dev")),
        "test": references.accuracy(session.backbone, module, references.items_of(task, "test")),
        "train_seconds": round(seconds, 1),
        "first_loss": round(losses[0], 4),
        "last_loss": round(sum(losses[-8:]) / 8, 4),
    }


def best_on_dev(runs: list[dict]) -> dict:
    """Highest dev accuracy; ties go to the smaller learning rate."""
    return max(sorted(runs, key=lambda run: run["lr"]), key=lambda run: run["dev"])


def main() -> None:
    parser = harness.parser(__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=80, help="optimiser steps per run")
    parser.add_argument("--lrs", type=float, nargs="+", default=None)
    parser.add_argument("--mpt-lrs", type=float, nargs="+", default=None)
    args = parser.parse_args()
    lrs = args.lrs or list(PROMPT_LRS)
    mpt_lrs = args.mpt_lrs or list(MPT_LRS)
    session = harness.start(args)
    backbone = session.backbone
    task = harness.cap_task(harness.lfpt5_task(session, "ag_news", SAMPLE))

    zero = {
        split: references.accuracy(backbone, None, references.items_of(task, split))
        for split in ("dev", "test")
    }
    harness.logger.info("zero-shot: %s", zero)
    separate = []
    for lr in lrs:
        separate.append(separate_run(session, task, lr))
        harness.logger.info("separate: %s", separate[-1])
    chosen = best_on_dev(separate)

    init = references.vocabulary_prompt(backbone, seed=0)
    parity = loop_run(session, task, references.PlainPrompt(init), chosen["lr"])
    harness.logger.info("benchmark loop: %s", parity)
    mpt = []
    for lr in mpt_lrs:
        module = references.PeftMultitaskPrompt(backbone=backbone, num_tasks=1)
        mpt.append(loop_run(session, task, module, lr))
        harness.logger.info("peft mpt: %s", mpt[-1])
    mpt_chosen = best_on_dev(mpt)

    payload = {
        "task": f"ag_news sample {SAMPLE}",
        "steps": args.steps,
        "batch_size": BATCH,
        "split_sizes": task.split_sizes(),
        "reference": {"zero_shot": 0.58, "test": 0.81, "seconds": 45},
        "zero_shot": zero,
        "separate": separate,
        "chosen_lr": chosen["lr"],
        "calibration_test": chosen["test"],
        "benchmark_loop": parity,
        "peft_mpt": mpt,
        "peft_mpt_chosen_lr": mpt_chosen["lr"],
        "peft_wrapper": references.peft_wrapper_check(backbone),
    }
    harness.write_results(session, "calibration", payload, markdown(payload))


def markdown(payload: dict) -> str:
    rows = [
        [
            "bare backbone (zero-shot)",
            "–",
            harness.points(payload["zero_shot"]["dev"]),
            harness.points(payload["zero_shot"]["test"]),
            "–",
        ]
    ]
    for name, runs in (
        ("`separate` (package)", payload["separate"]),
        ("PEFT multitask prompt", payload["peft_mpt"]),
    ):
        for run in runs:
            rows.append(
                [
                    name,
                    f"{run['lr']:g}",
                    harness.points(run["dev"]),
                    harness.points(run["test"]),
                    f"{run['train_seconds']:.0f}",
                ]
            )
    loop = payload["benchmark_loop"]
    rows.append(
        [
            "benchmark loop, plain prompt",
            f"{loop['lr']:g}",
            harness.points(loop["dev"]),
            harness.points(loop["test"]),
            f"{loop['train_seconds']:.0f}",
        ]
    )
    table = harness.markdown_table(["method", "lr", "dev", "test", "seconds"], rows)
    return (
        f"### Calibration: AG News {payload['task'].split()[-1]}, {payload['steps']} steps of "
        f"batch {payload['batch_size']}\n\n{table}\n"
        f"Learning rate chosen on dev: {payload['chosen_lr']:g} (test "
        f"{harness.points(payload['calibration_test'])}; reference 81.0 from 58.0 zero-shot). "
        f"PEFT MPT rate chosen on dev: {payload['peft_mpt_chosen_lr']:g}. Seconds: the "
        "package's rows include its own evaluations (zero-shot and before training on test, "
        "then dev and test); the other rows are the 80 training steps alone.\n\n"
        f"PEFT's own wrapper on the encoder: {payload['peft_wrapper']}\n"
    )


if __name__ == "__main__":
    main()
