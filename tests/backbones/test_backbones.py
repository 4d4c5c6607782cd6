"""Each backbone kind on a tiny random model: prepending, scoring, generation, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dpf_continual.backbones import Item, load_backbone
from dpf_continual.fusion import DynamicPromptFusion

KINDS = ["encoder", "decoder", "encoder-decoder"]
ITEMS = [
    Item(0, "the movie was great", "positive", ("positive", "negative")),
    Item(1, "the bank stock is bad", "no", ("yes", "no", "true")),
    Item(0, "awful film", "negative", ("positive", "negative")),
]


@pytest.fixture(params=KINDS)
def backbone(request, tiny_model_dir):
    return load_backbone(str(tiny_model_dir(request.param)), device="cpu")


def fusion_for(backbone, tasks=2):
    torch.manual_seed(0)
    module = DynamicPromptFusion(prompt_length=3, hidden_size=backbone.hidden_size)
    module.add_prompts(2)
    for _ in range(tasks):
        module.add_task(torch.randn(backbone.hidden_size))
    return module


def test_kind_is_chosen_from_the_config(tiny_model_dir):
    for kind in KINDS:
        assert load_backbone(str(tiny_model_dir(kind)), device="cpu").kind == kind


def test_unknown_backbone_is_one_clear_error(tmp_path):
    from dpf_continual.errors import ConfigError

    with pytest.raises(ConfigError, match=r"backbone '.*nowhere' could not be loaded"):
        load_backbone(str(tmp_path / "nowhere"), device="cpu")


def test_backbone_is_frozen_in_eval_mode(backbone):
    assert not backbone.model.training
    assert not any(p.requires_grad for p in backbone.parameters())


def test_scores_have_one_column_per_option_with_padding(backbone):
    batch = backbone.collate(ITEMS)
    scores = backbone.option_scores(fusion_for(backbone)(batch["task_ids"]), batch)
    assert scores.shape == (3, 3)
    assert torch.isinf(scores[0, 2]) and torch.isinf(scores[2, 2])
    assert torch.isfinite(scores[1]).all()
    assert batch["labels"].tolist() == [0, 1, 1]


def test_prompt_changes_scores_and_batch_rows_are_independent(backbone):
    module = fusion_for(backbone)
    batch = backbone.collate(ITEMS)
    prompted = backbone.option_scores(module(batch["task_ids"]), batch)
    bare = backbone.option_scores(None, batch)
    assert not torch.allclose(prompted[:, :2], bare[:, :2])

    alone = backbone.collate(ITEMS[1:2])
    single = backbone.option_scores(module(alone["task_ids"]), alone)
    torch.testing.assert_close(single[0], prompted[1], atol=1e-4, rtol=1e-4)


def test_prepend_extends_the_attention_mask(backbone):
    embeds, mask = backbone.prepend(
        torch.zeros(2, 4, backbone.hidden_size),
        torch.zeros(2, 3, backbone.hidden_size),
        torch.tensor([[1, 1, 0], [1, 1, 1]]),
    )
    assert embeds.shape == (2, 7, backbone.hidden_size)
    assert mask.tolist() == [[1, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1, 1]]


def test_training_steps_lower_the_loss_and_leave_the_backbone_unchanged(backbone):
    module = fusion_for(backbone)
    before = [p.detach().clone() for p in backbone.parameters()]
    optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    batch = backbone.collate(ITEMS)

    losses = []
    for _ in range(15):
        scores = backbone.option_scores(module(batch["task_ids"]), batch)
        loss = F.cross_entropy(scores, batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())

    assert losses[-1] < losses[0]
    assert all(torch.equal(a, b) for a, b in zip(before, backbone.parameters(), strict=True))
    assert all(p.grad is None for p in backbone.parameters())


def test_embed_texts_is_mean_pooled_per_text(backbone):
    both = backbone.embed_texts(["good movie", "bad bank stock"])
    one = backbone.embed_texts(["bad bank stock"])
    assert both.shape == (2, backbone.hidden_size)
    torch.testing.assert_close(both[1], one[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["decoder", "encoder-decoder"])
def test_generation_returns_one_text_per_input(kind, tiny_model_dir):
    backbone = load_backbone(str(tiny_model_dir(kind)), device="cpu")
    module = fusion_for(backbone)
    texts = backbone.generate(module(torch.tensor([0, 1])), ["good movie", "the bank"], 3)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)


def test_generation_rows_score_their_gold_output(tiny_model_dir):
    backbone = load_backbone(str(tiny_model_dir("decoder")), device="cpu")
    batch = backbone.collate([Item(0, "the question", "the answer")])
    scores = backbone.option_scores(None, batch)
    assert scores.shape == (1, 1) and bool(scores[0, 0] < 0)
    assert batch["labels"].tolist() == [-100]


def test_encoder_cannot_generate(tiny_model_dir):
    backbone = load_backbone(str(tiny_model_dir("encoder")), device="cpu")
    with pytest.raises(NotImplementedError, match="encoder backbones do not support generation"):
        backbone.generate(None, ["x"])


def test_linear_heads_start_equal_to_cosine_scoring_and_train(tiny_model_dir):
    from dpf_continual.backbones.encoder import TaskHeads

    backbone = load_backbone(str(tiny_model_dir("encoder")), device="cpu")
    module = fusion_for(backbone)
    heads = TaskHeads(backbone)
    heads.add_task(0, ("positive", "negative"))
    heads.add_task(1, ("yes", "no", "true"))
    batch = backbone.collate(ITEMS)
    prompt = module(batch["task_ids"])

    torch.testing.assert_close(heads(prompt, batch), backbone.option_scores(prompt, batch))
    assert [p.shape for p in heads.parameters()] == [(2, 32), (3, 32)]

    optimizer = torch.optim.Adam(list(heads.parameters()), lr=0.1)
    first = None
    for _ in range(10):
        loss = F.cross_entropy(heads(prompt.detach(), batch), batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        first = first if first is not None else loss.item()
    assert loss.item() < first


MANY = [
    Item(0, "the movie was great", "good", ("good", "bad", "fine", "odd", "dull")),
    Item(1, "stocks fell sharply today", "down", ("up", "down", "flat", "mixed")),
    Item(0, "awful film", "bad", ("good", "bad", "fine", "odd", "dull")),
]


def _scores_and_grad(backbone, module):
    return _scores_and_grad_of(backbone, module, MANY)


def _scores_and_grad_of(backbone, module, items):
    batch = backbone.collate(items)
    module.zero_grad()
    scores = backbone.option_scores(module(batch["task_ids"]), batch)
    F.cross_entropy(scores, batch["labels"]).backward()
    grad = torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])
    return scores.detach(), grad


def _count_sequences(backbone) -> list[int]:
    """Sequences in each forward pass of the part of the model that runs per pair."""
    seen: list[int] = []
    model = backbone.model
    runner = model.get_decoder() if model.config.is_encoder_decoder else model.base_model

    def record(_, args, kwargs):
        tensor = next(
            kwargs[k] for k in ("inputs_embeds", "input_ids") if kwargs.get(k) is not None
        )
        seen.append(tensor.shape[0])

    runner.register_forward_pre_hook(record, with_kwargs=True)
    return seen


# (kind, shared_prefix, sequences in each pass for MANY's 5 + 4 + 5 pairs in pieces of 4)
PIECES = [
    ("decoder", False, [4, 4, 4, 2]),  # full sequences, 4 at a time
    ("decoder", True, [1, 5, 1, 4, 1, 5]),  # whole rows: each input once, then its options
    ("encoder-decoder", None, [4, 4, 4, 2]),  # the decoder runs per pair
]


@pytest.mark.parametrize(("kind", "shared", "passes"), PIECES)
def test_scoring_in_pieces_keeps_scores_and_gradients(kind, shared, passes, tiny_model_dir):
    options = {} if shared is None else {"shared_prefix": shared}
    whole = load_backbone(str(tiny_model_dir(kind)), device="cpu", **options)
    pieces = load_backbone(str(tiny_model_dir(kind)), device="cpu", sequences_per_pass=4, **options)
    module = fusion_for(whole)
    seen = _count_sequences(pieces)

    expected, expected_grad = _scores_and_grad(whole, module)
    scores, grad = _scores_and_grad(pieces, module)

    assert torch.allclose(scores, expected, atol=1e-5)
    assert torch.allclose(grad, expected_grad, atol=1e-6)
    # Each piece runs again in the backward pass (in reverse order).
    assert seen[: len(passes)] == passes and sorted(seen) == sorted(passes * 2), seen


def test_decoder_reads_each_input_once_with_the_same_scores(tiny_model_dir):
    from dpf_continual.backbones import from_model

    shared = load_backbone(str(tiny_model_dir("decoder")), device="cpu", max_length=12)
    # Sharpen the random model's attention so that positions and masks change its outputs.
    with torch.no_grad():
        for layer in shared.model.base_model.layers:
            layer.self_attn.q_proj.weight.mul_(8)
            layer.self_attn.k_proj.weight.mul_(8)
    full = from_model(shared.model, shared.tokenizer, name=shared.name, device="cpu",
                      max_length=12, shared_prefix=False)  # fmt: skip
    # Options of several tokens run through the cached pass; the long input is cut to fit.
    worded = Item(0, "the food was good", "very good", ("very good", "not very good", "awful"))
    long = Item(1, "the bank stock " * 20, "not true", ("true", "not true", "false", "no"))
    items = [*MANY, worded, long]
    module = fusion_for(shared)
    seen = _count_sequences(shared)

    for backbone in (shared, full):
        batch = backbone.collate(items)
        bare = backbone.option_scores(None, batch)
        assert torch.isfinite(bare[batch["layout"] >= 0]).all()
    expected, expected_grad = _scores_and_grad_of(full, module, items)
    scores, grad = _scores_and_grad_of(shared, module, items)

    torch.testing.assert_close(scores, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, expected_grad, atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(
        shared.option_scores(None, shared.collate(items)),
        full.option_scores(None, full.collate(items)),
    )
    assert seen[:2] == [5, 21]  # 5 inputs once, then the 21 options on their caches


def test_sequences_per_pass_must_be_positive(tiny_model_dir):
    from dpf_continual.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sequences_per_pass must be a positive integer, got 0"):
        load_backbone(str(tiny_model_dir("decoder")), device="cpu", sequences_per_pass=0)
