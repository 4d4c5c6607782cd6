"""What the registry needs to know about a backbone: its width and its kind, from its config.

A local folder is read directly (``config.json``); the default backbone is known without a
lookup; any other name goes through ``transformers.AutoConfig``, imported only then.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dpf_continual.errors import ConfigError
from dpf_continual.registry.records import DEFAULT_BACKBONE

# all-MiniLM-L6-v2, so that the default needs neither the network nor transformers.
_KNOWN = {
    DEFAULT_BACKBONE: {
        "model_type": "bert",
        "architectures": ["BertModel"],
        "hidden_size": 384,
        "num_hidden_layers": 6,
        "num_attention_heads": 12,
    }
}
_WIDTH_KEYS = ("hidden_size", "d_model", "n_embd", "dim")
PEFT_TASK_TYPES = ("FEATURE_EXTRACTION", "CAUSAL_LM", "SEQ_2_SEQ_LM")


def read_backbone_config(name_or_path: str) -> dict[str, Any]:
    """The Hugging Face config of a backbone, as a dict.

    Raises:
        ConfigError: The folder has no readable ``config.json``, or the name cannot be resolved.
    """
    if name_or_path in _KNOWN:
        return dict(_KNOWN[name_or_path])
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        config_file = folder / "config.json"
        try:
            return json.loads(config_file.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ConfigError(
                f"backbone folder {str(folder)!r} has no readable config.json ({error})"
            ) from None
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(name_or_path).to_dict()
    except Exception as error:  # noqa: BLE001 - any failure means "cannot resolve"
        lines = str(error).strip().splitlines()
        reason = lines[0].rstrip(".") if lines else type(error).__name__
        raise ConfigError(
            f"cannot resolve backbone {name_or_path!r}: {reason}; "
            "give a local folder that holds a config.json"
        ) from None


def hidden_size_of(config: dict[str, Any], *, name: str) -> int:
    """The embedding width ``d`` in a backbone config.

    Raises:
        ConfigError: The config has none of the usual width keys.
    """
    for key in _WIDTH_KEYS:
        value = config.get(key)
        if isinstance(value, int) and value > 0:
            return value
    raise ConfigError(
        f"cannot find the width of backbone {name!r}: its config has none of {list(_WIDTH_KEYS)}"
    )


def peft_task_type(config: dict[str, Any]) -> str:
    """The PEFT task type that prepends a prompt the way dpf-continual does for this backbone."""
    if config.get("is_encoder_decoder"):
        return "SEQ_2_SEQ_LM"
    architectures = config.get("architectures") or []
    if any(name.endswith(("ForCausalLM", "LMHeadModel")) for name in architectures):
        return "CAUSAL_LM"
    return "FEATURE_EXTRACTION"
