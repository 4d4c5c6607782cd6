"""Suite 4: the paper's table 1 on our backbone: SuperGLUE, MMLU and prompt transfer gain.

Three ways to reuse source tasks for new target tasks, each given the same sources, the same
optimiser steps per task (``--steps``, batch 16) and the same seed:

* **PEFT multitask prompt tuning** (the reference): PEFT's ``MultitaskPromptEmbedding`` trained
  on all sources at once for ``steps x sources`` steps; each target then starts from PEFT's
  ``AVERAGE_SOURCE_TASKS`` initialisation (the shared prompt and the mean task matrices) and
  trains ``steps`` steps. Learning rate: the one ``calibration.py`` chose for it on AG News dev.
* **SPoT-style transfer**: one plain prompt per source (``steps`` steps each, from random
  vocabulary embeddings); each target starts from the source prompt that scores best on the
  target's *dev* split before any training, then trains ``steps`` steps.
* **Dynamic Prompt Fusion**: the sources trained as a stream (``steps`` per task); each target is
  added to a copy of that registry and trained like any new task (see ``crossfit_transfer.py``).

Targets: SuperGLUE from the CrossFit gym (``superglue-cb``, ``-copa``, ``-multirc``, ``-rte``,
``-wic``, ``-wsc``; the *SuperGLUE score* is their mean test accuracy) and MMLU (the 285 dev
questions train, the test questions test, options scored by the backbone like every other choice
task). The *prompt transfer gain* of a method is the mean over these seven targets of its score
divided by PEFT's, so PEFT's is 1.00 by construction.

Example::

    .venv/bin/python benchmarks/learning/table1.py --quick
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import harness
import references
from crossfit_transfer import SOURCES, add_options, dpf_config, gym_tasks, pool_targets, settings

SUPERGLUE = (
    "superglue-cb",
    "superglue-copa",
    "superglue-multirc",
    "superglue-rte",
    "superglue-wic",
    "superglue-wsc",
)
METHODS = ("peft-mpt", "spot", "dpf")
NAMES = {
    "peft-mpt": "PEFT multitask prompt tuning",
    "spot": "SPoT-style transfer",
    "dpf": "Dynamic Prompt Fusion",
}

# The full preset (8 sources, two data seeds) takes about half an hour on 2 cores.
FULL = {
    "sources": list(SOURCES[:8]),
    "targets": list(SUPERGLUE),
    "data_seeds": [100, 13],
    "steps": 16,
    "test_per_class": 12,
    "mmlu_test": 114,
    "max_length": 64,
}
QUICK = {
    "sources": list(SOURCES[:6]),
    "targets": list(SUPERGLUE),
    "data_seeds": [100],
    "steps": 10,
    "test_per_class": 8,
    "mmlu_test": 57,
    "max_length": 64,
}


def target_tasks(session, plan: dict, data_seed: int) -> list:
    targets = gym_tasks(session, plan["targets"], plan, data_seed)
    mmlu = harness.cap_task(harness.mmlu_task(session))
    if plan["mmlu_test"]:
        # The cap applies to the test questions and to the dev copy of the training questions
        # (which SPoT's choice of source and the registry's checkpoints score).
        for split in ("test", "dev"):
            rows = mmlu.splits[split]
            keep = set(random.Random(0).sample(range(len(rows)), min(len(rows), plan["mmlu_test"])))
            mmlu.splits[split] = [e for i, e in enumerate(rows) if i in keep]
    return [*targets, mmlu]


def train_item_pool(tasks: list) -> list:
    return [item for i, task in enumerate(tasks) for item in references.items_of(task, "train", i)]


def peft_mpt(session, sources: list, targets: list, plan: dict, rates: dict, seed: int) -> dict:
    backbone, steps = session.backbone, plan["steps"]
    source = references.PeftMultitaskPrompt(backbone=backbone, num_tasks=len(sources))
    references.fit(
        backbone,
        source,
        train_item_pool(sources),
        steps=steps * len(sources),
        lr=rates["mpt_lr"],
        seed=seed,
    )
    scores = {}
    with tempfile.TemporaryDirectory(prefix="dpf-bench-mpt-") as folder:
        path = str(Path(folder) / "source.safetensors")
        source.save_source(path)
        for target in targets:
            module = references.PeftMultitaskPrompt(backbone=backbone, num_tasks=1, init_path=path)
            references.fit(
                backbone,
                module,
                references.items_of(target, "train"),
                steps=steps,
                lr=rates["mpt_lr"],
                seed=seed,
            )
            scores[target.name] = references.accuracy(
                backbone, module, references.items_of(target, "test")
            )
            harness.logger.info("  peft-mpt %s: %.3f", target.name, scores[target.name])
    return {"test": scores}


def spot(session, sources: list, targets: list, plan: dict, rates: dict, seed: int) -> dict:
    backbone, steps = session.backbone, plan["steps"]
    prompts = {}
    for index, task in enumerate(sources):
        module = references.PlainPrompt(references.vocabulary_prompt(backbone, seed * 1000 + index))
        references.fit(
            backbone,
            module,
            references.items_of(task, "train"),
            steps=steps,
            lr=rates["lr"],
            seed=seed,
        )
        prompts[task.name] = module.prompt.detach().clone()
    scores, chosen = {}, {}
    for target in targets:
        dev = references.items_of(target, "dev")
        fits = {
            name: references.accuracy(backbone, references.PlainPrompt(prompt), dev)
            for name, prompt in prompts.items()
        }
        chosen[target.name] = max(fits, key=fits.get)
        module = references.PlainPrompt(prompts[chosen[target.name]])
        references.fit(
            backbone,
            module,
            references.items_of(target, "train"),
            steps=steps,
            lr=rates["lr"],
            seed=seed,
        )
        scores[target.name] = references.accuracy(
            backbone, module, references.items_of(target, "test")
        )
        harness.logger.info(
            "  spot %s (from %s): %.3f", target.name, chosen[target.name], scores[target.name]
        )
    return {"test": scores, "chosen_source": chosen}


def dpf(session, sources: list, targets: list, plan: dict, rates: dict, seed: int) -> dict:
    config = dpf_config(session, plan, rates, seed)
    with harness.temporary_registry(session) as registry:
        harness.register(session, registry, sources)
        stream = harness.train(session, registry, config)
        pool = pool_targets(session, registry, targets, config)
    return {
        "test": {name: row["test"] for name, row in pool.items()},
        "zero_shot": {name: row["zero_shot"] for name, row in pool.items()},
        "source_stream_acc": stream.summary_live["acc"],
    }


def run_seed(session, plan: dict, rates: dict, data_seed: int, seed: int) -> dict:
    sources = gym_tasks(session, plan["sources"], plan, data_seed)
    targets = target_tasks(session, plan, data_seed)
    run = {"data_seed": data_seed, "seed": seed, "seconds": {}}
    for method, train in (("peft-mpt", peft_mpt), ("spot", spot), ("dpf", dpf)):
        harness.logger.info("data seed %d: %s", data_seed, method)
        started = time.perf_counter()
        run[method] = train(session, sources, targets, plan, rates, seed)
        run["seconds"][method] = round(time.perf_counter() - started, 1)
    return run


def scores_of(run: dict, method: str, superglue: list[str]) -> dict:
    test = run[method]["test"]
    reference = run["peft-mpt"]["test"]
    names = [*superglue, "mmlu"]
    ratios = [test[n] / reference[n] for n in names if reference[n]]
    return {
        "superglue": sum(test[n] for n in superglue) / len(superglue),
        "mmlu": test["mmlu"],
        "gain": sum(ratios) / len(ratios),
    }


def summarize(runs: list[dict], superglue: list[str]) -> dict:
    table = {}
    for method in METHODS:
        per_run = [scores_of(run, method, superglue) for run in runs]
        table[method] = {
            key: harness.mean_std([row[key] for row in per_run])
            for key in ("superglue", "mmlu", "gain")
        }
        table[method]["per_target"] = {
            name: harness.mean_std([run[method]["test"][name] for run in runs])
            for name in [*superglue, "mmlu"]
        }
    zero = [run["dpf"]["zero_shot"] for run in runs]
    table["zero-shot"] = {
        "superglue": harness.mean_std(
            [sum(z[n] for n in superglue) / len(superglue) for z in zero]
        ),
        "mmlu": harness.mean_std([z["mmlu"] for z in zero]),
        "gain": {"mean": None, "std": None, "n": 0},
        "per_target": {n: harness.mean_std([z[n] for z in zero]) for n in [*superglue, "mmlu"]},
    }
    return table


def markdown(payload: dict) -> str:
    plan, table = payload["settings"], payload["table"]
    rows = []
    for method in ("zero-shot", *METHODS):
        stats = table[method]
        gain = stats["gain"]
        gain_text = (
            "–"
            if gain["mean"] is None
            else f"{gain['mean']:.2f}" + (f" ± {gain['std']:.2f}" if gain["n"] > 1 else "")
        )
        rows.append(
            [
                NAMES.get(method, "bare backbone (zero-shot)"),
                harness.points(stats["superglue"]),
                harness.points(stats["mmlu"]),
                gain_text,
            ]
        )
    names = [*plan["targets"], "mmlu"]
    detail = [
        [
            NAMES.get(m, "bare backbone (zero-shot)"),
            *(harness.points(table[m]["per_target"][n]) for n in names),
        ]
        for m in ("zero-shot", *METHODS)
    ]
    caps = (
        f"CrossFit test capped at {plan['test_per_class']} per class, MMLU test (and dev) "
        f"{plan['mmlu_test']} questions (random, seed 0)"
        if plan["test_per_class"]
        else "full test files (CrossFit test files hold at most 100 rows)"
    )
    return (
        f"### Table 1 on {payload['backbone_short']} ({payload['mode']})\n\n"
        f"Sources ({len(plan['sources'])}): {', '.join(plan['sources'])}. {plan['steps']} steps "
        f"of batch 16 per task, lr {payload['learning_rates']['lr']:g} (PEFT MPT "
        f"{payload['learning_rates']['mpt_lr']:g}), data seeds {plan['data_seeds']}, {caps}, "
        f"inputs truncated to {payload['max_length']} tokens. Points, mean ± std over runs.\n\n"
        + harness.markdown_table(["method", "SuperGLUE", "MMLU", "prompt transfer gain"], rows)
        + "\nPer target (test accuracy, points):\n\n"
        + harness.markdown_table(["method", *(n.removeprefix("superglue-") for n in names)], detail)
    )


def main() -> None:
    parser = harness.parser(__doc__.split("\n\n")[0])
    add_options(parser)
    parser.add_argument("--mmlu-test", type=int, help="MMLU test questions kept (random)")
    args = parser.parse_args()
    plan = settings(args, FULL, QUICK)
    if args.mmlu_test is not None:
        plan["mmlu_test"] = args.mmlu_test
    unknown = set(plan["targets"]) - set(SUPERGLUE)
    if unknown:
        raise SystemExit(f"--targets: table 1 uses SuperGLUE tasks only, got {sorted(unknown)}")
    session = harness.start(args)
    rates = harness.chosen_learning_rates(session)
    runs = [run_seed(session, plan, rates, s, args.seed) for s in plan["data_seeds"]]
    payload = {
        "settings": plan,
        "seed": args.seed,
        "max_length": args.max_length,
        "learning_rates": rates,
        "mode": "quick" if args.quick else "full",
        "backbone_short": session.backbone.name.rsplit("/", 1)[-1],
        "table": summarize(runs, plan["targets"]),
        "runs": runs,
    }
    harness.write_results(session, "table1", payload, markdown(payload))


if __name__ == "__main__":
    main()
