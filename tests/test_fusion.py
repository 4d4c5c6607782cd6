"""The fusion core against a direct computation of the method's equations."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from dpf_continual.fusion import (
    DynamicPromptFusion,
    FusionGate,
    PromptPool,
    Scheduler,
    fuse_prompt,
)


def direct(pool, logits, embedding, weight, bias, temperature):
    """The equations written out with loops, as a reference."""
    w = torch.exp(logits / temperature) / torch.exp(logits / temperature).sum()
    mixed = sum(w[k] * pool[k] for k in range(pool.shape[0]))
    gate = 1 / (1 + torch.exp(-(weight @ embedding + bias)))
    return gate * mixed + (1 - gate) * embedding


@pytest.mark.parametrize("k, length, width", [(1, 1, 4), (3, 5, 8), (7, 20, 16)])
@pytest.mark.parametrize("temperature", [0.5, 0.9, 1.3])
def test_fuse_prompt_matches_direct_computation(k, length, width, temperature):
    torch.manual_seed(k * 100 + length)
    pool = torch.randn(k, length, width, dtype=torch.float64)
    logits = torch.randn(k, dtype=torch.float64)
    embedding = torch.randn(width, dtype=torch.float64)
    weight = torch.randn(width, width, dtype=torch.float64) * 0.3
    bias = torch.randn(width, dtype=torch.float64)

    got = fuse_prompt(pool, logits, embedding, weight, bias, temperature)

    assert got.shape == (length, width)
    assert_close(got, direct(pool, logits, embedding, weight, bias, temperature))


def test_fuse_prompt_rejects_bad_temperature_and_shapes():
    pool, emb = torch.randn(2, 3, 4), torch.randn(4)
    with pytest.raises(ValueError, match="temperature must be a positive finite number, got 0"):
        fuse_prompt(pool, torch.zeros(2), emb, torch.eye(4), torch.zeros(4), 0)
    with pytest.raises(ValueError, match=r"logits \(3,\)"):
        fuse_prompt(pool, torch.zeros(3), emb, torch.eye(4), torch.zeros(4), 0.9)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prompt_length": 0, "hidden_size": 4}, "prompt_length must be a positive integer, got 0"),
        ({"hidden_size": -2}, "hidden_size must be a positive integer, got -2"),
        ({"hidden_size": 4, "temperature": -1.0}, "temperature must be a positive finite"),
    ],
)
def test_sizes_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DynamicPromptFusion(**kwargs)


def make_module(tasks=3, prompts=4, length=5, width=8, seed=0):
    torch.manual_seed(seed)
    module = DynamicPromptFusion(prompt_length=length, hidden_size=width, temperature=0.7)
    module.add_prompts(prompts)
    with torch.no_grad():
        module.gate.linear.weight.normal_(0, 0.2)
    for _ in range(tasks):
        module.add_task(torch.randn(width), logits=torch.randn(prompts))
    return module


def test_module_agrees_with_fuse_prompt_row_by_row():
    module = make_module()
    task_ids = torch.tensor([2, 0, 1, 2, 0])

    fused = module(task_ids)

    assert fused.shape == (5, 5, 8)
    for row, task in enumerate(task_ids.tolist()):
        expected = fuse_prompt(
            module.pool.stacked(),
            module.scheduler.logits[task],
            module.task_embeddings[task],
            module.gate.linear.weight,
            module.gate.linear.bias,
            0.7,
        )
        assert_close(fused[row], expected)


def test_mixed_batch_equals_single_task_batches():
    module = make_module()
    mixed = module(torch.tensor([0, 1, 2, 1]))
    for row, task in enumerate([0, 1, 2, 1]):
        assert_close(mixed[row], module(torch.tensor([task]))[0])


def test_growth_keeps_earlier_prompts_identical_bit_for_bit():
    module = make_module(tasks=3, prompts=4)
    before = module.fused_prompts()

    module.add_prompts(3)
    new_task = module.add_task(torch.randn(8))
    after = module.fused_prompts()

    assert new_task == 3
    assert torch.equal(after[:3], before)
    assert module.weights(torch.tensor([0]))[0, 4:].eq(0).all()
    assert module.weights(torch.tensor([3]))[0, 4:].gt(0).all()


def test_unmask_lets_an_old_task_use_new_prompts():
    module = make_module(tasks=1, prompts=2)
    module.add_prompts(2)
    module.unmask(0, [2, 3])
    assert module.weights(torch.tensor([0]))[0].gt(0).all()


def test_frozen_prompts_get_no_gradient():
    module = make_module(tasks=2, prompts=3)
    module.pool.freeze([0, 2])

    module(torch.tensor([0, 1])).pow(2).sum().backward()

    assert module.pool.prompts[0].grad is None
    assert module.pool.prompts[2].grad is None
    assert module.pool.prompts[1].grad is not None
    assert module.pool.frozen() == [True, False, True]


def test_storage_round_trip_rebuilds_the_same_prompts():
    module = make_module()
    module.pool.freeze([1])
    rebuilt = DynamicPromptFusion.from_storage(module.state_for_storage())
    assert torch.equal(rebuilt.fused_prompts(), module.fused_prompts())
    assert rebuilt.pool.frozen() == module.pool.frozen()


def test_parts_validate_shapes():
    pool = PromptPool(prompt_length=2, hidden_size=3)
    with pytest.raises(ValueError, match=r"init has shape \(1, 2, 2\), expected \(1, 2, 3\)"):
        pool.add_prompts(1, torch.zeros(1, 2, 2))
    with pytest.raises(RuntimeError, match="the prompt pool is empty"):
        pool.stacked()
    scheduler = Scheduler()
    with pytest.raises(ValueError, match=r"scheduler init has shape \(2,\), expected \(0,\)"):
        scheduler.add_task(torch.zeros(2))
    assert FusionGate(hidden_size=3)(torch.zeros(1, 3)).shape == (1, 3)
