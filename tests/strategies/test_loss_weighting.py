"""Tests of the per-task loss-weighting policies."""

import logging
import math

import pytest
import torch

from dpf_continual.errors import ConfigError
from dpf_continual.strategies.loss_weighting import (
    DWAWeighting,
    EqualWeighting,
    GradNormWeighting,
    LossWeighter,
    LossWeighting,
    UncertaintyWeighting,
    make_loss_weighter,
)


def _constant_losses(values: dict[int, float]) -> dict[int, torch.Tensor]:
    return {task_id: torch.tensor(value) for task_id, value in values.items()}


@pytest.fixture
def make_shared():
    """Factory for a shared parameter vector (stands in for the pool and gate)."""

    def make(*values: float) -> torch.nn.Parameter:
        return torch.nn.Parameter(torch.tensor(values))

    return make


# equal


def test_equal_sums_losses_and_keeps_weights_at_one():
    weighter = EqualWeighting(task_ids=[0, 1])
    total = weighter.combine(_constant_losses({0: 0.5, 1: 2.0}))

    torch.testing.assert_close(total, torch.tensor(2.5))
    assert weighter.weights() == {0: 1.0, 1: 1.0}
    assert weighter.extra_parameters() == []


def test_equal_accepts_a_subset_and_new_tasks():
    weighter = EqualWeighting(task_ids=[0, 1])
    total = weighter.combine(_constant_losses({1: 2.0, 7: 3.0}))

    torch.testing.assert_close(total, torch.tensor(5.0))
    assert weighter.task_ids == [0, 1, 7]


# uncertainty


def test_uncertainty_formula_at_start():
    weighter = UncertaintyWeighting(task_ids=[0, 1], init_log_variance=0.5)
    total = weighter.combine(_constant_losses({0: 1.0, 1: 3.0}))

    expected = math.exp(-0.5) * 4.0 + 2 * 0.5
    torch.testing.assert_close(total, torch.tensor(expected))


def test_uncertainty_raises_the_weight_of_the_task_with_smaller_loss():
    weighter = UncertaintyWeighting(task_ids=[0, 1])
    optimizer = torch.optim.SGD(weighter.extra_parameters(), lr=0.05)
    losses = {0: 0.2, 1: 2.0}

    for _ in range(300):
        optimizer.zero_grad()
        weighter.combine(_constant_losses(losses)).backward()
        optimizer.step()

    weights = weighter.weights()
    assert weights[0] > 1.0 > weights[1]

    # At the optimum exp(-s_i) = 1 / L_i.
    assert weights[0] == pytest.approx(1 / losses[0], rel=0.05)
    assert weights[1] == pytest.approx(1 / losses[1], rel=0.05)


def test_uncertainty_trains_only_the_tasks_in_the_batch():
    weighter = UncertaintyWeighting(task_ids=[0, 1])
    weighter.combine(_constant_losses({1: 2.0})).backward()

    assert weighter.log_variances["task_0"].grad is None
    assert weighter.log_variances["task_1"].grad is not None


def test_add_task_returns_the_new_parameter_once():
    weighter = UncertaintyWeighting(task_ids=[0])
    new = weighter.add_task(3)

    assert len(new) == 1 and new[0] is weighter.log_variances["task_3"]
    assert weighter.add_task(3) == []
    assert len(weighter.extra_parameters()) == 2


def test_combine_warns_when_it_creates_parameters(caplog):
    weighter = UncertaintyWeighting(task_ids=[0])
    with caplog.at_level(logging.WARNING):
        weighter.combine(_constant_losses({0: 1.0, 4: 1.0}))

    assert "Task 4 was first seen in combine()" in caplog.text
    assert weighter.task_ids == [0, 4]


# gradnorm


