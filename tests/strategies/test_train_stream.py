"""train-stream end to end on a tiny model: every strategy, resume, NaN, determinism."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from dpf_continual.cli import main
from dpf_continual.errors import TrainingError
from dpf_continual.registry import Registry
from dpf_continual.strategies.config import TrainConfig
from dpf_continual.strategies.runner import Observer, train_stream
from tests.strategies.conftest import fused

FAST = dict(max_steps=6, batch_size=4, eval_batch_size=16, replay_size=6, lr=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["dpf", "naive", "replay", "ewc", "lwf", "joint", "separate"])
def test_each_strategy_trains_the_stream_through_the_cli(strategy, stream_registry):
    url = stream_registry()
    args = ["train-stream", "--registry", url, "--strategy", strategy, "--max-steps", "4",
            "--batch-size", "4", "--replay-size", "6"]  # fmt: skip
    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    assert "accuracy matrix (live)" in result.output
    registry = Registry.open(url)
    assert [t.status for t in registry.tasks()] == ["trained"] * 3
    assert len(registry.versions()) == 3
    assert registry.prompt("truth").shape == (4, 32)


def test_nothing_pending_says_so(stream_registry):
    url = stream_registry()
    first = CliRunner().invoke(main, ["train-stream", "--registry", url, "--max-steps", "2"])
    assert first.exit_code == 0
    result = CliRunner().invoke(main, ["train-stream", "--registry", url])
    assert result.exit_code == 0
    assert "nothing to train: every registered task is trained" in result.output


def test_tasks_trained_by_another_trainer_meanwhile_end_the_run_cleanly(
    stream_registry, tiny_backbone, monkeypatch
):
    url = stream_registry()
    train_stream(Registry.open(url), TrainConfig(**FAST), backbone=tiny_backbone)
    runs = len(Registry.open(url).runs())
    # As if another train-stream trained everything between the pending check and the load.
    monkeypatch.setattr(Registry, "pending", lambda self: ["truth"])

    assert train_stream(Registry.open(url), TrainConfig(**FAST), backbone=tiny_backbone) is None
    result = CliRunner().invoke(main, ["train-stream", "--registry", url, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "nothing to train: every registered task is trained" in result.output
    assert len(Registry.open(url).runs()) == runs  # no empty run was recorded


def test_bad_option_is_one_clear_line(stream_registry):
    result = CliRunner().invoke(
        main, ["train-stream", "--registry", stream_registry(), "--batch-size", "0"]
    )
    assert result.exit_code == 1
    assert "Error: batch_size must be a positive integer, got 0" in result.output
    result = CliRunner().invoke(
        main, ["train-stream", "--registry", stream_registry("b"), "--sequences-per-pass", "0"]
    )
    assert result.exit_code == 1
    assert "Error: sequences_per_pass must be a positive integer, got 0" in result.output


def test_checkpoint_writes_one_consistent_version_per_task(stream_registry, tiny_backbone):
    url = stream_registry()
    registry = Registry.open(url)
    report = train_stream(registry, TrainConfig(**FAST), backbone=tiny_backbone)

    versions = registry.versions()
    assert [v.number for v in versions] == report.versions
    assert [sorted(v.tasks) for v in versions] == [
        ["sentiment"],
        ["sentiment", "topic"],
        ["sentiment", "topic", "truth"],
    ]
    assert [v.parent for v in versions] == [None, versions[0].number, versions[1].number]
    assert registry.check_integrity() == []
    assert len(report.live) == 3 and all(len(row) == 3 for row in report.live)
    assert report.summary_live["acc"] is not None


def test_report_keeps_each_tasks_score_at_initialisation(stream_registry, tiny_backbone):
    registry = Registry.open(stream_registry())
    config = TrainConfig(**{**FAST, "max_steps": 2})
    report = train_stream(registry, config, backbone=tiny_backbone)
    assert len(report.initial) == 3
    assert all(0.0 <= score <= 1.0 for score in report.initial)
    # FWT's cells R[j-1][j] are those scores; the first task's has no row before it.
    assert [report.live[j - 1][j] for j in (1, 2)] == report.initial[1:]


def test_training_learns_above_chance(stream_registry, tiny_backbone):
    registry = Registry.open(stream_registry())
    config = TrainConfig(**{**FAST, "max_steps": 40, "lr": 0.1})
    report = train_stream(registry, config, backbone=tiny_backbone)
    final = report.live[-1]
    chance = [1 / 2, 1 / 3, 1 / 2]
    assert sum(final) / 3 > sum(chance) / 3 + 0.15, final


def test_same_seed_gives_identical_prompts(stream_registry, tiny_backbone):
    first, second = stream_registry("a"), stream_registry("b")
    for url in (first, second):
        train_stream(Registry.open(url), TrainConfig(**FAST, seed=3), backbone=tiny_backbone)
    a, b = fused(first), fused(second)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_interrupted_run_keeps_finished_tasks_and_resumes(stream_registry, tiny_backbone):
    straight, broken = stream_registry("straight"), stream_registry("broken")
    train_stream(Registry.open(straight), TrainConfig(**FAST), backbone=tiny_backbone)

    def stop_at_third(index, total, name, steps):
        if index == 2:
            raise KeyboardInterrupt

    registry = Registry.open(broken)
    with pytest.raises(KeyboardInterrupt):
        train_stream(registry, TrainConfig(**FAST), backbone=tiny_backbone,
                     observer=Observer(task_started=stop_at_third))  # fmt: skip
    assert [t.status for t in registry.tasks()] == ["trained", "trained", "pending"]
    assert registry.runs()[-1].status == "interrupted"
    assert len(registry.versions()) == 2

    train_stream(registry, TrainConfig(**FAST), resume=True, backbone=tiny_backbone)
    assert [t.status for t in registry.tasks()] == ["trained"] * 3
    a, b = fused(straight), fused(broken)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_nan_loss_stops_the_task_and_writes_nothing_of_it(
    stream_registry, tiny_backbone, monkeypatch
):
    from dpf_continual.strategies.dpf import DPFStrategy

    original = DPFStrategy.criterion

    def poisoned(self):
        loss = original(self)
        return loss * float("nan") if self.experience.current_experience == 1 else loss

    monkeypatch.setattr(DPFStrategy, "criterion", poisoned)
    registry = Registry.open(stream_registry())
    with pytest.raises(TrainingError, match=r"the loss became nan at step 1 of experience 1"):
        train_stream(registry, TrainConfig(**FAST), backbone=tiny_backbone)
    assert [t.status for t in registry.tasks()] == ["trained", "pending", "pending"]
    assert len(registry.versions()) == 1
    assert registry.runs()[-1].status == "failed"


class _MovingRegistry:
    """latest_version() moves on at every call, as under a busy second trainer, or stays put."""

    def __init__(self, moving: bool) -> None:
        self.number, self.moving = 0, moving

    def latest_version(self):
        from types import SimpleNamespace

        self.number += self.moving
        return SimpleNamespace(number=self.number)


class _DisagreeingRun:
    def __init__(self, registry) -> None:
        self.registry, self.loads = registry, 0

    def load_tasks(self):
        self.loads += 1
        return [], 0

    def load_module(self, first):
        from dpf_continual.errors import ConfigError

        raise ConfigError("the latest version holds 3 tasks but 2 tasks come before ...")


def test_reads_that_disagree_are_retried_only_while_the_registry_moves(monkeypatch):
    from dpf_continual.errors import ConfigError, RegistryError
    from dpf_continual.strategies import runner

    monkeypatch.setattr(runner.time, "sleep", lambda seconds: None)
    busy = _DisagreeingRun(_MovingRegistry(moving=True))
    with pytest.raises(RegistryError, match="another train-stream is using this registry"):
        runner._load_consistent(busy, attempts=3)
    assert busy.loads == 3

    still = _DisagreeingRun(_MovingRegistry(moving=False))
    with pytest.raises(ConfigError, match="the latest version holds 3 tasks"):
        runner._load_consistent(still, attempts=3)
    assert still.loads == 1  # a real disagreement is not retried
