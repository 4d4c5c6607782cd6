"""Suite 2: CrossFit transfer. Does a pool trained on a stream of tasks give new tasks a head start?

1. Train Dynamic Prompt Fusion on a stream of source tasks (CrossFit/MetaICL 16-shot gym: 12 in
   the full run, 8 in the quick one), ``--steps`` steps per task.
2. For each held-out target task, on a copy of that registry: add the target and train it like
   any new task (the pool grows from the nearest source's fused prompt, the scheduler row starts
   from the neighbours' weights, replay mixes in source examples). Its test score after its
   ``--steps`` steps is the *pool-initialised* score.
3. Plain prompt tuning from scratch: the target alone on a fresh registry with the package's
   ``separate`` strategy (one prompt from random vocabulary embeddings), the same steps, learning
   rate and seed.

Reported per target: both test scores and their ratio; the mean ratio over the targets is the
*prompt transfer gain* (above 1: the pool helps). Targets share no dataset with the sources
(``glue-rte`` and ``glue-wnli`` are left out of every list because SuperGLUE's RTE and WSC, the
targets of ``table1.py``, are built from the same data).

The learning rate is the one ``calibration.py`` chose on AG News dev; DPF's other settings are
the package defaults. No test split is used to choose anything.

Example::

    .venv/bin/python benchmarks/learning/crossfit_transfer.py --quick
"""

from __future__ import annotations

import harness

SOURCES = (
    "glue-sst2",
    "ag_news",
    "trec",
    "emo",
    "tweet_eval-sentiment",
    "glue-mnli",
    "glue-qnli",
    "paws",
    "wiki_qa",
    "hate_speech_offensive",
    "sms_spam",
    "climate_fever",
)
TARGETS = (
    "sick",
    "glue-mrpc",
    "poem_sentiment",
    "scitail",
    "medical_questions_pairs",
    "tweet_eval-irony",
)

# The full preset (12 sources, two data seeds) takes about half an hour on 2 cores.
FULL = {
    "sources": list(SOURCES),
    "targets": list(TARGETS),
    "data_seeds": [100, 13],
    "steps": 20,
    "test_per_class": 16,
    "max_length": 64,
}
QUICK = {
    "sources": list(SOURCES[:8]),
    "targets": list(TARGETS),
    "data_seeds": [100],
    "steps": 20,
    "test_per_class": 16,
    "max_length": 64,
}


def add_options(parser) -> None:
    parser.add_argument("--sources", nargs="+", help="CrossFit names of the source stream")
    parser.add_argument("--targets", nargs="+", help="CrossFit names of the held-out targets")
    parser.add_argument("--data-seeds", type=int, nargs="+", help="gym train/dev seeds (100, 13)")
    parser.add_argument("--steps", type=int, help="optimiser steps per task")
    parser.add_argument("--test-per-class", type=int, help="cap on test examples per class")
    parser.add_argument("--seed", type=int, default=0, help="training seed")


def settings(args, full: dict, quick: dict) -> dict:
    """The preset with any option given on the command line on top (also sets max_length)."""
    plan = dict(quick if args.quick else full)
    for key in ("sources", "targets", "data_seeds", "steps", "test_per_class"):
        if getattr(args, key, None) is not None:
            plan[key] = getattr(args, key)
    if args.max_length is None:
        args.max_length = plan["max_length"]
    return plan


def gym_tasks(session, names, plan: dict, data_seed: int) -> list:
    return [
        harness.cap_task(
            harness.crossfit_task(session, name, data_seed), test=plan["test_per_class"]
        )
        for name in names
    ]


def dpf_config(session, plan: dict, rates: dict, seed: int):
    return harness.train_config(
        session, strategy="dpf", max_steps=plan["steps"], lr=rates["lr"], seed=seed
    )


def pool_targets(session, registry, targets: list, config) -> dict[str, dict]:
    """Each target trained on its own copy of the source registry: ``{name: result dict}``."""
    results = {}
    for target in targets:
        with harness.copied_registry(registry) as copy:
            harness.register(session, copy, [target])
            result = harness.train(session, copy, config)
        results[target.name] = {
            "test": result.live[-1][-1],
            "dev": result.dev[-1][-1],
            "zero_shot": result.zero_shot[-1],
            "initial": result.initial[-1] if result.initial else None,  # before its first step
            "seconds": result.seconds,
        }
        harness.logger.info("  pool-initialised %s: %s", target.name, results[target.name])
    return results


def scratch_target(session, target, plan: dict, rates: dict, seed: int) -> dict:
    """Plain prompt tuning of one target from random vocabulary embeddings (``separate``)."""
    config = harness.train_config(
        session,
        strategy="separate",
        max_steps=plan["steps"],
        lr=rates["lr"],
        replay_size=0,
        seed=seed,
    )
    result = harness.run_stream(session, [target], config)
    return {"test": result.live[-1][-1], "dev": result.dev[-1][-1], "seconds": result.seconds}


