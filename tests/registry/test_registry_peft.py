"""``dpf-cl prompt --format peft``: the adapter PEFT loads gives the backbone the same inputs.

Notation: ``b`` batch, ``s`` sequence length, ``L`` prompt length, ``d`` width.
"""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from dpf_continual.cli import main
from dpf_continual.registry import Registry, TaskPromptRecord

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

LENGTH = 5
WIDTH = 32


def tiny_backbone(folder, kind: str):
    """Save a tiny random BERT (encoder) or Llama (decoder) in ``folder``; return its class."""
    torch.manual_seed(0)
    if kind == "encoder":
        config = transformers.BertConfig(
            vocab_size=100,
            hidden_size=WIDTH,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
        )
        model_class = transformers.BertModel
    else:
        config = transformers.LlamaConfig(
            vocab_size=100,
            hidden_size=WIDTH,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            intermediate_size=37,
            max_position_embeddings=64,
        )
        model_class = transformers.LlamaForCausalLM
    model_class(config).save_pretrained(folder)
    return model_class


def export(tmp_path, backbone_dir) -> tuple[torch.Tensor, object]:
    """Store a random prompt for task ``t``, export it with the CLI; return it and the folder."""
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    prompt = torch.randn(LENGTH, WIDTH)  # [L, d]
    with Registry.init(
        url, backbone=str(backbone_dir), hidden_size=WIDTH, prompt_length=LENGTH
    ) as registry:
        registry.add_task(
            name="t",
            kind="choice",
            metric="accuracy",
            domain="x",
            source="test",
            label_names=[],
            data_checksum="c",
            embedding=torch.randn(WIDTH),
            data={},
        )
        run = registry.start_run(strategy="dpf", config={}, seed=0)
        record = TaskPromptRecord(prompt=prompt, weights=torch.ones(2) / 2)
        registry.commit_version(
            run_id=run,
            parent=None,
            state={"pool": torch.zeros(2, LENGTH, WIDTH)},
            prompts={"t": record},
            trained_task="t",
            reason="test",
        )
    out = tmp_path / "adapter"
    result = CliRunner().invoke(
        main,
        [
            "prompt",
            "--task",
            "t",
            "--format",
            "peft",
            "--out",
            str(out),
            "--registry",
            url,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == [
        str(out / "adapter_config.json"),
        str(out / "adapter_model.safetensors"),
    ]
    return prompt, out


def inputs(batch: int = 3, length: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, 100, (batch, length), generator=generator)  # [b, s]
    mask = torch.ones(batch, length, dtype=torch.long)  # [b, s]
    mask[1, 4:] = 0
    return input_ids, mask


def prepend(model, prompt: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> dict:
    """How dpf-continual's backbones feed a prompt: before the token embeddings, mask ones."""
    batch = input_ids.shape[0]
    embeds = model.get_input_embeddings()(input_ids)  # [b, s, d]
    return {
        "inputs_embeds": torch.cat([prompt.expand(batch, -1, -1), embeds], 1),  # [b, L + s, d]
        "attention_mask": torch.cat([torch.ones(batch, LENGTH, dtype=mask.dtype), mask], 1),
    }


def test_encoder_adapter_gives_the_same_hidden_states(tmp_path):
    model_class = tiny_backbone(tmp_path / "bert", "encoder")
    prompt, adapter = export(tmp_path, tmp_path / "bert")
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["peft_type"], config["task_type"]) == ("PROMPT_TUNING", "FEATURE_EXTRACTION")
    assert (config["num_virtual_tokens"], config["token_dim"]) == (LENGTH, WIDTH)

    input_ids, mask = inputs()
    reference_model = model_class.from_pretrained(tmp_path / "bert").eval()
    peft_model = peft.PeftModel.from_pretrained(
        model_class.from_pretrained(tmp_path / "bert").eval(), adapter
    ).eval()
    with torch.no_grad():
        loaded = peft_model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        expected = reference_model(**prepend(reference_model, prompt, input_ids, mask))
    torch.testing.assert_close(loaded, expected.last_hidden_state)  # [b, L + s, d]


def test_decoder_adapter_gives_the_same_log_likelihoods(tmp_path):
    model_class = tiny_backbone(tmp_path / "llama", "decoder")
    prompt, adapter = export(tmp_path, tmp_path / "llama")
    assert json.loads((adapter / "adapter_config.json").read_text())["task_type"] == "CAUSAL_LM"

    input_ids, mask = inputs()
    reference_model = model_class.from_pretrained(tmp_path / "llama").eval()
    peft_model = peft.PeftModel.from_pretrained(
        model_class.from_pretrained(tmp_path / "llama").eval(), adapter
    ).eval()
    with torch.no_grad():
        loaded = peft_model(input_ids=input_ids, attention_mask=mask).logits
        expected = reference_model(**prepend(reference_model, prompt, input_ids, mask)).logits

    def token_log_likelihoods(logits: torch.Tensor) -> torch.Tensor:
        # Position L + i - 1 predicts token i.
        scores = logits[:, LENGTH - 1 : -1].log_softmax(-1)  # [b, s, vocab]
        return scores.gather(-1, input_ids.unsqueeze(-1)).squeeze(-1)  # [b, s]

    torch.testing.assert_close(token_log_likelihoods(loaded), token_log_likelihoods(expected))