def test_gradnorm_raises_the_weight_of_the_task_with_smaller_gradient_norm(make_shared):
    shared = make_shared(1.0, 1.0)
    weighter = GradNormWeighting(task_ids=[0, 1])
    optimizer = torch.optim.SGD(weighter.extra_parameters(), lr=0.01)

    # ||∇L_0|| = 20 and ||∇L_1|| = 1; the losses stay put, so the rates stay equal.
    for _ in range(5):
        optimizer.zero_grad()
        losses = {0: 10 * shared[0] ** 2, 1: 0.5 * shared[1] ** 2}
        weighter.combine(losses, shared_params=[shared]).backward()
        optimizer.step()
        shared.grad = None
    weighter.combine({0: 10 * shared[0] ** 2, 1: 0.5 * shared[1] ** 2}, shared_params=[shared])

    weights = weighter.weights()
    assert weights[1] > 1.0 > weights[0]
    assert weights[0] + weights[1] == pytest.approx(2.0)


def test_gradnorm_raises_the_weight_of_the_task_that_trains_slower(make_shared):
    shared = make_shared(1.0, 1.0)
    weighter = GradNormWeighting(task_ids=[0, 1])
    optimizer = torch.optim.SGD(weighter.extra_parameters(), lr=0.1)

    # Equal gradient norms; task 0's loss drops to a quarter while task 1's stays.
    weighter.combine({0: shared[0] + 1, 1: shared[1] + 1}, shared_params=[shared])
    optimizer.zero_grad()
    weighter.combine({0: shared[0] - 0.5, 1: shared[1] + 1}, shared_params=[shared]).backward()
    optimizer.step()
    weighter.combine({0: shared[0] - 0.5, 1: shared[1] + 1}, shared_params=[shared])

    weights = weighter.weights()
    assert weights[1] > 1.0 > weights[0]


def test_gradnorm_total_has_the_gradient_of_the_detached_weighted_sum(make_shared):
    weighter = GradNormWeighting(task_ids=[0, 1])
    with torch.no_grad():
        weighter.task_weights["task_0"].fill_(0.5)
        weighter.task_weights["task_1"].fill_(1.5)
    shared = make_shared(1.0, 2.0)
    head = torch.nn.Parameter(torch.tensor([0.3, -0.7]))

    def task_losses() -> dict[int, torch.Tensor]:
        return {0: (shared * head).sum() ** 2, 1: (shared**2 * head).sum().exp()}

    total = weighter.combine(task_losses(), shared_params=[shared])
    total.backward()
    got = (total.detach(), shared.grad.clone(), head.grad.clone())

    shared.grad = head.grad = None
    losses = task_losses()
    expected = 0.5 * losses[0] + 1.5 * losses[1]
    expected.backward()
    torch.testing.assert_close(got, (expected.detach(), shared.grad, head.grad))


def test_gradnorm_weight_gradient_by_hand(make_shared):
    shared = make_shared(1.0, 1.0)
    weighter = GradNormWeighting(task_ids=[0, 1])
    losses = {0: 10 * shared[0] ** 2, 1: 0.5 * shared[1] ** 2}

    # Before backward no gradient is set, so zero_grad may come after combine.
    total = weighter.combine(losses, shared_params=[shared])
    assert all(p.grad is None for p in weighter.extra_parameters())
    total.backward()

    # G = [20, 1], r = [1, 1], target 10.5: dgn/dw = [20, -1]; through w = 2 v / (v_0 + v_1)
    # at v = [1, 1], dgn/dv = [(20 + 1) / 2, -(20 + 1) / 2].
    got = torch.stack([p.grad for p in weighter.extra_parameters()])
    torch.testing.assert_close(got, torch.tensor([10.5, -10.5]))


def test_gradnorm_allows_several_batches_before_backward(make_shared):
    shared = make_shared(1.0, 1.0)
    weighter = GradNormWeighting(task_ids=[0, 1])

    totals = [
        weighter.combine({0: shared[0] ** 2, 1: 3 * shared[1] ** 2}, shared_params=[shared])
        for _ in range(2)
    ]
    torch.stack(totals).sum().backward()

    assert shared.grad is not None


