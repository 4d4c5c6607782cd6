"""Shared fixtures: tiny random Hugging Face models and tokenizers made in the test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Tiny models gain nothing from several threads, and idle threads only fight over the cores.
torch.set_num_threads(1)

WORDS = [
    "the", "a", "good", "bad", "great", "awful", "movie", "film", "food", "service", "sport",
    "game", "team", "money", "bank", "stock", "science", "computer", "world", "news", "positive",
    "negative", "yes", "no", "true", "false", "is", "was", "very", "not", "question", "answer",
]  # fmt: skip


def make_tokenizer(folder: Path, *, kind: str):
    """A word-level fast tokenizer over :data:`WORDS`, saved in ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "</s>"]
    vocab = {token: i for i, token in enumerate(specials + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", eos_token="</s>"
    )
    if kind == "encoder":
        tokenizer.cls_token, tokenizer.sep_token = "[CLS]", "[SEP]"
    tokenizer.save_pretrained(folder)
    return tokenizer


def make_tiny_model(folder: Path, kind: str) -> Path:
    """Save a tiny random model of ``kind`` (encoder, decoder, encoder-decoder) in ``folder``."""
    import transformers as tf

    torch.manual_seed(0)
    tokenizer = make_tokenizer(folder, kind=kind)
    vocab = len(tokenizer)
    if kind == "encoder":
        config = tf.BertConfig(
            vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=37, max_position_embeddings=128,
        )  # fmt: skip
        model = tf.BertModel(config)
    elif kind == "decoder":
        config = tf.LlamaConfig(
            vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, intermediate_size=37, max_position_embeddings=128,
            pad_token_id=0, eos_token_id=4, bos_token_id=2,
        )  # fmt: skip
        model = tf.LlamaForCausalLM(config)
    else:
        config = tf.T5Config(
            vocab_size=vocab, d_model=32, d_kv=16, d_ff=37, num_layers=2, num_heads=2,
            decoder_start_token_id=0, pad_token_id=0, eos_token_id=4,
        )  # fmt: skip
        model = tf.T5ForConditionalGeneration(config)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """Factory: the folder of a tiny random model of the given kind (made once per session)."""
    made: dict[str, Path] = {}

    def make(kind: str = "encoder") -> Path:
        if kind not in made:
            made[kind] = make_tiny_model(tmp_path_factory.mktemp(f"tiny-{kind}"), kind)
        return made[kind]

    return make


@pytest.fixture
def data_root() -> Path:
    """The shared real data (opt-in through DPF_DATA_ROOT); skips when unset."""
    root = os.environ.get("DPF_DATA_ROOT")
    if not root:
        pytest.skip("set DPF_DATA_ROOT to the shared data folder to run real-data tests")
    if not Path(root).is_dir():
        pytest.skip(f"DPF_DATA_ROOT={root} is not a folder")
    return Path(root)
