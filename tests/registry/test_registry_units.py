"""Small pieces: safetensors bytes without torch, backbone configs, settings and records."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load, save

from dpf_continual.errors import ConfigError, IntegrityError
from dpf_continual.registry import RegistrySettings, TaskPromptRecord
from dpf_continual.registry.artifacts import (
    decode_json,
    encode_json,
    encode_tensors,
    extract_tensor,
    parse_header,
    read_floats,
    verify,
)
from dpf_continual.registry.backbone_config import (
    hidden_size_of,
    peft_task_type,
    read_backbone_config,
)
from dpf_continual.registry.peft_export import adapter_config
from dpf_continual.registry.records import PromptArtifact


def test_encoding_is_deterministic_and_readable_without_torch():
    tensors = {"prompt": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    first, second = encode_tensors(tensors), encode_tensors({"prompt": tensors["prompt"].clone()})
    assert first == second
    assert read_floats(first, "prompt") == ([2, 3], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])


def test_extract_tensor_keeps_values_and_sets_metadata():
    data = save({"prompt": torch.randn(4, 5), "weights": torch.rand(3)})
    extracted = extract_tensor(data, "prompt", rename="prompt_embeddings", metadata={"a": 1})
    header, start = parse_header(extracted)
    assert header["__metadata__"] == {"a": "1"} and start % 8 == 0
    assert torch.equal(load(extracted)["prompt_embeddings"], load(data)["prompt"])


def test_bad_bytes_are_named():
    with pytest.raises(IntegrityError, match=r"^not a safetensors file: only 3 bytes$"):
        parse_header(b"abc")
    with pytest.raises(IntegrityError, match=r"^not a safetensors file: header of 255 bytes runs"):
        parse_header(b"\xff" + b"\x00" * 7 + b"{}")
    data = save({"ids": torch.arange(3)})
    with pytest.raises(IntegrityError, match=r"^tensor 'ids' is I64, expected F32$"):
        read_floats(data, "ids")
    with pytest.raises(
        IntegrityError, match=r"^safetensors bytes hold no tensor 'x' \(found: \['ids'\]\)$"
    ):
        read_floats(data, "x")
    with pytest.raises(IntegrityError, match=r"^the thing is corrupted: stored bytes hash to "):
        verify(b"abc", "0" * 64, what="the thing")


def test_json_artifacts_round_trip_and_are_stable():
    value = {"train": [{"input": "é", "output": "yes"}]}
    assert encode_json(value) == encode_json(json.loads(json.dumps(value)))
    assert decode_json(encode_json(value)) == value


def test_backbone_configs(tmp_path):
    assert (
        hidden_size_of(read_backbone_config("sentence-transformers/all-MiniLM-L6-v2"), name="m")
        == 384
    )
    for key in ("hidden_size", "d_model", "n_embd", "dim"):
        assert hidden_size_of({key: 12}, name="x") == 12
    message = (
        r"^cannot find the width of backbone 'x': its config has none of "
        r"\['hidden_size', 'd_model', 'n_embd', 'dim'\]$"
    )
    with pytest.raises(ConfigError, match=message):
        hidden_size_of({"vocab_size": 3}, name="x")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"has no readable config.json \(Expecting"):
        read_backbone_config(str(tmp_path))
    assert peft_task_type({"is_encoder_decoder": True}) == "SEQ_2_SEQ_LM"
    assert peft_task_type({"architectures": ["GPT2LMHeadModel"]}) == "CAUSAL_LM"
    assert peft_task_type({"architectures": ["BertModel"]}) == "FEATURE_EXTRACTION"


def test_adapter_config_rejects_unknown_task_types():
    artifact = PromptArtifact(task="t", version=1, data=save({"prompt": torch.zeros(2, 4)}))
    config = adapter_config(
        artifact, backbone="b", task_type="CAUSAL_LM", model_config={"n_layer": 3}
    )
    assert (config["num_virtual_tokens"], config["token_dim"], config["num_layers"]) == (2, 4, 3)
    message = (
        r"^task type 'TOKEN_CLS' is not valid: expected one of "
        r"\('FEATURE_EXTRACTION', 'CAUSAL_LM', 'SEQ_2_SEQ_LM'\)$"
    )
    with pytest.raises(ConfigError, match=message):
        adapter_config(artifact, backbone="b", task_type="TOKEN_CLS", model_config={})


def test_prompt_artifact_statistics():
    artifact = PromptArtifact(
        task="t", version=1, data=save({"prompt": torch.tensor([[1.0, 3.0]])})
    )
    assert artifact.shape == [1, 2] and artifact.values() == [[1.0, 3.0]]
    assert artifact.statistics() == {"mean": 2.0, "std": 1.0, "min": 1.0, "max": 3.0}


def test_settings_validation():
    assert RegistrySettings().differences(RegistrySettings(prompt_length=8)) == [
        "prompt_length: 20 != 8"
    ]
    with pytest.raises(ConfigError, match=r"^backbone '' is empty: expected a name or a path$"):
        RegistrySettings(backbone="")
    with pytest.raises(ConfigError, match=r"^prompt_length 0 must be a positive integer$"):
        RegistrySettings(prompt_length=0)


def test_version_input_checks(make_registry, sqlite_url, add_tasks, make_prompt):
    registry = make_registry(sqlite_url)
    add_tasks(registry, "a", "b")
    run = registry.start_run(strategy="dpf", config={}, seed=0)

    def write(state, prompts):
        registry.commit_version(
            run_id=run, parent=None, state=state, prompts=prompts, trained_task="a", reason="r"
        )

    with pytest.raises(
        ConfigError, match=r"^state is empty: a pool version needs the trainable state to save$"
    ):
        write({}, {"a": make_prompt(0)})
    uneven = {
        "a": make_prompt(0),
        "b": TaskPromptRecord(prompt=torch.zeros(4, 16), weights=torch.ones(5)),
    }
    with pytest.raises(
        ConfigError, match=r"^weights of the tasks have different lengths \[3, 5\]: expected one K$"
    ):
        write({"x": torch.ones(1)}, uneven)
    flat = {"a": TaskPromptRecord(prompt=torch.zeros(4, 16), weights=torch.ones(2, 2))}
    with pytest.raises(ConfigError, match=r"^weights of task 'a' must be \[K\], got \[2, 2\]$"):
        write({"x": torch.ones(1)}, flat)
    assert registry.versions() == []