def test_gradnorm_with_one_task_keeps_weight_one(make_shared):
    shared = make_shared(1.0)
    weighter = GradNormWeighting()
    total = weighter.combine({2: 4 * shared[0] ** 2}, shared_params=[shared])

    torch.testing.assert_close(total, torch.tensor(4.0))
    assert weighter.weights() == {2: 1.0}
    assert weighter.task_weights["task_2"].grad is None


def test_gradnorm_keeps_learned_weights_through_single_task_batches(make_shared):
    shared = make_shared(1.0, 1.0, 1.0)
    weighter = GradNormWeighting(task_ids=[0, 1, 2])
    with torch.no_grad():
        for key, value in [("task_0", 0.5), ("task_1", 1.0), ("task_2", 1.5)]:
            weighter.task_weights[key].fill_(value)

    # A batch of task 2 alone weights it by one, but its learned weight stays.
    total = weighter.combine({2: 3 * shared[2]}, shared_params=[shared])
    torch.testing.assert_close(total, torch.tensor(3.0))
    with torch.no_grad():
        weighter.combine({0: shared[0]})

    # In a batch of tasks 0 and 1 their weights sum to two, in the learned ratio 1:2.
    total = weighter.combine({0: shared[0], 1: shared[1]}, shared_params=[shared])
    torch.testing.assert_close(total, torch.tensor(2 / 3 + 4 / 3))
    assert weighter.weights() == pytest.approx({0: 0.5, 1: 1.0, 2: 1.5})


def test_gradnorm_needs_shared_params_when_training(make_shared):
    shared = make_shared(1.0, 1.0)
    weighter = GradNormWeighting(task_ids=[0, 1])
    with pytest.raises(ValueError, match="gradnorm needs shared_params"):
        weighter.combine({0: shared[0], 1: shared[1]})

    # Without gradients (evaluation) the shared parameters are not needed.
    with torch.no_grad():
        weighter.combine({0: shared[0], 1: shared[1]})


def test_gradnorm_rejects_bad_settings():
    with pytest.raises(ConfigError, match="alpha must be >= 0, got -1"):
        GradNormWeighting(alpha=-1)
    with pytest.raises(ConfigError, match="update_every must be >= 1, got 0"):
        GradNormWeighting(update_every=0)


# dwa


def test_dwa_keeps_weight_one_until_two_epochs_of_history():
    weighter = DWAWeighting(task_ids=[0, 1])
    assert weighter.weights() == {0: 1.0, 1: 1.0}

    weighter.end_epoch({0: 1.0, 1: 1.0})
    assert weighter.weights() == {0: 1.0, 1: 1.0}


def test_dwa_raises_the_weight_of_the_task_whose_loss_fell_least():
    weighter = DWAWeighting(task_ids=[0, 1], temperature=2.0)
    weighter.end_epoch({0: 1.0, 1: 1.0})
    weighter.end_epoch({0: 0.5, 1: 0.95})

    weights = weighter.weights()
    assert weights[1] > 1.0 > weights[0]

    expected = 2 * math.exp(0.95 / 2) / (math.exp(0.5 / 2) + math.exp(0.95 / 2))
    assert weights[1] == pytest.approx(expected)
    assert sum(weights.values()) == pytest.approx(2.0)

    total = weighter.combine(_constant_losses({0: 1.0, 1: 2.0}))
    torch.testing.assert_close(total, torch.tensor(weights[0] + 2 * weights[1]))


def test_dwa_gives_a_new_task_weight_one_and_shares_the_rest():
    weighter = DWAWeighting(task_ids=[0, 1])
    weighter.end_epoch({0: 1.0, 1: 1.0})
    weighter.end_epoch({0: 0.5, 1: 0.95, 2: 3.0})

    weights = weighter.weights()
    assert weights[2] == 1.0
    assert weights[0] + weights[1] == pytest.approx(2.0)

    # In a batch with a single ready task that task gets weight one.
    total = weighter.combine(_constant_losses({0: 1.0, 2: 2.0}))
    torch.testing.assert_close(total, torch.tensor(3.0))


