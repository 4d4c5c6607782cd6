"""Frozen Hugging Face backbones behind one interface (see :mod:`.base`).

``load_backbone(name)`` picks the kind from the model's config: encoder (BERT-like), decoder
(causal LM) or encoder-decoder (T5-like).
"""

from __future__ import annotations

import logging

import torch

from dpf_continual.backbones.base import Backbone, Item, mean_pool, resolve_device
from dpf_continual.backbones.encoder import EncoderBackbone
from dpf_continual.backbones.generative import DecoderBackbone, Seq2SeqBackbone
from dpf_continual.backbones.resolve import DEFAULT_BACKBONE, backbone_width, locate_backbone
from dpf_continual.errors import ConfigError

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "DecoderBackbone",
    "EncoderBackbone",
    "Item",
    "Seq2SeqBackbone",
    "backbone_width",
    "from_model",
    "load_backbone",
    "locate_backbone",
    "mean_pool",
    "resolve_device",
]


def from_model(model, tokenizer, *, name: str, device: str = "auto", **kwargs) -> Backbone:
    """Wrap an already loaded model and tokenizer, choosing the kind from its config."""
    config = model.config
    if getattr(config, "is_encoder_decoder", False):
        cls = Seq2SeqBackbone
    elif model.get_output_embeddings() is not None and getattr(config, "is_decoder", True):
        cls = DecoderBackbone
    else:
        cls = EncoderBackbone
    return cls(model=model, tokenizer=tokenizer, name=name, device=device, **kwargs)


def load_backbone(name: str = DEFAULT_BACKBONE, *, device: str = "auto", **kwargs) -> Backbone:
    """Load a frozen backbone by hub name, local folder or ``.gguf`` file.

    Args:
        name: Hub name (offline copies of MiniLM and SmolLM2 are used when installed), a folder
            with ``config.json``, or a ``.gguf`` file.
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda:0``...
        **kwargs: Passed to the backbone class (``max_length``, ``scale``...).

    Raises:
        ConfigError: When the model cannot be found or loaded.
    """
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
    )

    location = locate_backbone(name)
    extra = {"gguf_file": location.gguf_file} if location.gguf_file else {}
    try:
        config = AutoConfig.from_pretrained(location.path, **extra)
        if config.is_encoder_decoder:
            loader = AutoModelForSeq2SeqLM
        elif _is_causal(config):
            loader = AutoModelForCausalLM
        else:
            loader = AutoModel
        model = loader.from_pretrained(location.path, dtype=torch.float32, **extra)
        tokenizer = AutoTokenizer.from_pretrained(location.path, **extra)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"backbone {name!r} could not be loaded: {error}. Expected a model folder, a .gguf "
            "file, or a hub name on a machine that is online"
        ) from None
    logger.info("loaded backbone %s from %s", name, location.path)
    return from_model(model, tokenizer, name=name, device=device, **kwargs)


def _is_causal(config) -> bool:
    architectures = getattr(config, "architectures", None) or []
    if any(a.endswith("ForCausalLM") or a.endswith("LMHeadModel") for a in architectures):
        return True
    return config.model_type in {"llama", "gpt2", "mistral", "qwen2", "phi3", "gemma", "opt"}