def run_seed(session, plan: dict, rates: dict, data_seed: int, seed: int) -> dict:
    sources = gym_tasks(session, plan["sources"], plan, data_seed)
    targets = gym_tasks(session, plan["targets"], plan, data_seed)
    config = dpf_config(session, plan, rates, seed)
    harness.logger.info("data seed %d: source stream of %d tasks", data_seed, len(sources))
    with harness.temporary_registry(session) as registry:
        harness.register(session, registry, sources)
        stream = harness.train(session, registry, config)
        pool = pool_targets(session, registry, targets, config)
    rows = []
    for target in targets:
        scratch = scratch_target(session, target, plan, rates, seed)
        harness.logger.info("  scratch %s: %s", target.name, scratch)
        test = pool[target.name]["test"]
        ratio = test / scratch["test"] if scratch["test"] else None
        rows.append(
            {"target": target.name, "pool": pool[target.name], "scratch": scratch, "ratio": ratio}
        )
    return {
        "data_seed": data_seed,
        "seed": seed,
        "source_stream": stream.to_dict(),
        "targets": rows,
    }


def summarize(runs: list[dict], targets: list[str]) -> dict:
    per_target = {}
    for name in targets:
        rows = [row for run in runs for row in run["targets"] if row["target"] == name]
        per_target[name] = {
            "zero_shot": harness.mean_std([row["pool"]["zero_shot"] for row in rows]),
            "initial": harness.mean_std([row["pool"].get("initial") for row in rows]),
            "pool": harness.mean_std([row["pool"]["test"] for row in rows]),
            "scratch": harness.mean_std([row["scratch"]["test"] for row in rows]),
            "ratio": harness.mean_std([row["ratio"] for row in rows]),
        }
    gains = [sum(r["ratio"] for r in run["targets"]) / len(run["targets"]) for run in runs]
    source_acc = [run["source_stream"]["summary_live"]["acc"] for run in runs]
    return {
        "per_target": per_target,
        "transfer_gain": harness.mean_std(gains),
        "source_stream_acc": harness.mean_std(source_acc),
    }


def markdown(payload: dict) -> str:
    plan, summary = payload["settings"], payload["summary"]
    rows = [
        [
            name,
            harness.points(s["zero_shot"]),
            harness.points(s["initial"]),
            harness.points(s["scratch"]),
            harness.points(s["pool"]),
            _ratio(s["ratio"]),
        ]
        for name, s in summary["per_target"].items()
    ]
    rows.append(
        [
            "**mean ratio = prompt transfer gain**",
            "",
            "",
            "",
            "",
            f"**{_ratio(summary['transfer_gain'])}**",
        ]
    )
    caps = (
        f"test capped at {plan['test_per_class']} per class (seed 0)"
        if plan["test_per_class"]
        else "full test files"
    )
    return (
        f"### CrossFit transfer ({payload['mode']})\n\n"
        f"Sources ({len(plan['sources'])}, in stream order): {', '.join(plan['sources'])}. "
        f"{plan['steps']} steps of batch 16 per task, lr {payload['learning_rates']['lr']:g}, "
        f"data seeds {plan['data_seeds']}, {caps}, inputs truncated to {payload['max_length']} "
        f"tokens. Source-stream ACC after the last source: "
        f"{harness.points(summary['source_stream_acc'])}. Test accuracy in points, mean ± std "
        "over the data seeds; *pool, before training*: the target's score right after the pool "
        "grew for it, before its first step; the ratio is pool-initialised over scratch.\n\n"
        + harness.markdown_table(
            [
                "target",
                "zero-shot",
                "pool, before training",
                "prompt tuning from scratch",
                "initialised from the pool",
                "ratio",
            ],
            rows,
        )
    )


def _ratio(stat: dict) -> str:
    if stat["mean"] is None:
        return "–"
    spread = f" ± {stat['std']:.2f}" if stat["n"] > 1 else ""
    return f"{stat['mean']:.2f}{spread}"


def main() -> None:
    parser = harness.parser(__doc__.split("\n\n")[0])
    add_options(parser)
    args = parser.parse_args()
    plan = settings(args, FULL, QUICK)
    session = harness.start(args)
    rates = harness.chosen_learning_rates(session)
    runs = [
        run_seed(session, plan, rates, data_seed, args.seed) for data_seed in plan["data_seeds"]
    ]
    payload = {
        "settings": plan,
        "seed": args.seed,
        "max_length": args.max_length,
        "learning_rates": rates,
        "mode": "quick" if args.quick else "full",
        "summary": summarize(runs, plan["targets"]),
        "runs": runs,
    }
    harness.write_results(session, "crossfit_transfer", payload, markdown(payload))


if __name__ == "__main__":
    main()
