"""Export a task's prompt as a PEFT prompt-tuning adapter.

The adapter is two files that ``peft.PeftModel.from_pretrained(backbone, folder)`` loads with no
dpf-continual installed: ``adapter_config.json`` (a ``PROMPT_TUNING`` config with ``L`` virtual
tokens of width ``d``) and ``adapter_model.safetensors`` (tensor ``prompt_embeddings``, ``[L, d]``).
PEFT then prepends the prompt to the input embeddings and extends the attention mask with ones,
exactly as dpf-continual's backbones do; for encoder-decoder models the prompt goes before the
encoder input only (``num_transformer_submodules = 1``).

Both files are written without torch: the prompt's stored bytes are re-labelled, not decoded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dpf_continual.errors import ConfigError
from dpf_continual.registry.artifacts import extract_tensor
from dpf_continual.registry.backbone_config import (
    PEFT_TASK_TYPES,
    peft_task_type,
    read_backbone_config,
)
from dpf_continual.registry.records import PromptArtifact

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"


def adapter_config(
    artifact: PromptArtifact, *, backbone: str, task_type: str, model_config: dict[str, Any]
) -> dict[str, Any]:
    """The ``adapter_config.json`` content for a prompt of shape ``[L, d]``.

    Raises:
        ConfigError: ``task_type`` is not one PEFT prompt tuning supports here.
    """
    if task_type not in PEFT_TASK_TYPES:
        raise ConfigError(
            f"task type {task_type!r} is not valid: expected one of {PEFT_TASK_TYPES}"
        )
    length, width = artifact.shape
    return {
        "peft_type": "PROMPT_TUNING",
        "task_type": task_type,
        "base_model_name_or_path": backbone,
        "revision": None,
        "inference_mode": True,
        "num_virtual_tokens": length,
        "token_dim": width,
        "num_transformer_submodules": 1,
        "num_attention_heads": _first(model_config, "num_attention_heads", "n_head", "num_heads"),
        "num_layers": _first(model_config, "num_hidden_layers", "num_layers", "n_layer"),
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "tokenizer_name_or_path": None,
        "tokenizer_kwargs": None,
        "modules_to_save": None,
        "auto_mapping": None,
    }


def write_peft_adapter(
    folder: Path,
    artifact: PromptArtifact,
    *,
    backbone: str,
    task_type: str,
    model_config: dict[str, Any],
) -> list[Path]:
    """Write the adapter's two files into ``folder`` (created if needed); returns their paths.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    config = adapter_config(
        artifact, backbone=backbone, task_type=task_type, model_config=model_config
    )
    metadata = {"format": "pt", "dpf_task": artifact.task, "dpf_version": str(artifact.version)}
    weights = extract_tensor(artifact.data, "prompt", rename="prompt_embeddings", metadata=metadata)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / CONFIG_NAME, folder / WEIGHTS_NAME]
    write_atomically(paths[0], (json.dumps(config, indent=2) + "\n").encode())
    write_atomically(paths[1], weights)
    return paths


def export_peft(
    folder: Path, artifact: PromptArtifact, *, backbone: str, task_type: str | None = None
) -> list[Path]:
    """Write ``artifact`` as an adapter for ``backbone``, reading its config for what is needed.

    Args:
        task_type: The PEFT task type; ``None`` chooses it from the backbone's config.

    Raises:
        ConfigError: The backbone's config cannot be read and ``task_type`` is not given.
    """
    if task_type is None:
        config = read_backbone_config(backbone)
        task_type = peft_task_type(config)
    else:
        # The config only fills optional fields here; PEFT reads them from the model if absent.
        try:
            config = read_backbone_config(backbone)
        except ConfigError:
            config = {}
    return write_peft_adapter(
        folder, artifact, backbone=backbone, task_type=task_type, model_config=config
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _first(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        if isinstance(config.get(key), int):
            return config[key]
    return None