def test_dwa_rejects_bad_values():
    with pytest.raises(ConfigError, match="temperature must be > 0, got 0"):
        DWAWeighting(temperature=0)
    with pytest.raises(ValueError, match="mean loss of task 3 is nan"):
        DWAWeighting().end_epoch({3: float("nan")})


# shared behaviour


def test_combine_rejects_empty_and_non_scalar_losses():
    weighter = EqualWeighting()
    with pytest.raises(ValueError, match="task_losses is empty"):
        weighter.combine({})
    with pytest.raises(ValueError, match=r"loss of task 0 has shape \(2,\); expected a scalar"):
        weighter.combine({0: torch.ones(2)})
    with pytest.raises(TypeError, match="task_id must be an int, got 'a'"):
        weighter.add_task("a")


def test_state_dict_round_trip_brings_tasks_and_history(make_shared):
    shared = make_shared(1.0, 1.0)
    gradnorm = GradNormWeighting(task_ids=[0, 1], alpha=0.5)
    gradnorm.combine({0: shared[0] ** 2, 1: 2 * shared[1] ** 2}, shared_params=[shared])
    with torch.no_grad():
        gradnorm.task_weights["task_1"].fill_(1.25)
    dwa = DWAWeighting()
    dwa.end_epoch({4: 1.0})
    dwa.end_epoch({4: 0.5, 5: 2.0})

    loaded_gradnorm = GradNormWeighting(alpha=0.5)
    loaded_gradnorm.load_state_dict(gradnorm.state_dict())
    loaded_dwa = DWAWeighting()
    loaded_dwa.load_state_dict(dwa.state_dict())

    assert loaded_gradnorm.weights() == gradnorm.weights()
    assert loaded_gradnorm._initial_losses == {0: 1.0, 1: 2.0}
    assert loaded_dwa.weights() == dwa.weights()
    assert loaded_dwa.task_ids == [4, 5]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("equal", EqualWeighting),
        ("Uncertainty", UncertaintyWeighting),
        (LossWeighting.GRADNORM, GradNormWeighting),
        ("dwa", DWAWeighting),
    ],
)
def test_make_loss_weighter_builds_each_policy(name, cls):
    weighter = make_loss_weighter(name, task_ids=[0, 2])

    assert isinstance(weighter, cls) and isinstance(weighter, LossWeighter)
    assert weighter.task_ids == [0, 2]


def test_make_loss_weighter_passes_settings():
    weighter = make_loss_weighter("dwa", temperature=4.0)
    assert weighter.temperature == 4.0


def test_make_loss_weighter_rejects_an_unknown_name():
    with pytest.raises(
        ValueError,
        match="unknown loss weighting 'mean'; expected one of: equal, uncertainty, gradnorm, dwa",
    ):
        make_loss_weighter("mean")


@pytest.mark.parametrize(
    ("epochs", "max_steps", "warned"),
    [(2, None, True), (3, None, False), (5, 8, True), (5, 9, False), (1, None, True)],
)
def test_dwa_warns_when_a_task_is_too_short_for_it(caplog, epochs, max_steps, warned):
    from dpf_continual.strategies.config import TrainConfig
    from dpf_continual.strategies.runner import warn_if_dwa_is_idle

    # 64 examples at batch 16: 4 steps an epoch, so DWA needs more than 8 steps.
    config = TrainConfig(loss_weighting="dwa", epochs=epochs, max_steps=max_steps)
    with caplog.at_level(logging.WARNING):
        assert warn_if_dwa_is_idle(config, "sst2", 64) is warned
    assert ("trains as with 'equal'" in caplog.text) is warned
    if warned:
        assert "task 'sst2'" in caplog.text


def test_other_policies_never_warn_about_short_tasks(caplog):
    from dpf_continual.strategies.config import TrainConfig
    from dpf_continual.strategies.runner import warn_if_dwa_is_idle

    with caplog.at_level(logging.WARNING):
        assert not warn_if_dwa_is_idle(TrainConfig(loss_weighting="equal"), "sst2", 64)
    assert caplog.text == ""
